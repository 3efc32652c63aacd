"""Motion gating on real frames: camera shake and sensor noise are still, a car arriving is
motion, stationary objects are re-checked, and jittering boxes do not count as moving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from contract.config.camera import MotionConfig
from edge.detectors.detections import Detections
from edge.pipeline.motion import MotionGate, MotionTracker
from edge.sources import open_source


def frames(path: Path) -> list[tuple[float, np.ndarray]]:
    with open_source(str(path), realtime=False) as src:
        return [(f.ts_s, f.image_bgr) for f in src.frames()]


@pytest.fixture(scope="module")
def parking(generated_clips: Path) -> list[tuple[float, np.ndarray]]:
    """Empty street with shake and noise for 5 s, then a car for 30 s (10 fps)."""
    return frames(generated_clips / "parking.mp4")


def test_shake_and_noise_are_still_and_an_arriving_car_is_motion(
    parking: list[tuple[float, np.ndarray]],
) -> None:
    gate = MotionGate(MotionConfig(enabled=True, refresh_s=100))
    first = gate.decide(parking[0][1], parking[0][0], moving=False)
    assert (first.detect, first.reason) == (True, "first")
    gate.detected(parking[0][0])
    # 4.5 s of an empty street, every frame shaken by up to 2 px and noisy.
    still = [gate.decide(img, ts, moving=False) for ts, img in parking[1:45]]
    assert [d.reason for d in still] == ["still"] * 44
    arrival = gate.decide(parking[50][1], parking[50][0], moving=False)
    assert (arrival.detect, arrival.reason) == (True, "motion")
    assert arrival.motion_fraction > 0.05


def test_the_reference_is_the_last_detected_frame(
    parking: list[tuple[float, np.ndarray]],
) -> None:
    """Skipped frames do not move the reference, so a change is seen until detected."""
    gate = MotionGate(MotionConfig(enabled=True, refresh_s=100))
    gate.decide(parking[0][1], 0.0, moving=False)
    gate.detected(0.0)
    for ts, img in parking[50:53]:
        assert gate.decide(img, ts, moving=False).reason == "motion"
    gate.detected(parking[52][0])  # the detector saw the car: the car scene is now still
    assert gate.decide(parking[60][1], parking[60][0], moving=False).reason == "still"


@pytest.mark.parametrize(("elapsed_s", "moving", "reason"), [
    (1.9, False, "still"),
    (2.0, False, "refresh"),
    (0.5, True, "moving"),
])  # fmt: skip
def test_refresh_and_moving_tracks_run_the_detector(
    parking: list[tuple[float, np.ndarray]], elapsed_s: float, moving: bool, reason: str
) -> None:
    gate = MotionGate(MotionConfig(enabled=True, refresh_s=2.0))
    gate.decide(parking[100][1], 10.0, moving=False)
    gate.detected(10.0)
    assert gate.decide(parking[101][1], 10.0 + elapsed_s, moving=moving).reason == reason


def test_a_person_walking_in_is_motion(image_path: Callable[[str], Path]) -> None:
    street = cv2.imread(str(image_path("000000008899.jpg")))
    crowd = cv2.imread(str(image_path("000000001000.jpg")))
    h, w = street.shape[:2]
    person = cv2.resize(crowd, (w // 8, h // 4))
    gate = MotionGate(MotionConfig(enabled=True))
    gate.decide(street, 0.0, moving=False)
    gate.detected(0.0)
    entered = street.copy()
    entered[h // 2 : h // 2 + person.shape[0], 10 : 10 + person.shape[1]] = person
    assert gate.decide(entered, 0.2, moving=False).reason == "motion"


def boxes(*xyxy: tuple[float, float, float, float]) -> Detections:
    n = len(xyxy)
    return Detections.from_arrays(
        xyxy=np.asarray(xyxy, np.float32),
        score=np.full(n, 0.9, np.float32),
        class_id=np.zeros(n, np.int64),
        tracker_id=np.arange(1, n + 1, dtype=np.int64),
    )


def test_box_jitter_is_not_movement_but_walking_is() -> None:
    tracker = MotionTracker(fraction=0.1, hold_s=1.0)
    tracker.update(boxes((100, 100, 160, 260)), 0.0)
    assert tracker.any_moving  # new in the scene
    rng = np.random.default_rng(3)
    ts = 0.0
    for _ in range(60):  # 2 s of a parked object at 30 fps, boxes jittering by 3 px
        ts += 1 / 30
        dx, dy = rng.uniform(-3, 3, 2)
        tracker.update(boxes((100 + dx, 100 + dy, 160 + dx, 260 + dy)), ts)
    assert not tracker.any_moving
    x = 100.0
    for _ in range(5):  # walking: 1 box width per second, at 5 fps
        ts += 0.2
        x += 12
        tracker.update(boxes((x, 100, x + 60, 260)), ts)
    assert tracker.any_moving
    tracker.update(boxes((x, 100, x + 60, 260)), ts + 1.5)  # stopped long enough
    assert not tracker.any_moving
