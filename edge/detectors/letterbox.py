"""Resize-and-pad to the network input while keeping aspect ratio, and the inverse mapping."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

PAD_VALUE = 114  # grey used by both YOLOX and Ultralytics training pipelines


@dataclass(frozen=True)
class Letterbox:
    scale: float
    pad_x_px: float
    pad_y_px: float

    def to_frame(
        self, xyxy: npt.NDArray[np.float32], frame_wh: tuple[int, int]
    ) -> npt.NDArray[np.float32]:
        """Map boxes from network input pixels back to frame pixels, clipped to the frame."""
        out = xyxy.copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x_px) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y_px) / self.scale
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, frame_wh[0])
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, frame_wh[1])
        return out


def letterbox(
    frame: npt.NDArray[np.uint8], input_wh: tuple[int, int], *, center: bool
) -> tuple[npt.NDArray[np.uint8], Letterbox]:
    """Letterbox ``frame`` into ``input_wh``.

    YOLOX pads at the bottom/right (``center=False``); Ultralytics pads evenly (``center=True``).
    """
    h, w = frame.shape[:2]
    in_w, in_h = input_wh
    scale = min(in_w / w, in_h / h)
    new_w, new_h = round(w * scale), round(h * scale)
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    if center:
        # Ultralytics rounds the split of odd padding this way; matching it keeps boxes exact.
        left = round((in_w - new_w) / 2 - 0.1)
        top = round((in_h - new_h) / 2 - 0.1)
    else:
        left = top = 0
    canvas = np.full((in_h, in_w, 3), PAD_VALUE, dtype=np.uint8)
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas, Letterbox(scale=scale, pad_x_px=float(left), pad_y_px=float(top))
