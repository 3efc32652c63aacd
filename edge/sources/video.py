"""Video files, decoded by OpenCV, optionally paced at the file's own frame rate."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from edge.errors import SourceError
from edge.sources.base import Frame, FrameSource, SourceState

# Containers report a frame count from their index; decoders may legitimately deliver a
# frame or two fewer. More missing than this means the file is cut short or corrupt.
_MISSING_FRAMES_TOLERATED = 2


class VideoFileSource(FrameSource):
    """A video file. ``loop`` plays it again and again with time running on; ``epoch_s`` is
    added to every timestamp (the worker passes the Unix time it started, so looped files
    carry wall-clock times like a live camera)."""

    def __init__(
        self, path: Path, *, realtime: bool = True, loop: bool = False, epoch_s: float = 0.0
    ) -> None:
        self.uri = str(path)
        self.path = path
        self.realtime = realtime
        self.loop = loop
        self.epoch_s = epoch_s
        self.loops = 0
        if not path.exists():
            raise SourceError(f"{path}: video file not found")
        if not path.is_file():
            raise SourceError(f"{path}: not a file")
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise SourceError(f"{path}: cannot open as video (not a video file, or corrupt)")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._fps = fps if 0 < fps < 1000 else 25.0
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._count = count if count > 0 else None

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def frame_count(self) -> int | None:
        return self._count

    def frames(self) -> Iterator[Frame]:
        self.state = SourceState.STREAMING
        start = time.monotonic()
        index = 0
        while True:
            played = 0
            while True:
                ok, image = self._cap.read()
                if not ok or image is None:
                    break
                ts_s = index / self._fps
                if self.realtime:
                    delay = start + ts_s - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                image_bgr = np.asarray(image, dtype=np.uint8)
                yield Frame(image_bgr=image_bgr, ts_s=self.epoch_s + ts_s, index=index)
                index += 1
                played += 1
            self._check_complete(played)
            if not self.loop:
                break
            self.loops += 1
            # Reopen rather than seek: seeking to 0 is unreliable for some containers.
            self._cap.release()
            self._cap = cv2.VideoCapture(str(self.path))
            if not self._cap.isOpened():
                self.state = SourceState.FAILED
                raise SourceError(f"{self.path}: cannot reopen the video to loop it")
        self.state = SourceState.ENDED

    def _check_complete(self, played: int) -> None:
        if played == 0:
            self.state = SourceState.FAILED
            raise SourceError(f"{self.path}: no frame could be decoded (corrupt or empty video)")
        if self._count is not None and played < self._count - _MISSING_FRAMES_TOLERATED:
            self.state = SourceState.FAILED
            raise SourceError(
                f"{self.path}: video ends after {played} of {self._count} frames "
                "(file truncated or corrupt)"
            )

    def close(self) -> None:
        self._cap.release()
