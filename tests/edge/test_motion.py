"""Motion gating on real frames: camera shake and sensor noise are still, a car arriving is
motion, stationary objects are re-checked, and jittering boxes do not count as moving.

On the disturbed street scenes of tests/scenes.py (snow, rain, foliage in the wind, each with
a 2 px shake and sensor noise, made from the COCO street photos) the gate holds while
nothing comes in, and asks for the detector when something does."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from contract.config.camera import MotionConfig
from edge.camera.chain import CameraChain
from edge.camera.detectors import build_detector
from edge.config import load_camera_config, with_motion
from edge.detectors.catalog import load_manifest
from edge.detectors.detections import Detections
from edge.pipeline.motion import GateDecision, MotionGate, MotionTracker, shrink
from edge.sources import open_source
from edge.sources.base import Frame
from tests.conftest import REPO
from tests.scenes import ENTERING, SCENES, STILL, SceneFrame, scene_frames


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


def imread(path: Path) -> npt.NDArray[np.uint8]:
    image = cv2.imread(str(path))
    assert image is not None, path
    return np.asarray(image, np.uint8)


def test_a_person_walking_in_is_motion(image_path: Callable[[str], Path]) -> None:
    street = imread(image_path("000000008899.jpg"))
    crowd = imread(image_path("000000001000.jpg"))
    h, w = street.shape[:2]
    person = np.asarray(cv2.resize(crowd, (w // 8, h // 4)), np.uint8)
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


def test_a_track_missed_for_a_while_and_found_where_it_was_is_not_moving() -> None:
    """Snow hides a parked car from the detector now and then: found again at its place it
    is not new; found elsewhere, it moved."""
    tracker = MotionTracker(fraction=0.1, hold_s=1.0)
    tracker.update(boxes((100, 100, 160, 260)), 0.0)
    tracker.update(boxes((100, 100, 160, 260)), 2.0)
    assert not tracker.any_moving
    tracker.update(Detections.empty(), 2.5)  # missed
    tracker.update(boxes((101, 99, 161, 259)), 3.0)
    assert not tracker.any_moving
    tracker.update(Detections.empty(), 3.5)
    tracker.update(boxes((140, 100, 200, 260)), 4.0)  # back, 40 px further on
    assert tracker.any_moving


def gate_on_scene(name: str) -> list[tuple[SceneFrame, GateDecision]]:
    """The gate alone over a scene, the detector taken to run whenever it is asked
    (``moving`` stays False: no tracker here, so all it sees is the picture)."""
    gate = MotionGate(MotionConfig(enabled=True))
    out = []
    for f in scene_frames(name):
        d = gate.decide(f.image_bgr, f.ts_s, moving=False)
        if d.detect:
            gate.detected(f.ts_s)
        out.append(
            (SceneFrame(np.empty(0, np.uint8), f.ts_s, f.index, f.object_xyxy, f.object_moving), d)
        )
    return out


@pytest.mark.slow  # generates hundreds of frames per scene
@pytest.mark.parametrize("scene", STILL)
def test_snow_rain_and_foliage_in_the_wind_are_still(scene: str) -> None:
    """Nothing comes in: the detector runs on the first frame and on the 2 s refreshes, and
    hardly ever for motion (measured: 5.0-5.6% of frames, 0-5 for motion; the earlier
    gate, which compared against the last detected frame alone, ran it on 100%, 21% and 84%
    of these frames)."""
    run = gate_on_scene(scene)
    reasons = [d.reason for _, d in run]
    detect_share = sum(d.detect for _, d in run) / len(run)
    assert detect_share <= 0.10, (scene, detect_share)
    assert reasons.count("motion") <= 0.02 * len(run), (scene, reasons.count("motion"))


@pytest.mark.slow  # generates hundreds of frames per scene
@pytest.mark.parametrize("scene", ENTERING)
def test_an_object_coming_in_through_snow_rain_or_foliage_is_motion(scene: str) -> None:
    """Measured: 6% of the frames before it (refreshes), motion on the third frame that
    shows it, and on 34-48% of the frames while it moves."""
    run = gate_on_scene(scene)
    first = next(i for i, (f, _) in enumerate(run) if f.object_xyxy is not None)
    before = [d.detect for _, d in run[:first]]
    assert sum(before) <= 0.10 * len(before), (scene, sum(before))
    # Seen within five frames (0.5 s at 10 fps) of showing its first pixels.
    assert any(d.reason == "motion" for _, d in run[first : first + 5]), scene
    # While it moves the gate keeps asking (a tracker's "moving" would ask on every frame);
    # a slow walker changes only a sliver a frame, so it counts every second or third frame.
    moving = [d.detect for f, d in run if f.object_moving]
    assert sum(moving) >= 0.2 * len(moving), (scene, sum(moving), len(moving))


def test_where_the_detector_found_an_object_the_gate_learns_no_tolerance() -> None:
    """Told that an object covers the trees, the gate does not learn the wind there as the
    scene's own (it would hide the object's leaving), so the wind keeps counting."""
    whole = np.array([[0, 0, 640, 480]], np.float32)
    motion = {"no boxes": 0, "box over all": 0}
    for label, boxes in (("no boxes", None), ("box over all", whole)):
        gate = MotionGate(MotionConfig(enabled=True))
        for f in itertools.islice(scene_frames("foliage"), 100):
            d = gate.decide(f.image_bgr, f.ts_s, moving=False)
            motion[label] += d.reason == "motion"
            if d.detect:
                gate.detected(f.ts_s, boxes)
    # Measured: 0 and 12.
    assert motion["no boxes"] <= 2, motion
    assert motion["box over all"] >= 6, motion


@pytest.mark.slow
def test_the_camera_chain_skips_most_frames_of_the_snowy_street(assets: Path) -> None:
    """The issue's scene through the real chain (detector, tracker, rules): two parked cars
    that snow and swaying branches make the detector miss now and then. Found again where
    they were, they are not new (the earlier gate and tracker ran the detector on all 480
    frames)."""
    cfg = with_motion(load_camera_config(REPO / "sample_videos" / "parking.camera.yaml"), "on")
    chain = CameraChain(cfg, build_detector(cfg, load_manifest()), fps=10.0)
    calls = frames = 0
    for f in scene_frames("snow"):
        frames += 1
        calls += chain.process(Frame(f.image_bgr, f.ts_s, f.index)).detected
    chain.finish()
    assert frames == SCENES["snow"].frames
    assert calls <= 0.25 * frames, calls


def test_a_precomputed_grey_gives_the_same_decisions(
    parking: list[tuple[float, np.ndarray]],
) -> None:
    """A decode thread can shrink the frame once and hand the grey in."""
    own, given = MotionGate(MotionConfig()), MotionGate(MotionConfig())
    for ts, img in parking[40:60]:
        a = own.decide(img, ts, moving=False)
        b = given.decide(img, ts, moving=False, grey=given.shrink(img))
        assert a == b
        if a.detect:
            own.detected(ts)
            given.detected(ts)
    with pytest.raises(ValueError, match="grey"):
        given.decide(parking[0][1], 9.0, moving=False, grey=parking[0][1])


@pytest.mark.parametrize("wh", [(640, 480), (640, 360), (1920, 1080), (768, 432), (120, 90)])
def test_shrink_averages_like_inter_area(
    wh: tuple[int, int], image_path: Callable[[str], Path]
) -> None:
    """Within a grey level or two of INTER_AREA at any size (exact halvings where the width
    is a power of two above the work width, the last step by INTER_AREA otherwise)."""
    image = np.asarray(cv2.resize(imread(image_path("000000008899.jpg")), wh), np.uint8)
    width = min(160, wh[0])
    size = (width, round(wh[1] * width / wh[0]))
    area = cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    want = cv2.GaussianBlur(area, (5, 5), 0)
    got = shrink(image, 160)
    assert got.shape == want.shape
    diff = np.abs(got.astype(int) - want)
    assert diff.mean() < 1.5
    assert np.percentile(diff, 99) <= 6
