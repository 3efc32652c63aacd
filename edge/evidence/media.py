"""A finished evidence file: made by the evidence recorder, consumed by delivery.

It lives on the evidence side so data flows one way (evidence -> delivery), and in a module
of its own so the outbox and its sender threads need not import the encoders to name it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
