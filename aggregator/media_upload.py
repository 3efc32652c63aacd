"""An evidence upload: what it says it is, how its body is checked, why it is refused, and
where its bytes are kept (the content key)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from contract.uploads import CONTENT_TYPES

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


@dataclass(frozen=True)
class StoredMedia:
    """A stored upload: its blob's key and what a download needs to answer."""

    key: str
    content_type: str
    size: int
    sha256: str
    received_at: float


def content_key(sha256: str, content_type: str) -> str:
    return f"{sha256[:2]}/{sha256}{SUFFIX[content_type]}"
