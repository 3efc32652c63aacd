from __future__ import annotations

import numpy as np
import pytest

from edge.detectors.detections import Detections


def test_shapes_are_validated() -> None:
    with pytest.raises(ValueError, match=r"xyxy must have shape \(N, 4\)"):
        Detections(np.zeros((2, 3), np.float32), np.zeros(2, np.float32), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="score must have shape"):
        Detections(np.zeros((2, 4), np.float32), np.zeros(3, np.float32), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="class_id must have shape"):
        Detections(np.zeros((2, 4), np.float32), np.zeros(2, np.float32), np.zeros(1, np.int64))


def test_untracked_boxes_get_minus_one_and_selection_keeps_columns_aligned() -> None:
    d = Detections.from_arrays(
        [[0, 0, 10, 20], [5, 5, 7, 9], [1, 1, 2, 2]], [0.9, 0.2, 0.5], [0, 2, 0]
    )
    assert d.tracker_id.tolist() == [-1, -1, -1]
    sub = d[d.score > 0.4]
    assert len(sub) == 2
    assert sub.class_id.tolist() == [0, 0]
    assert sub.area_px.tolist() == [200.0, 1.0]
    assert sub.anchor_bottom_center.tolist() == [[5.0, 20.0], [1.5, 2.0]]
    assert len(Detections.empty()) == 0


def test_records_carry_label_and_track() -> None:
    d = Detections.from_arrays([[0, 0, 10, 20]], [0.91234], [1], tracker_id=[7])
    assert d.to_records(("person", "car")) == [
        {
            "label": "car",
            "class_id": 1,
            "score": 0.9123,
            "xyxy": [0.0, 0.0, 10.0, 20.0],
            "track_id": 7,
        }
    ]
