"""Evidence storage: content-addressed files under the media folder, their rows, retention.

Files are named by their sha256, never by anything the client sends. An upload goes to a
temporary file (mode 600) hashed as it arrives; its row is inserted and the file renamed into
place in one transaction, so a failure of either leaves neither. Evidence is bound to the
edge that uploads it. Retention never removes evidence of confirmed events or open cases (a
legal hold); otherwise dismissed evidence goes first, then the oldest of the edge holding the
most, so one edge's flood removes its own files. Over an edge's quota, or when held evidence
leaves no room, an upload gets 507: the edge keeps the file and sends it again later.
"""

from __future__ import annotations

import errno
import hashlib
import heapq
import logging
import os
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, case, delete, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from aggregator.core.config import MediaConfig
from aggregator.db.models import CASES, EVENTS, MEDIA
from aggregator.review import OPEN_STATUSES
from contract.keys import owner_only
from contract.uploads import CONTENT_TYPES

log = logging.getLogger(__name__)

SUFFIX = {CONTENT_TYPES["clip"]: ".mp4", CONTENT_TYPES["snapshot"]: ".jpg"}
#: Temporary files of uploads in progress; older than STALE_INCOMING_S they are a crash's.
INCOMING_PREFIX = ".incoming-"
STALE_INCOMING_S = 3600.0
#: Why an upload was refused for space (the labels of the refusal counters).
REFUSAL_REASONS = ("edge_quota", "full_of_held")
#: Ids per IN (...) list: well under PostgreSQL's limit of bind parameters per statement.
CHUNK = 500


class MediaError(Exception):
    """An upload that is refused: ``status`` is the HTTP code, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def sniff(content_type: str, head: bytes) -> None:
    """The body must be what its type says: MP4 has 'ftyp' at byte 4, JPEG starts FF D8 FF."""
    if content_type not in SUFFIX:
        raise MediaError(
            415, f"unsupported media type '{content_type}': use video/mp4 or image/jpeg"
        )
    if content_type == "video/mp4" and head[4:8] != b"ftyp":
        raise MediaError(415, "body is not an MP4 video (no 'ftyp' box)")
    if content_type == "image/jpeg" and not head.startswith(b"\xff\xd8\xff"):
        raise MediaError(415, "body is not a JPEG image")


@dataclass(frozen=True)
class Upload:
    media_id: uuid.UUID
    edge_id: str
    event_id: uuid.UUID
    kind: str
    content_type: str
    sha256: str
    start_ts: float
    duration_s: float


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Incoming:
    """An upload being received: a temporary file (mode 600) in the media folder, hashed as
    it is written. Blocking: call it from a worker thread, not the event loop."""

    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(prefix=INCOMING_PREFIX, suffix=".part", dir=directory)
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self.head = b""  # the first bytes, for sniff()

    def write(self, chunk: bytes) -> None:
        if len(self.head) < 16:
            self.head += chunk[: 16 - len(self.head)]
        self._hash.update(chunk)
        try:
            self._file.write(chunk)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise MediaError(507, "the media folder's disk is full") from None
            raise
        self.size += len(chunk)

    def finish(self) -> str:
        """Flush to disk (the edge deletes its copy once we answer) and return the sha256."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        return self._hash.hexdigest()

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


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


def held() -> ColumnElement[bool]:
    """The legal hold, for a query over MEDIA outer-joined to EVENTS: the evidence of a
    confirmed event, or of an event in a case that is still open."""
    in_open_case = (
        select(CASES.c.id)
        .where(CASES.c.id == EVENTS.c.case_id, CASES.c.status.in_(OPEN_STATUSES))
        .exists()
    )
    return or_(EVENTS.c.review_status == "confirmed", in_open_case)


_WITH_EVENTS = MEDIA.join(EVENTS, EVENTS.c.event_id == MEDIA.c.event_id, isouter=True)


class MediaStore:
    def __init__(self, cfg: MediaConfig, engine: Engine) -> None:
        self.cfg = cfg
        self.engine = engine
        cfg.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        owner_only(cfg.dir, 0o700)
        # Writers of rows and files in this process, so a file is never unlinked while
        # another upload of the same content is placing it, and quotas are checked exactly.
        self._lock = threading.Lock()
        self._refused: Counter[str] = Counter()
        self._refused_by_edge: Counter[str] = Counter()
        self._full_of_held = False
        self._last_prune: tuple[float, int] | None = None

    def path_for(self, sha256: str, content_type: str) -> Path:
        return self.cfg.dir / sha256[:2] / f"{sha256}{SUFFIX[content_type]}"

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
            with self._lock:
                return self._record(up, incoming, digest)
        finally:
            incoming.discard()

    def _record(self, up: Upload, incoming: Incoming, digest: str) -> bool:
        path = self.path_for(digest, up.content_type)
        existed, placed = path.exists(), False
        try:
            with self.engine.begin() as conn:
                row = self._check_owner(conn, up.edge_id, str(up.event_id), str(up.media_id))
                if row is not None:
                    if row.sha256 != digest:
                        raise MediaError(409, f"media {up.media_id} exists with different content")
                    return False
                dropped = self._make_room(conn, up.edge_id, incoming.size, dry_run=False)
                values = {**asdict(up), "media_id": str(up.media_id), "sha256": digest}
                values.update(event_id=str(up.event_id), size=incoming.size)
                conn.execute(MEDIA.insert().values(**values, received_at=time.time()))
                # Placed last, before the commit: if the row fails, the file was never there.
                path.parent.mkdir(exist_ok=True, mode=0o700)
                incoming.path.replace(path)
                placed = True
                _fsync_dir(path.parent)
        except BaseException as exc:
            if placed and not existed:  # the commit failed after the rename
                path.unlink(missing_ok=True)
            if isinstance(exc, SQLAlchemyError):
                log.error("media %s: not recorded: %s", up.media_id, exc)
                raise MediaError(
                    503,
                    f"media {up.media_id}: the database did not record it "
                    f"({type(exc).__name__}); nothing was kept, send it again",
                ) from exc
            raise
        self._full_of_held = False
        self._unlink_unreferenced(dropped)
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
            .select_from(_WITH_EVENTS)
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
        query = select(func.coalesce(func.sum(MEDIA.c.size), 0)).select_from(_WITH_EVENTS)
        return int(conn.execute(query.where(*where)).scalar_one())

    def _unlink_unreferenced(self, rows: list[Any]) -> None:
        """Remove the files of deleted rows that no other row names (call after commit)."""
        if not rows:
            return
        digests, used = list({r.sha256 for r in rows}), set[str]()
        with self.engine.connect() as conn:
            for start in range(0, len(digests), CHUNK):
                named = MEDIA.c.sha256.in_(digests[start : start + CHUNK])
                used.update(conn.execute(select(MEDIA.c.sha256).where(named)).scalars())
        for row in rows:
            if row.sha256 not in used:
                self.path_for(row.sha256, row.content_type).unlink(missing_ok=True)

    def locate(self, media_id: uuid.UUID) -> tuple[Path, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(MEDIA).where(MEDIA.c.media_id == str(media_id))).first()
        if row is None:
            return None
        return self.path_for(row.sha256, row.content_type), row.content_type

    def status(self) -> MediaUsage:
        is_held = case((held(), MEDIA.c.size), else_=0)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(MEDIA.c.edge_id, func.sum(MEDIA.c.size), func.sum(is_held))
                .select_from(_WITH_EVENTS)
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
        Returns how many files went."""
        now = now or time.time()
        cols = ("media_id", "edge_id", "size", "sha256", "content_type", "received_at")
        dismissed = (EVENTS.c.review_status == "dismissed").label("dismissed")
        with self._lock:
            with self.engine.begin() as conn:
                sizes = select(MEDIA.c.edge_id, func.sum(MEDIA.c.size)).group_by(MEDIA.c.edge_id)
                by_edge = {str(e): int(n) for e, n in conn.execute(sizes)}
                candidates = conn.execute(
                    select(*(MEDIA.c[c] for c in cols), dismissed)
                    .select_from(_WITH_EVENTS)
                    .where(~func.coalesce(held(), False))
                    .order_by(MEDIA.c.received_at)
                ).all()
                excess = sum(by_edge.values()) - self.cfg.max_total_bytes
                too_old = now - self.cfg.max_age_days * 86400
                victims, excess = _victims(candidates, by_edge, excess, too_old)
                ids = [r.media_id for r in victims]
                for start in range(0, len(ids), CHUNK):
                    conn.execute(
                        delete(MEDIA).where(MEDIA.c.media_id.in_(ids[start : start + CHUNK]))
                    )
            self._full_of_held = excess > 0  # what is left above the limit is held
            self._unlink_unreferenced(victims)
            self._remove_stale_incoming(now)
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

    def _remove_stale_incoming(self, now: float) -> None:
        for p in self.cfg.dir.glob(f"{INCOMING_PREFIX}*.part"):
            try:
                if p.stat().st_mtime < now - STALE_INCOMING_S:
                    p.unlink(missing_ok=True)
            except FileNotFoundError:
                continue


def _victims(
    candidates: Sequence[Any], by_edge: dict[str, int], excess: int, too_old: float
) -> tuple[list[Any], int]:
    """Of the unheld rows (oldest first), those to delete, and the bytes still over the
    limit after: every row received before too_old, then while over the limit dismissed
    ones, then the oldest of whichever edge holds the most."""
    victims: list[Any] = []
    per_edge: dict[str, deque[Any]] = {}

    def take(row: Any) -> None:
        nonlocal excess
        victims.append(row)
        by_edge[row.edge_id] -= row.size
        excess -= row.size

    for row in candidates:
        if row.received_at < too_old or (row.dismissed and excess > 0):
            take(row)
        else:
            per_edge.setdefault(row.edge_id, deque()).append(row)
    heap = [(-by_edge[e], e) for e in per_edge]
    heapq.heapify(heap)
    while excess > 0 and heap:
        _, edge = heapq.heappop(heap)
        take(per_edge[edge].popleft())
        if per_edge[edge]:
            heapq.heappush(heap, (-by_edge[edge], edge))
    return victims, excess
