"""Geometry of xyxy boxes shared by the background model and the rules."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Boxes = npt.NDArray[np.float32]


def _intersections(a: Boxes, b: Boxes) -> Boxes:
    """Pairwise intersection areas of (N, 4) and (M, 4) xyxy boxes, (N, M)."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    out: Boxes = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return out


def _areas(a: Boxes) -> Boxes:
    out: Boxes = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    return out


def iou_matrix(a: Boxes, b: Boxes) -> Boxes:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    inter = _intersections(a, b)
    union = _areas(a)[:, None] + _areas(b)[None, :] - inter
    out: Boxes = np.where(union > 0, inter / np.maximum(union, 1e-9), 0).astype(np.float32)
    return out


def coverage(a: Boxes, b: Boxes) -> Boxes:
    """Share of each box of ``a`` inside each box of ``b``, (N, M) (xyxy)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    area = np.maximum(_areas(a), 1e-9)
    out: Boxes = (_intersections(a, b) / area[:, None]).astype(np.float32)
    return out
