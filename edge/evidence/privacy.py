"""Blur people before evidence is stored: the top of each person box (head, upper body)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt


def blur_boxes(
    image: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32], upper_fraction: float
) -> npt.NDArray[np.uint8]:
    """A copy of ``image`` with the upper share of every box blurred beyond recognition."""
    out = image.copy()
    h, w = out.shape[:2]
    for x1, y1, x2, y2 in xyxy:
        xa, xb = max(0, int(x1)), min(w, int(np.ceil(x2)))
        ya = max(0, int(y1))
        yb = min(h, int(np.ceil(y1 + (y2 - y1) * upper_fraction)))
        if xb - xa < 2 or yb - ya < 2:
            continue
        roi = out[ya:yb, xa:xb]
        # Pixelate, then smooth: cheap, and no detail survives at any box size.
        small = cv2.resize(
            roi, (max(1, (xb - xa) // 12), max(1, (yb - ya) // 12)), interpolation=cv2.INTER_AREA
        )
        block = cv2.resize(small, (xb - xa, yb - ya), interpolation=cv2.INTER_NEAREST)
        out[ya:yb, xa:xb] = cv2.GaussianBlur(block, (0, 0), sigmaX=3)
    return out
