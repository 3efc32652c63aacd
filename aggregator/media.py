"""Evidence storage: content-addressed files under the media folder, and retention.

Files are named by their sha256, never by anything the client sends, so no upload can
reach outside the folder and identical files are stored once.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, delete, func, select

from aggregator.core.config import MediaConfig
from aggregator.db.models import EVENTS, MEDIA
from contract.uploads import CONTENT_TYPES

log = logging.getLogger(__name__)

SUFFIX = {CONTENT_TYPES["clip"]: ".mp4", CONTENT_TYPES["snapshot"]: ".jpg"}


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


class MediaStore:
    def __init__(self, cfg: MediaConfig, engine: Engine) -> None:
        self.cfg = cfg
        self.engine = engine
        cfg.dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str, content_type: str) -> Path:
        return self.cfg.dir / sha256[:2] / f"{sha256}{SUFFIX[content_type]}"

    def save(self, up: Upload, data: bytes) -> bool:
        """Store the file and its row; True if new, False if this exact upload was done."""
        digest = hashlib.sha256(data).hexdigest()
        if digest != up.sha256.lower():
            raise MediaError(400, "content does not match X-Content-SHA256 (corrupted upload?)")
        with self.engine.begin() as conn:
            row = conn.execute(select(MEDIA).where(MEDIA.c.media_id == str(up.media_id))).first()
            if row is not None:
                if row.sha256 != digest:
                    raise MediaError(409, f"media {up.media_id} exists with different content")
                return False
            path = self.path_for(digest, up.content_type)
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{uuid.uuid4().hex}.part")
                tmp.write_bytes(data)
                tmp.replace(path)  # atomic: a reader never sees half a file
            conn.execute(
                MEDIA.insert().values(
                    media_id=str(up.media_id),
                    edge_id=up.edge_id,
                    event_id=str(up.event_id),
                    kind=up.kind,
                    sha256=digest,
                    size=len(data),
                    content_type=up.content_type,
                    start_ts=up.start_ts,
                    duration_s=up.duration_s,
                    received_at=time.time(),
                )
            )
        return True

    def locate(self, media_id: uuid.UUID) -> tuple[Path, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(MEDIA).where(MEDIA.c.media_id == str(media_id))).first()
        if row is None:
            return None
        return self.path_for(row.sha256, row.content_type), row.content_type

    def prune(self, now: float | None = None) -> int:
        """Delete evidence past max_age_days, then, while over max_total_bytes, the oldest,
        evidence of dismissed events first. Returns how many files went."""
        now = now or time.time()
        removed = 0
        with self.engine.begin() as conn:
            old = (
                conn.execute(
                    select(MEDIA.c.media_id).where(
                        MEDIA.c.received_at < now - self.cfg.max_age_days * 86400
                    )
                )
                .scalars()
                .all()
            )
            removed += self._drop(conn, list(old))
            total = int(conn.execute(select(func.coalesce(func.sum(MEDIA.c.size), 0))).scalar_one())
            if total > self.cfg.max_total_bytes:
                dismissed = (EVENTS.c.review_status == "dismissed").label("dismissed")
                order = conn.execute(
                    select(MEDIA.c.media_id, MEDIA.c.size)
                    .join(EVENTS, EVENTS.c.event_id == MEDIA.c.event_id, isouter=True)
                    .order_by(dismissed.desc(), MEDIA.c.received_at)
                ).all()
                victims = []
                for media_id, size in order:
                    if total <= self.cfg.max_total_bytes:
                        break
                    victims.append(media_id)
                    total -= size
                removed += self._drop(conn, victims)
        return removed

    def _drop(self, conn: object, media_ids: list[str]) -> int:
        if not media_ids:
            return 0
        c = conn  # a Connection inside the caller's transaction
        rows = c.execute(select(MEDIA).where(MEDIA.c.media_id.in_(media_ids))).all()  # type: ignore[attr-defined]
        c.execute(delete(MEDIA).where(MEDIA.c.media_id.in_(media_ids)))  # type: ignore[attr-defined]
        for row in rows:
            still_used = c.execute(  # type: ignore[attr-defined]
                select(func.count()).select_from(MEDIA).where(MEDIA.c.sha256 == row.sha256)
            ).scalar_one()
            if not still_used:
                self.path_for(row.sha256, row.content_type).unlink(missing_ok=True)
        log.info("retention removed %d evidence files", len(rows))
        return len(rows)
