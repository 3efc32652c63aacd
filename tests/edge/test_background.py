"""The dual background model on a real street photo, shaken and noisy as street cameras are.

Each test here reproduces a failure found while building the scenario suite (issue 17) and
fails on the model before it: a single noisy ghost verdict that erased a dumped object for
good, a lighting change reported as an object, a shadow crossing the pavement.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from contract.config.camera import BackgroundConfig
from edge.paths import assets_dir
from edge.pipeline.background import StaticBlobs, StaticForeground

Image = npt.NDArray[np.uint8]
FPS = 10.0
WH = (480, 640)  # the portrait photo 000000000724 (stop sign on a pole), scaled x1.28
#: A grey bag dumped on the pavement against the sign pole, as low in contrast as a real
#: one: about 30 grey levels from the kerb it lies on.
BAG_CENTRE, BAG_AXES = (232, 560), (20, 14)
BAG_XYXY = (212, 546, 252, 574)


@cache
def _street() -> Image:
    photo = cv2.imread(str(assets_dir() / "images" / "000000000724.jpg"))
    if photo is None:
        raise FileNotFoundError("000000000724.jpg missing from the shared assets")
    return np.asarray(cv2.resize(photo, WH, interpolation=cv2.INTER_AREA), np.uint8)


def _camera(img: Image, rng: np.random.Generator, shake_px: float = 2.0) -> Image:
    """Shake by up to ``shake_px`` and sensor noise (sigma 4), as the issue's camera."""
    dx, dy = rng.uniform(-shake_px, shake_px, 2)
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(img, m, WH, borderMode=cv2.BORDER_REFLECT)
    return np.clip(moved + rng.normal(0, 4, moved.shape), 0, 255).astype(np.uint8)


def _with_bag(img: Image) -> Image:
    out = img.copy()
    cv2.ellipse(out, BAG_CENTRE, BAG_AXES, 0, 0, 360, (105, 110, 115), -1)
    return out


def _run(
    make: Callable[[float], Image], seconds: float, cfg: BackgroundConfig | None = None
) -> list[StaticBlobs]:
    bg = StaticForeground(cfg or BackgroundConfig())
    return [bg.update(make(i / FPS), i / FPS, 400.0) for i in range(round(seconds * FPS))]


def _on_bag(blobs: StaticBlobs) -> bool:
    x0, y0, x1, y1 = BAG_XYXY
    return any(b[0] < x1 and b[2] > x0 and b[1] < y1 and b[3] > y0 for b in blobs.xyxy)


@pytest.mark.parametrize("seed", [0])  # seed 1 fails the old model the same way
def test_a_bag_beside_a_pole_on_a_shaking_camera_is_never_absorbed(seed: int) -> None:
    """Regression: found ~5 s after the drop, then one frame's ghost verdict copied it into
    the long-term background at 25-28 s and it was never reported again (seeds 0 and 1)."""
    rng = np.random.default_rng(seed)
    street, bag = _street(), _with_bag(_street())
    found = _run(lambda t: _camera(bag if t >= 5 else street, rng), 60)
    on_bag = np.asarray([_on_bag(b) for b in found])
    assert not on_bag[: round(6 * FPS)].any()  # not before it had time to settle
    assert on_bag[round(12 * FPS) :].mean() > 0.9, on_bag[round(12 * FPS) :].mean()
    assert on_bag[-round(2 * FPS) :].mean() > 0.8  # still reported at the end (the rule
    # bridges single-frame gaps: absence_s)


# Synthetic texture: the basic behaviour, independent of any photo.
def _scene(rng: np.random.Generator) -> np.ndarray:
    texture = rng.integers(60, 200, (60, 80, 3), dtype=np.uint8)
    return cv2.resize(texture, (640, 480), interpolation=cv2.INTER_CUBIC)


def _noisy(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def test_dual_background_finds_a_left_object_and_forgets_it_when_removed() -> None:
    rng = np.random.default_rng(1)
    scene = _scene(rng)
    with_bag = scene.copy()
    cv2.rectangle(with_bag, (300, 300), (360, 360), (20, 20, 200), -1)
    bg = StaticForeground(BackgroundConfig(short_s=1.0, long_s=300))
    found = {}
    for i in range(150):  # 10 fps: empty 3 s, bag 8 s, empty 4 s
        t = i / 10
        img = with_bag if 3 <= t < 11 else scene
        found[round(t, 1)] = bg.update(_noisy(img, rng), t, min_area_px=400)
    assert all(len(found[t]) == 0 for t in found if t < 3.5)  # arriving: not static yet
    blobs = found[9.0]
    assert len(blobs) == 1
    assert np.allclose(blobs.xyxy[0], [300, 300, 361, 361], atol=6)
    assert blobs.since_ts[0] == pytest.approx(3.0, abs=0.2)  # when the bag arrived
    assert len(found[14.9]) == 0  # removed: gone


def test_dual_background_absorbs_a_ghost() -> None:
    """An object in the first frame, then removed, must not leave a static blob behind."""
    rng = np.random.default_rng(2)
    scene = _scene(rng)
    with_bag = scene.copy()
    cv2.rectangle(with_bag, (300, 300), (360, 360), (20, 20, 200), -1)
    bg = StaticForeground(BackgroundConfig(short_s=1.0, long_s=300))
    late = []
    for i in range(120):
        t = i / 10
        img = with_bag if t < 2 else scene
        blobs = bg.update(_noisy(img, rng), t, min_area_px=400)
        if t > 6:
            late.append(len(blobs))
    assert sum(late) == 0


def test_dual_background_ignores_blobs_under_people() -> None:
    rng = np.random.default_rng(3)
    scene = _scene(rng)
    standing = scene.copy()
    cv2.rectangle(standing, (100, 100), (160, 300), (30, 30, 30), -1)
    bg = StaticForeground(BackgroundConfig(short_s=1.0))
    person = np.asarray([[95, 95, 165, 305]], np.float32)
    for i in range(100):
        t = i / 10
        blobs = bg.update(_noisy(standing if t >= 2 else scene, rng), t, 400, person)
    assert len(blobs) == 0


def test_a_bag_is_static_again_as_soon_as_the_car_in_front_of_it_leaves() -> None:
    """Regression (issue 17, litter_car_in_front): a car stood 6 s in front of a bag; when
    it left, the short-term background still held the car and the bag was not static for
    3.6 s more, longer than the rule's absence_s (the incident split in two)."""
    rng = np.random.default_rng(4)
    scene = _scene(rng)
    bag = scene.copy()
    cv2.rectangle(bag, (300, 300), (360, 360), (20, 20, 200), -1)
    car = bag.copy()
    cv2.rectangle(car, (200, 250), (500, 420), (200, 200, 200), -1)
    bg = StaticForeground(BackgroundConfig(short_s=2.0))
    seen_after: list[float] = []
    for i in range(200):  # 10 fps: bag from 1 s, car in front 8-14 s, bag alone after
        t = i / 10
        img = scene if t < 1 else car if 8 <= t < 14 else bag
        blobs = bg.update(_noisy(img, rng), t, 400)
        on_bag = any(abs(b[0] - 300) < 20 and abs(b[1] - 300) < 20 for b in blobs.xyxy)
        if t >= 14 and on_bag:
            seen_after.append(t)
    assert seen_after, "the bag never came back"
    assert seen_after[0] <= 14.5, seen_after[0]
