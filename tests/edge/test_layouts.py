from __future__ import annotations

import numpy as np
import pytest

from edge.detectors.layouts import anchor_count, recognise_layout
from edge.detectors.letterbox import letterbox
from edge.errors import ModelError


@pytest.mark.parametrize(
    ("shape", "input_wh", "expected"),
    [
        ((1, 3549, 85), (416, 416), ("yolox", 80)),
        ((1, 84, 8400), (640, 640), ("yolov8", 80)),
        ((1, 6, 8400), (640, 640), ("yolov8", 2)),
        ((1, 8400, 7), (640, 640), ("yolox", 2)),
        ((4, 3549, 85), (416, 416), ("yolox", 80)),  # batched exports: any batch size
        ((-1, 84, 8400), (640, 640), ("yolov8", 80)),  # dynamic batch axis
    ],
)
def test_layout_recognised_from_shape(
    shape: tuple[int, ...], input_wh: tuple[int, int], expected: tuple[str, int]
) -> None:
    assert recognise_layout(shape, input_wh, "m.onnx") == expected


@pytest.mark.parametrize(
    "shape", [(1, 100, 85), (1, 84, 100), (1, 3549), (2, 3549, 4), (1, 1, 25200, 85)]
)
def test_unknown_layout_names_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ModelError, match=r"m\.onnx: unrecognised output layout"):
        recognise_layout(shape, (416, 416), "m.onnx")


def test_anchor_count_matches_real_models() -> None:
    assert anchor_count((416, 416)) == 3549
    assert anchor_count((640, 640)) == 8400


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("frame_wh", [(768, 432), (480, 640), (640, 640), (101, 37)])
def test_letterbox_round_trip(center: bool, frame_wh: tuple[int, int]) -> None:
    frame = np.zeros((frame_wh[1], frame_wh[0], 3), np.uint8)
    canvas, lb = letterbox(frame, (416, 416), center=center)
    assert canvas.shape == (416, 416, 3)
    box = np.array([[10.0, 5.0, frame_wh[0] - 3.0, frame_wh[1] - 2.0]], np.float32)
    in_net = box.copy()
    in_net[:, [0, 2]] = in_net[:, [0, 2]] * lb.scale + lb.pad_x_px
    in_net[:, [1, 3]] = in_net[:, [1, 3]] * lb.scale + lb.pad_y_px
    assert np.allclose(lb.to_frame(in_net, frame_wh), box, atol=1e-3)
    if not center:
        assert lb.pad_x_px == lb.pad_y_px == 0
