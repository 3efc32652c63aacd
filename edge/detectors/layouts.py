"""Model families: how to feed each one and how to read its raw output.

Each layout is recognised from the output tensor shape alone, so a new export of a known
family works without configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge.detectors.letterbox import Letterbox, letterbox
from edge.errors import ModelError

LayoutName = Literal["yolox", "yolov8"]
STRIDES = (8, 16, 32)


def anchor_count(input_wh: tuple[int, int]) -> int:
    w, h = input_wh
    return sum((w // s) * (h // s) for s in STRIDES)


@dataclass(frozen=True)
class RawBoxes:
    """Candidates in network input pixels before NMS."""

    xyxy: npt.NDArray[np.float32]
    score: npt.NDArray[np.float32]
    class_id: npt.NDArray[np.int64]


def recognise_layout(
    output_shape: tuple[int, ...], input_wh: tuple[int, int], model_label: str
) -> tuple[LayoutName, int]:
    """Return (layout, number of classes) or raise ModelError naming the shape."""
    anchors = anchor_count(input_wh)
    # The batch axis (first) may be fixed at any size or dynamic (-1).
    if len(output_shape) == 3:
        _, a, b = output_shape
        if a == anchors and b > 5:
            return "yolox", b - 5
        if b == anchors and a > 4:
            return "yolov8", a - 4
    raise ModelError(
        f"{model_label}: unrecognised output layout {list(output_shape)} for input "
        f"{input_wh[0]}x{input_wh[1]}: expected YOLOX [N, {anchors}, 5+classes] or "
        f"YOLOv8/YOLO11 [N, 4+classes, {anchors}]"
    )


def _cxcywh_to_xyxy(b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    half = b[:, 2:4] / 2
    return np.concatenate([b[:, 0:2] - half, b[:, 0:2] + half], axis=1).astype(np.float32)


class YoloxLayout:
    """Megvii YOLOX: BGR 0..255, top-left letterbox; raw grid offsets, objectness x class."""

    name: LayoutName = "yolox"

    def __init__(self, input_wh: tuple[int, int]) -> None:
        self.input_wh = input_wh
        grids, strides = [], []
        w, h = input_wh
        for s in STRIDES:
            gy, gx = np.meshgrid(np.arange(h // s), np.arange(w // s), indexing="ij")
            grids.append(np.stack([gx, gy], axis=-1).reshape(-1, 2))
            strides.append(np.full((grids[-1].shape[0], 1), s))
        self._grid = np.concatenate(grids).astype(np.float32)
        self._stride = np.concatenate(strides).astype(np.float32)

    def preprocess(
        self, frame_bgr: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.float32], Letterbox]:
        img, lb = letterbox(frame_bgr, self.input_wh, center=False)
        return img.transpose(2, 0, 1)[None].astype(np.float32), lb

    def decode(self, out: npt.NDArray[np.float32], min_score: float) -> RawBoxes:
        pred = out[0]
        scores_all = pred[:, 5:] * pred[:, 4:5]
        class_id = scores_all.argmax(axis=1)
        score = scores_all[np.arange(len(class_id)), class_id]
        keep = score >= min_score
        p = pred[keep]
        xy = (p[:, 0:2] + self._grid[keep]) * self._stride[keep]
        wh = np.exp(p[:, 2:4]) * self._stride[keep]
        xyxy = _cxcywh_to_xyxy(np.concatenate([xy, wh], axis=1))
        return RawBoxes(xyxy, score[keep].astype(np.float32), class_id[keep].astype(np.int64))


class Yolov8Layout:
    """Ultralytics YOLOv8/YOLO11: RGB 0..1, centred letterbox; boxes already in input pixels."""

    name: LayoutName = "yolov8"

    def __init__(self, input_wh: tuple[int, int]) -> None:
        self.input_wh = input_wh

    def preprocess(
        self, frame_bgr: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.float32], Letterbox]:
        img, lb = letterbox(frame_bgr, self.input_wh, center=True)
        rgb = img[:, :, ::-1].transpose(2, 0, 1)[None]
        return (rgb.astype(np.float32) / 255.0), lb

    def decode(self, out: npt.NDArray[np.float32], min_score: float) -> RawBoxes:
        pred = out[0].T  # (anchors, 4 + classes)
        cls = pred[:, 4:]
        class_id = cls.argmax(axis=1)
        score = cls[np.arange(len(class_id)), class_id]
        keep = score >= min_score
        xyxy = _cxcywh_to_xyxy(pred[keep, 0:4])
        return RawBoxes(xyxy, score[keep].astype(np.float32), class_id[keep].astype(np.int64))


Layout = YoloxLayout | Yolov8Layout


def make_layout(name: LayoutName, input_wh: tuple[int, int]) -> Layout:
    return YoloxLayout(input_wh) if name == "yolox" else Yolov8Layout(input_wh)
