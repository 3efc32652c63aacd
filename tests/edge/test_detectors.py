"""The real models on real photos: counts, and boxes checked against hand-drawn labels."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edge.detectors import OnnxDetectorConfig, create_detector
from edge.detectors.base import Detector
from edge.detectors.catalog import load_manifest

MODELS = ["yolox_nano", "yolov8n_int8"]
HAND_LABELS = yaml.safe_load((Path(__file__).parents[1] / "data" / "hand_labels.yaml").read_text())
# Road vehicles. YOLOv8n-int8 calls the white van in 000000001532.jpg a "truck" (0.74): it is
# counted as one of the cars, as a person counting cars in that photo would.
VEHICLES = {"car", "truck", "bus"}


@pytest.fixture(scope="module", params=MODELS)
def detector(request: pytest.FixtureRequest, assets: Path) -> Detector:
    return create_detector(
        OnnxDetectorConfig(model=request.param), load_manifest(), score_threshold=0.3, nms_iou=0.45
    )


def _labels(det: Detector, image: np.ndarray) -> tuple[list[str], np.ndarray]:
    d = det.detect(image)
    return [det.class_names[c] for c in d.class_id], d.xyxy


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def test_counts_people_in_crowd(detector: Detector, image_path: Callable[[str], Path]) -> None:
    names, _ = _labels(detector, cv2.imread(str(image_path("000000001000.jpg"))))
    assert names.count("person") >= 10


def test_counts_cars_in_traffic(detector: Detector, image_path: Callable[[str], Path]) -> None:
    names, _ = _labels(detector, cv2.imread(str(image_path("000000001532.jpg"))))
    assert sum(n in VEHICLES for n in names) >= 5
    assert names.count("car") >= 4


@pytest.mark.parametrize("image_name", sorted(HAND_LABELS))
def test_boxes_land_on_hand_labelled_objects(
    detector: Detector, image_path: Callable[[str], Path], image_name: str
) -> None:
    names, boxes = _labels(detector, cv2.imread(str(image_path(image_name))))
    found = []
    for truth in HAND_LABELS[image_name]:
        wanted = VEHICLES if truth["label"] == "car" else {truth["label"]}
        ious = [
            iou(np.asarray(truth["xyxy"], float), b)
            for n, b in zip(names, boxes, strict=True)
            if n in wanted
        ]
        if max(ious, default=0.0) >= 0.75:
            found.append(truth["note"])
    # A small dark SUV at the back of 000000001532.jpg scores 0.26 with YOLOv8n-int8: a real
    # miss at 0.3, so three of four labelled objects must be matched, not all.
    assert len(found) >= len(HAND_LABELS[image_name]) - 1, found


def test_boxes_are_in_frame_pixels_for_any_frame_size(
    detector: Detector, image_path: Callable[[str], Path]
) -> None:
    """Letterbox inversion: the same photo at half size gives boxes at half the coordinates."""
    image = cv2.imread(str(image_path("000000001000.jpg")))
    half = cv2.resize(
        image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA
    )
    full = detector.detect(image)
    small = detector.detect(half)
    best = full.xyxy[np.argmax(full.score)]
    matches = [iou(best / 2, b) for b in small.xyxy]
    assert max(matches) >= 0.8


def test_class_names_come_from_metadata_or_manifest(detector: Detector) -> None:
    assert len(detector.class_names) == 80
    assert detector.class_names[0] == "person"
    assert detector.class_names[2] == "car"
