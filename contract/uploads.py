"""The evidence-upload contract: an edge PUTs each clip or snapshot to the aggregator over
HTTP(S), with its upload token, and describes it in these headers. The edge writes them with
``UploadHeaders.to_http`` and the aggregator reads them with ``UploadHeaders.from_http``, so
the names, formats and limits exist once (docs/protocol.md, "Evidence").
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

MediaKind = Literal["clip", "snapshot"]
MEDIA_KINDS: tuple[MediaKind, ...] = get_args(MediaKind)
#: The media types an upload may declare, by kind of evidence.
CONTENT_TYPES: dict[MediaKind, str] = {"clip": "video/mp4", "snapshot": "image/jpeg"}

#: The route, relative to the aggregator's base URL.
MEDIA_PATH = "/api/v1/media/{media_id}"

HEADER_EVENT_ID = "X-Event-Id"
HEADER_KIND = "X-Media-Kind"
HEADER_SHA256 = "X-Content-SHA256"
HEADER_START_TS = "X-Start-Ts"
HEADER_DURATION_S = "X-Duration-S"
HEADER_CONTENT_TYPE = "Content-Type"

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class UploadHeaderError(ValueError):
    """An upload header that is missing or malformed; the message names the header."""


@dataclass(frozen=True)
class UploadHeaders:
    """What an evidence upload says about its body."""

    event_id: str
    kind: MediaKind
    sha256: str
    content_type: str
    start_ts: float = 0.0
    duration_s: float = 0.0

    def to_http(self) -> dict[str, str]:
        return {
            HEADER_CONTENT_TYPE: self.content_type,
            HEADER_EVENT_ID: self.event_id,
            HEADER_KIND: self.kind,
            HEADER_SHA256: self.sha256,
            HEADER_START_TS: repr(self.start_ts),
            HEADER_DURATION_S: repr(self.duration_s),
        }

    @classmethod
    def from_http(cls, headers: Mapping[str, str]) -> UploadHeaders:
        """Parse and validate; UploadHeaderError names the first header that is wrong.
        ``headers`` must look names up case-insensitively (as HTTP libraries' mappings do)."""
        event_id = _required(headers, HEADER_EVENT_ID)
        try:
            event_id = str(uuid.UUID(event_id))
        except ValueError:
            raise UploadHeaderError(f"{HEADER_EVENT_ID} must be a UUID") from None
        kind = _required(headers, HEADER_KIND)
        if kind not in MEDIA_KINDS:
            raise UploadHeaderError(f"{HEADER_KIND} must be one of {', '.join(MEDIA_KINDS)}")
        sha256 = _required(headers, HEADER_SHA256)
        if not _SHA256.match(sha256):
            raise UploadHeaderError(f"{HEADER_SHA256} must be 64 hexadecimal digits")
        content_type = _required(headers, HEADER_CONTENT_TYPE).split(";")[0].strip().lower()
        duration_s = _finite(headers, HEADER_DURATION_S)
        if duration_s < 0:
            raise UploadHeaderError(f"{HEADER_DURATION_S} must not be negative")
        return cls(
            event_id=event_id,
            kind=kind,
            sha256=sha256.lower(),
            content_type=content_type,
            start_ts=_finite(headers, HEADER_START_TS),
            duration_s=duration_s,
        )


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None or not value.strip():
        raise UploadHeaderError(f"missing header {name}")
    return value.strip()


def _finite(headers: Mapping[str, str], name: str) -> float:
    """An optional number header (0 when absent); nan and inf are refused, not stored."""
    raw = headers.get(name)
    if raw is None or not raw.strip():
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise UploadHeaderError(f"{name} must be a number, got {raw[:40]!r}") from None
    if not math.isfinite(value):
        raise UploadHeaderError(f"{name} must be a finite number, got {raw[:40]!r}")
    return value
