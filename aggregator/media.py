"""Evidence storage: content-addressed blobs (a local folder or an S3 bucket), their rows,
retention.

Blobs are keyed by their sha256, never by anything the client sends. An upload is spooled
to a temporary file (mode 600) hashed as it arrives, then placed in the blob store unless
that content is there already (dedup), then its row is committed. Blobs are removed only
under the media lock and only when no row names them, and an upload makes sure its blob is
still there under the same lock before its row commits: so a row always has its blob, and a
blob whose row never came (a refusal, a failed commit) is removed; one left by a crash is
swept after an hour. The lock is this process's and, on PostgreSQL, a transaction-level
advisory lock shared by every replica (SQLite has one writer at a time anyway, so replicas
need PostgreSQL).

Evidence is bound to the edge that uploads it. Retention never removes evidence of
confirmed events or open cases (a legal hold); otherwise dismissed evidence goes first,
then the oldest of the edge holding the most, so one edge's flood removes its own files.
Over an edge's quota, or when held evidence leaves no room, an upload gets 507: the edge
keeps the file and sends it again later.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, case, delete, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from aggregator.blobs import BlobStore, BlobStoreError, open_blob_store
from aggregator.blobs.spool import Incoming, remove_stale
from aggregator.core.config import MediaConfig
from aggregator.db.models import EVENTS, MEDIA
from aggregator.media_policy import WITH_EVENTS, choose_victims, held
from aggregator.media_upload import MediaError, StoredMedia, Upload, content_key, sniff
from contract.keys import owner_only

#: The upload's own names are re-exported: callers know them as aggregator.media's.
__all__ = ["MediaError", "MediaStore", "MediaUsage", "StoredMedia", "Upload", "sniff"]

log = logging.getLogger(__name__)

#: Spooled uploads and blobs without a row older than this are a crash's.
STALE_S = 3600.0
#: The sweep for blobs without a row lists the whole store: at most this often per process.
ORPHAN_SWEEP_EVERY_S = 3600.0
#: Why an upload was refused for space (the labels of the refusal counters).
REFUSAL_REASONS = ("edge_quota", "full_of_held")
#: Ids per IN (...) list: well under PostgreSQL's limit of bind parameters per statement.
CHUNK = 500
#: pg_advisory_xact_lock key of the media lock ("swmedia" in ASCII), shared by all replicas.
MEDIA_LOCK = 0x73776D65646961
#: A content key: ab/abcdef...(64 hex).mp4; nothing else in a store is ever deleted.
KEY = re.compile(r"^([0-9a-f]{2})/(\1[0-9a-f]{62})\.(mp4|jpg)$")


@dataclass(frozen=True)
class EdgeUsage:
    bytes: int
    held_bytes: int
    refused_uploads: int


@dataclass(frozen=True)
class MediaUsage:
    """How full the store is and why; ``full_of_held`` while held evidence leaves no room."""

    total_bytes: int
    held_bytes: int
    max_total_bytes: int
    per_edge_max_bytes: int | None
    full_of_held: bool
    refused_uploads: dict[str, int]
    edges: dict[str, EdgeUsage]
    last_prune_at: float | None
    last_prune_removed: int


class MediaStore:
    def __init__(
        self,
        cfg: MediaConfig,
        engine: Engine,
        blobs: BlobStore | None = None,
        max_age_days_by_mode: Mapping[str, float] | None = None,
    ) -> None:
        """max_age_days_by_mode: evidence of events raised in these operating modes is kept
        this long instead of ``cfg.max_age_days`` (never shorter)."""
        self.cfg = cfg
        self.engine = engine
        self.max_age_days_by_mode = {
            mode: max(days, cfg.max_age_days) for mode, days in (max_age_days_by_mode or {}).items()
        }
        # The spool of uploads being received (and, with store: local, the blobs too).
        cfg.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        owner_only(cfg.dir, 0o700)
        self.blobs = blobs if blobs is not None else open_blob_store(cfg)
        # The media lock within this process (see _critical).
        self._lock = threading.Lock()
        self._refused: Counter[str] = Counter()
        self._refused_by_edge: Counter[str] = Counter()
        self._full_of_held = False
        self._last_prune: tuple[float, int] | None = None
        self._last_sweep: float | None = None

    @contextmanager
    def _critical(self) -> Iterator[Connection]:
        """A transaction holding the media lock: quotas are checked exactly, and a blob is
        never deleted while an upload of the same content is committing its row."""
        with self._lock, self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # the other replicas; released at commit
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MEDIA_LOCK})
            yield conn

    def incoming(self) -> Incoming:
        return Incoming(self.cfg.dir)

    def save(self, up: Upload, data: bytes) -> bool:
        """Store the file and its row; True if new, False if this exact upload was done."""
        incoming = self.incoming()
        try:
            incoming.write(data)
        except BaseException:
            incoming.discard()
            raise
        return self.commit(up, incoming)

    def precheck(self, edge_id: str, event_id: str, media_id: str, size: int | None) -> None:
        """Refuse before the body is read what would be refused after it: evidence for
        another edge's event or upload, or (when the size is declared) no room."""
        with self.engine.connect() as conn:
            if self._check_owner(conn, edge_id, event_id, media_id) is None and size is not None:
                self._make_room(conn, edge_id, size, dry_run=True)

    def commit(self, up: Upload, incoming: Incoming) -> bool:
        """Record a received upload (always consumed); True if new, False if this exact
        upload was done before."""
        try:
            digest = incoming.finish()
            if digest != up.sha256.lower():
                raise MediaError(400, "content does not match X-Content-SHA256 (corrupted upload?)")
            key = content_key(digest, up.content_type)
            # Outside the lock: an upload to a bucket takes a while, and others may go on.
            self._place(up, key, incoming)
            try:
                return self._record(up, incoming, digest, key)
            except BaseException as exc:
                self._remove_after_failure(up, key, exc)
                raise
        finally:
            incoming.discard()

    def _ensure_blob(self, up: Upload, key: str, incoming: Incoming) -> None:
        """The blob under its content key, unless that content is there already (dedup)."""
        if not self.blobs.exists(key):
            self.blobs.put(key, incoming.path, up.content_type)

    def _place(self, up: Upload, key: str, incoming: Incoming) -> None:
        try:
            self._ensure_blob(up, key, incoming)
        except BlobStoreError as exc:
            log.error("media %s: not stored: %s", up.media_id, exc)
            raise MediaError(
                503,
                f"media {up.media_id}: the evidence store did not take it ({exc}); send again",
            ) from exc

    def _remove_after_failure(self, up: Upload, key: str, failure: BaseException) -> None:
        """The blob placed for a row that did not commit goes, unless a row names it."""
        try:
            self._remove_unreferenced([key])
        except (SQLAlchemyError, BlobStoreError) as exc:
            # The upload's own failure is what the edge must hear; the blob waits for the sweep.
            log.error(
                "media %s: after %s, could not remove its unreferenced blob %s: %s",
                up.media_id,
                type(failure).__name__,
                key,
                exc,
            )

    def _record(self, up: Upload, incoming: Incoming, digest: str, key: str) -> bool:
        try:
            with self._critical() as conn:
                row = self._check_owner(conn, up.edge_id, str(up.event_id), str(up.media_id))
                if row is not None:
                    if row.sha256 != digest:
                        raise MediaError(409, f"media {up.media_id} exists with different content")
                    self._ensure_blob(up, key, incoming)  # heals a blob lost outside our care
                    return False
                dropped = self._make_room(conn, up.edge_id, incoming.size, dry_run=False)
                values = {**asdict(up), "media_id": str(up.media_id), "sha256": digest}
                values.update(event_id=str(up.event_id), size=incoming.size)
                conn.execute(MEDIA.insert().values(**values, received_at=time.time()))
                # Under the lock: a blob no row named may have been removed since _place.
                self._ensure_blob(up, key, incoming)
        except (SQLAlchemyError, BlobStoreError) as exc:
            log.error("media %s: not recorded: %s", up.media_id, exc)
            where = "database" if isinstance(exc, SQLAlchemyError) else "evidence store"
            raise MediaError(
                503,
                f"media {up.media_id}: the {where} did not record it "
                f"({type(exc).__name__}); nothing was kept, send it again",
            ) from exc
        self._full_of_held = False
        self._remove_unreferenced([content_key(r.sha256, r.content_type) for r in dropped])
        return True

    @staticmethod
    def _check_owner(conn: Connection, edge_id: str, event_id: str, media_id: str) -> Any:
        """Refuse (403) another edge's upload or event; the row of this upload if it exists."""
        row = conn.execute(select(MEDIA).where(MEDIA.c.media_id == media_id)).first()
        if row is not None and row.edge_id != edge_id:
            raise MediaError(403, f"media {media_id} was uploaded by another edge")
        owner = conn.execute(select(EVENTS.c.edge_id).where(EVENTS.c.event_id == event_id)).first()
        if owner is not None and owner.edge_id != edge_id:
            raise MediaError(403, f"event {event_id} belongs to another edge, not to {edge_id}")
        other = conn.execute(
            select(MEDIA.c.media_id)
            .where(MEDIA.c.event_id == event_id, MEDIA.c.edge_id != edge_id)
            .limit(1)
        ).first()
        if other is not None:
            raise MediaError(
                403, f"event {event_id} has evidence from another edge, not from {edge_id}"
            )
        return row

    def _make_room(self, conn: Connection, edge_id: str, size: int, dry_run: bool) -> list[Any]:
        """Refuse (507) an upload beyond the edge's quota, after counting its own dismissed
        evidence as free, or one that held evidence leaves no room for. Returns the rows
        deleted to make room (none when dry_run)."""
        victims = self._edge_room(conn, edge_id, size)
        limit = self.cfg.max_total_bytes
        if self._bytes(conn) + size > limit:
            held_bytes = self._bytes(conn, held())
            if held_bytes + size > limit:
                self._refuse("full_of_held", edge_id)
                self._full_of_held = True
                raise MediaError(
                    507,
                    f"the media store is full of evidence under legal hold: {held_bytes} of "
                    f"media.max_total_bytes {limit} bytes belong to confirmed events or open "
                    f"cases, which retention never removes; this {size}-byte upload must "
                    "wait until cases close or the limit is raised",
                )
        if dry_run or not victims:
            return []
        conn.execute(delete(MEDIA).where(MEDIA.c.media_id.in_([r.media_id for r in victims])))
        log.info("edge %s at its quota: removed %d dismissed evidence files", edge_id, len(victims))
        return victims

    def _edge_room(self, conn: Connection, edge_id: str, size: int) -> list[Any]:
        """The edge's oldest dismissed evidence to remove so that size fits its quota."""
        quota = self.cfg.per_edge_max_bytes
        used = self._bytes(conn, MEDIA.c.edge_id == edge_id) if quota is not None else 0
        if quota is None or used + size <= quota:
            return []
        dismissed = conn.execute(
            select(MEDIA.c.media_id, MEDIA.c.size, MEDIA.c.sha256, MEDIA.c.content_type)
            .select_from(WITH_EVENTS)
            .where(MEDIA.c.edge_id == edge_id, EVENTS.c.review_status == "dismissed")
            .order_by(MEDIA.c.received_at)
        ).all()
        victims = []
        for row in dismissed:
            if used + size <= quota:
                break
            victims.append(row)
            used -= row.size
        if used + size > quota:
            held_bytes = self._bytes(conn, MEDIA.c.edge_id == edge_id, held())
            self._refuse("edge_quota", edge_id)
            raise MediaError(
                507,
                f"edge {edge_id} holds {used} bytes of evidence ({held_bytes} held for "
                f"confirmed events or open cases) and media.per_edge_max_bytes is {quota}: "
                f"this {size}-byte upload must wait until reviewers dismiss some of it or "
                "retention removes it",
            )
        return victims

    def _refuse(self, reason: str, edge_id: str) -> None:
        self._refused[reason] += 1
        self._refused_by_edge[edge_id] += 1

    @staticmethod
    def _bytes(conn: Connection, *where: ColumnElement[bool]) -> int:
        query = select(func.coalesce(func.sum(MEDIA.c.size), 0)).select_from(WITH_EVENTS)
        return int(conn.execute(query.where(*where)).scalar_one())

    def _remove_unreferenced(self, keys: Sequence[str]) -> None:
        """Remove the blobs under keys that no row names, under the media lock."""
        digests = {m.group(2): key for key in set(keys) if (m := KEY.match(key))}
        if not digests:
            return
        named = set[str]()
        with self._critical() as conn:
            listed = list(digests)
            for start in range(0, len(listed), CHUNK):
                chunk = MEDIA.c.sha256.in_(listed[start : start + CHUNK])
                named.update(conn.execute(select(MEDIA.c.sha256).where(chunk)).scalars())
            self.blobs.delete([key for digest, key in digests.items() if digest not in named])

    def locate(self, media_id: uuid.UUID) -> StoredMedia | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(MEDIA).where(MEDIA.c.media_id == str(media_id))).first()
        if row is None:
            return None
        key = content_key(row.sha256, row.content_type)
        return StoredMedia(key, row.content_type, row.size, row.sha256, row.received_at)

    def present(self, media_id: uuid.UUID) -> bool:
        """Whether the upload has its row and its blob."""
        found = self.locate(media_id)
        return found is not None and self.blobs.exists(found.key)

    def status(self) -> MediaUsage:
        is_held = case((held(), MEDIA.c.size), else_=0)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(MEDIA.c.edge_id, func.sum(MEDIA.c.size), func.sum(is_held))
                .select_from(WITH_EVENTS)
                .group_by(MEDIA.c.edge_id)
            ).all()
        edges = {
            str(e): EdgeUsage(int(total), int(kept), self._refused_by_edge[e])
            for e, total, kept in rows
        }
        return MediaUsage(
            total_bytes=sum(e.bytes for e in edges.values()),
            held_bytes=sum(e.held_bytes for e in edges.values()),
            max_total_bytes=self.cfg.max_total_bytes,
            per_edge_max_bytes=self.cfg.per_edge_max_bytes,
            full_of_held=self._full_of_held,
            refused_uploads={r: self._refused[r] for r in REFUSAL_REASONS},
            edges=edges,
            last_prune_at=self._last_prune[0] if self._last_prune else None,
            last_prune_removed=self._last_prune[1] if self._last_prune else 0,
        )

    def prune(self, now: float | None = None) -> int:
        """Delete unheld evidence past max_age_days, then, while over max_total_bytes,
        dismissed evidence (oldest first), then the oldest of the edge holding the most.
        Returns how many uploads went (their blobs go when no other row names them)."""
        now = now or time.time()
        cols = ("media_id", "edge_id", "size", "sha256", "content_type", "received_at")
        dismissed = (EVENTS.c.review_status == "dismissed").label("dismissed")
        mode = EVENTS.c.mode.label("mode")
        with self._critical() as conn:
            sizes = select(MEDIA.c.edge_id, func.sum(MEDIA.c.size)).group_by(MEDIA.c.edge_id)
            by_edge = {str(e): int(n) for e, n in conn.execute(sizes)}
            candidates = conn.execute(
                select(*(MEDIA.c[c] for c in cols), dismissed, mode)
                .select_from(WITH_EVENTS)
                .where(~func.coalesce(held(), False))
                .order_by(MEDIA.c.received_at)
            ).all()
            excess = sum(by_edge.values()) - self.cfg.max_total_bytes
            too_old = now - self.cfg.max_age_days * 86400
            too_old_by_mode = {m: now - d * 86400 for m, d in self.max_age_days_by_mode.items()}
            victims, excess = choose_victims(candidates, by_edge, excess, too_old, too_old_by_mode)
            ids = [r.media_id for r in victims]
            for start in range(0, len(ids), CHUNK):
                conn.execute(delete(MEDIA).where(MEDIA.c.media_id.in_(ids[start : start + CHUNK])))
        self._full_of_held = excess > 0  # what is left above the limit is held
        self._remove_unreferenced([content_key(r.sha256, r.content_type) for r in victims])
        remove_stale(self.cfg.dir, now - STALE_S)
        self._sweep(now)
        self._last_prune = (now, len(ids))
        if ids:
            log.info("retention removed %d evidence files", len(ids))
        if excess > 0:
            log.warning(
                "media over media.max_total_bytes by %d bytes of evidence held for confirmed "
                "events or open cases: retention cannot remove it",
                excess,
            )
        return len(ids)

    def _sweep(self, now: float) -> None:
        """Blobs without a row, left by a crash between placing a blob and committing its
        row (an edge that sends the upload again names it, one that never does leaves it),
        and unfinished multipart uploads. Lists the whole store, so at most hourly."""
        if self._last_sweep is not None and now - self._last_sweep < ORPHAN_SWEEP_EVERY_S:
            return
        self._last_sweep = now
        batch: list[str] = []
        for key in self.blobs.stale_keys(now - STALE_S):
            batch.append(key)
            if len(batch) >= CHUNK:
                self._remove_unreferenced(batch)
                batch.clear()
        self._remove_unreferenced(batch)
        if aborted := self.blobs.discard_incomplete(now - STALE_S):
            log.info("aborted %d unfinished multipart uploads of evidence", aborted)
