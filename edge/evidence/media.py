"""A finished evidence file: made by the evidence recorder, consumed by delivery.

It lives on the evidence side so data flows one way (evidence -> delivery), and in a module
of its own so the outbox and its sender threads need not import the encoders to name it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from contract.files import sha256_of
from contract.uploads import CONTENT_TYPES, MediaKind


@dataclass(frozen=True)
class MediaItem:
    """An evidence file ready for the outbox; the field order is the outbox's column order."""

    media_id: str
    event_id: str
    kind: str  # clip | snapshot
    path: Path
    sha256: str
    size: int
    content_type: str
    start_ts: float
    duration_s: float

    @classmethod
    def of_file(
        cls,
        media_id: str,
        event_id: str,
        kind: MediaKind,
        path: Path,
        start_ts: float,
        duration_s: float,
    ) -> MediaItem:
        """The item of a finished file: its hash, size and the kind's content type."""
        return cls(
            media_id,
            event_id,
            kind,
            path,
            sha256_of(path),
            path.stat().st_size,
            CONTENT_TYPES[kind],
            start_ts,
            duration_s,
        )
