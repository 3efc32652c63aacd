"""The last seconds of a camera, JPEG-compressed, so a clip can start before its event."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class BufferedFrame:
    ts_s: float
    jpeg: bytes


def scale_to_width(image: npt.NDArray[np.uint8], width_px: int) -> npt.NDArray[np.uint8]:
    h, w = image.shape[:2]
    if w == width_px:
        return image
    height = round(h * width_px / w / 2) * 2  # even: H.264 4:2:0 needs even sizes
    out = cv2.resize(image, (width_px, height), interpolation=cv2.INTER_AREA)
    return np.asarray(out, dtype=np.uint8)


class FrameRing:
    """Frames at most ``seconds`` old, thinned to ``fps``; memory is the JPEG bytes held."""

    def __init__(self, seconds: float, fps: float, width_px: int, jpeg_quality: int) -> None:
        self.seconds = seconds
        self.min_gap_s = 1.0 / fps * 0.999
        self.width_px = width_px
        self._params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
        self._frames: deque[BufferedFrame] = deque()
        self.bytes = 0

    def encode(self, image: npt.NDArray[np.uint8]) -> bytes:
        ok, buf = cv2.imencode(".jpg", scale_to_width(image, self.width_px), self._params)
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    def push(self, ts_s: float, image: npt.NDArray[np.uint8]) -> BufferedFrame | None:
        """Keep the frame if it is due at the buffer's fps; return it (None when skipped)."""
        if self._frames and ts_s - self._frames[-1].ts_s < self.min_gap_s:
            return None
        item = BufferedFrame(ts_s, self.encode(image))
        self._frames.append(item)
        self.bytes += len(item.jpeg)
        while self._frames and ts_s - self._frames[0].ts_s > self.seconds:
            self.bytes -= len(self._frames.popleft().jpeg)
        return item

    def since(self, ts_s: float) -> list[BufferedFrame]:
        return [f for f in self._frames if f.ts_s >= ts_s]

    def __len__(self) -> int:
        return len(self._frames)
