"""Frames and the interface every frame source implements."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


class SourceState(enum.Enum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    FAILED = "failed"


@dataclass(frozen=True)
class Frame:
    """One decoded frame. ``ts_s`` is media time for files, capture wall-clock for live."""

    image_bgr: npt.NDArray[np.uint8]
    ts_s: float
    index: int
    #: The motion gate's small grey of the picture, when the reader made it (a camera's
    #: reader thread does, off the detect stage); None: the gate makes it.
    grey: npt.NDArray[np.uint8] | None = None

    @property
    def wh(self) -> tuple[int, int]:
        return int(self.image_bgr.shape[1]), int(self.image_bgr.shape[0])


class FrameSource(ABC):
    """An iterable of frames; files end, live sources reconnect until told to stop."""

    uri: str
    state: SourceState = SourceState.CONNECTING

    @property
    @abstractmethod
    def fps(self) -> float:
        """Nominal frame rate, used for pacing and for the tracker's time base."""

    @property
    def frame_count(self) -> int | None:
        """Total frames when known (files), for progress bars."""
        return None

    @abstractmethod
    def frames(self) -> Iterator[Frame]:
        """Yield frames in order; raise SourceError when the source is unusable."""

    def close(self) -> None:  # noqa: B027 - optional hook, most sources hold nothing
        """Release the underlying capture."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
