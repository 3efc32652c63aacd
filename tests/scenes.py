"""Disturbed street scenes for the motion gate, generated at run time from the COCO street
photos in the shared assets (never committed as videos).

What street cameras see although nothing happens: falling snow, rain streaks, bare trees and
foliage moving in place in the wind, a camera shaking by about 2 px, sensor noise. The
``*_enters`` scenes add an object (a car or a person cut from another photo) that comes in and
moves, which the gate must not sleep through. Everything is seeded: a scene's frames are the
same on every run. A few milliseconds a frame at 640x480.

    for f in scene_frames("snow"): ...   # f.image_bgr, f.ts_s, f.index, f.object_xyxy
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from edge.tools.scenarios.sprites import cutout, paste
from edge.tools.scenarios.sprites import photo as read_photo
from edge.tools.scenarios.weather import Rain, Snow

Image = npt.NDArray[np.uint8]
Ellipse = tuple[tuple[int, int], tuple[int, int]]
WH = (640, 480)
FPS = 10.0
JITTER_PX = 2.0
NOISE_SIGMA = 4.0


@dataclass(frozen=True)
class SceneFrame:
    image_bgr: Image
    ts_s: float
    index: int
    #: Where the entering object is (frame pixels), None when it is not in view.
    object_xyxy: tuple[int, int, int, int] | None = None
    #: The object moved since the previous frame.
    object_moving: bool = False


@dataclass(frozen=True)
class Mover:
    """An object cut from ``photo`` at ``crop_xyxy`` (a box the detector finds there), scaled,
    that moves from ``start_x`` to ``stop_x`` (its left edge) at ``speed_px`` a frame from
    frame ``enter_frame`` on, then stays (or is gone when it left the frame)."""

    photo: str
    crop_xyxy: tuple[int, int, int, int]
    scale: float
    y_bottom: int
    start_x: int
    stop_x: int
    speed_px: float
    enter_frame: int


@dataclass(frozen=True)
class Scene:
    name: str
    photo: str
    frames: int
    weather: str  # "snow", "rain" or "none"
    trees: bool = False
    #: Foliage that moves in the wind: ellipses (centre, axes) over canopies and hedges.
    foliage: tuple[Ellipse, ...] = ()
    #: Vehicles parked in the scene: (photo, crop xyxy, left x, bottom y).
    parked: tuple[tuple[str, tuple[int, int, int, int], int, int], ...] = ()
    mover: Mover | None = None
    seed: int = 11


# Boxes found by YOLOX-Nano in the photos (score >= 0.8): cars in 000000001532, children
# (one in red, one in white) in 000000001000.
_CAR_A = ("000000001532.jpg", (224, 360, 416, 478))
_CAR_B = ("000000001532.jpg", (0, 378, 113, 477))
_PARKED = ((*_CAR_A, 40, 470), (*_CAR_B, 420, 468))
#: A car drives in from the left and parks; a child in red walks through from the right;
#: a child in white walks through from the left, past the hedge.
_CAR_IN = Mover(*_CAR_A, 0.9, 462, -180, 250, 14.0, 100)
_RED_IN = Mover("000000001000.jpg", (261, 91, 357, 422), 0.6, 470, 650, -80, 7.0, 100)
_WHITE_IN = Mover("000000001000.jpg", (119, 147, 196, 387), 0.75, 476, -70, 660, 7.0, 100)
#: The canopies and hedges of 000000000724 (as covered to 640x480).
_LEAVES: tuple[Ellipse, ...] = (
    ((95, 95), (135, 125)), ((545, 105), (105, 125)), ((320, 215), (110, 45)),
    ((100, 372), (110, 32)), ((330, 312), (110, 25)), ((545, 322), (100, 22)),
    ((330, 385), (60, 12)),
)  # fmt: skip

SCENES: dict[str, Scene] = {
    s.name: s
    for s in [
        # The scene: snow, bare trees, shake, noise, two parked cars; nothing moves.
        Scene("snow", "000000008899.jpg", 480, "snow", trees=True, parked=_PARKED),
        Scene("rain", "000000008211.jpg", 300, "rain"),
        Scene("foliage", "000000000724.jpg", 300, "none", foliage=_LEAVES),
        Scene("snow_car_enters", "000000008899.jpg", 240, "snow", trees=True, mover=_CAR_IN),
        Scene("rain_person_enters", "000000008211.jpg", 240, "rain", mover=_RED_IN),
        Scene("foliage_person_enters", "000000000724.jpg", 240, "none", foliage=_LEAVES,
              mover=_WHITE_IN),
    ]
}  # fmt: skip
STILL = [n for n, s in SCENES.items() if s.mover is None]
ENTERING = [n for n, s in SCENES.items() if s.mover is not None]


def _cover(name: str) -> Image:
    """The photo scaled to cover WH, centre-cropped (as sample_videos/make_clips.py does)."""
    source = read_photo(name)
    h, w = source.shape[:2]
    scale = max(WH[0] / w, WH[1] / h)
    size = (round(w * scale), round(h * scale))
    image = np.asarray(cv2.resize(source, size, interpolation=cv2.INTER_AREA), np.uint8)
    y0, x0 = (image.shape[0] - WH[1]) // 2, (image.shape[1] - WH[0]) // 2
    return np.ascontiguousarray(image[y0 : y0 + WH[1], x0 : x0 + WH[0]])


def _cutout(photo: str, xyxy: tuple[int, int, int, int], scale: float) -> tuple[Image, Image]:
    """The crop and a soft alpha: an ellipse for a person (tall crop), a feathered rectangle
    for a vehicle, so no hard edge shows."""
    return cutout(read_photo(photo), xyxy, scale)


class _Trees:
    """Bare trees drawn as branching segments whose angles sway with the wind."""

    def __init__(self, rng: np.random.Generator, roots: list[tuple[int, int, float]]) -> None:
        # Segment: (parent index or -1, rest angle rad, length px, thickness px, depth, phase).
        self.segments: list[tuple[int, float, float, int, int, float]] = []
        self.roots = roots
        for root_i, (_, _, height) in enumerate(roots):
            self._grow(rng, -1 - root_i, -math.pi / 2, height, 6, 0)

    def _grow(
        self, rng: np.random.Generator, parent: int, angle: float, length: float, thick: int,
        depth: int,
    ) -> None:  # fmt: skip
        index = len(self.segments)
        self.segments.append((parent, angle, length, thick, depth, float(rng.uniform(0, 6.3))))
        if depth >= 6:
            return
        for side in (-1, 1):
            turn = side * float(rng.uniform(0.3, 0.65))
            shrink = float(rng.uniform(0.68, 0.82))
            self._grow(rng, index, angle + turn, length * shrink, max(1, thick - 1), depth + 1)

    def draw(self, frame: Image, t_s: float) -> None:
        ends: list[tuple[float, float, float]] = []  # per segment: end x, end y, angle
        gust = 0.6 + 0.4 * math.sin(2 * math.pi * 0.13 * t_s)
        for parent, rest, length, thick, depth, phase in self.segments:
            if parent < 0:
                root_x, root_y, _ = self.roots[-1 - parent]
                x, y, bent = float(root_x), float(root_y), 0.0
            else:
                x, y, parent_angle = ends[parent]
                bent = parent_angle - self.segments[parent][1]  # the parent's sway carries on
            # Thin twigs swing most, and each at its own pace.
            sway = gust * 0.06 * depth * math.sin(2 * math.pi * (0.6 + 0.15 * depth) * t_s + phase)
            angle = rest + sway + bent
            ex, ey = x + length * math.cos(angle), y + length * math.sin(angle)
            cv2.line(frame, (round(x), round(y)), (round(ex), round(ey)), (48, 52, 58), thick,
                     cv2.LINE_AA)  # fmt: skip
            ends.append((ex, ey, angle))


class _Foliage:
    """Leaves moving in place: green areas warped by a smooth displacement field that wanders
    with the wind (a few px, up to ~8) plus a fine flutter that changes every frame, and
    leaves turning in the light (brightness flicker)."""

    def __init__(self, rng: np.random.Generator, image: Image, areas: tuple[Ellipse, ...]) -> None:
        """``areas``: where the canopies and hedges are; their sky gaps and anything red (a
        stop sign) in front of them stay put."""
        self.rng = rng
        mask = np.zeros(image.shape[:2], np.uint8)
        for centre, axes in areas:
            cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1)
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        red = cv2.bitwise_or(
            cv2.inRange(hsv, (0, 90, 0), (12, 255, 255)),
            cv2.inRange(hsv, (165, 90, 0), (180, 255, 255)),
        )
        mask[(cv2.dilate(red, np.ones((25, 25), np.uint8)) > 0) | (hsv[..., 2] > 160)] = 0
        self.weight = cv2.GaussianBlur(mask.astype(np.float32) / 255, (15, 15), 0)
        gy, gx = np.mgrid[0 : WH[1], 0 : WH[0]].astype(np.float32)
        self.gx, self.gy = gx, gy
        self.coarse = np.zeros((2, 12, 16), np.float32)  # wind displacement, px
        self.map_x = np.empty_like(gx)
        self.map_y = np.empty_like(gy)

    def apply(self, frame: Image, out: Image) -> None:
        # A slow random walk pulled back to rest: leaves sway around where they hang.
        self.coarse += -0.3 * self.coarse + self.rng.normal(0, 4.0, self.coarse.shape)
        fine = self.rng.normal(0, 3.0, (3, 48, 64)).astype(np.float32)
        for axis, grid, dst in ((0, self.gx, self.map_x), (1, self.gy, self.map_y)):
            wind = cv2.resize(self.coarse[axis], WH, interpolation=cv2.INTER_CUBIC)
            flutter = cv2.resize(fine[axis], WH, interpolation=cv2.INTER_LINEAR)
            np.multiply(wind + flutter, self.weight, out=dst)
            dst += grid
        cv2.remap(frame, self.map_x, self.map_y, cv2.INTER_LINEAR, dst=out,
                  borderMode=cv2.BORDER_REFLECT)  # fmt: skip
        light = cv2.resize(fine[2], WH, interpolation=cv2.INTER_LINEAR) * (8 * self.weight)
        cv2.add(out, cv2.cvtColor(light, cv2.COLOR_GRAY2BGR), dst=out, dtype=cv2.CV_8U)


def _mover_x(m: Mover, index: int) -> float | None:
    if index < m.enter_frame:
        return None
    step = math.copysign(m.speed_px, m.stop_x - m.start_x)
    x = m.start_x + step * (index - m.enter_frame)
    return min(x, m.stop_x) if step > 0 else max(x, m.stop_x)


def _place(
    world: Image, m: Mover, cut: tuple[Image, Image], index: int
) -> tuple[tuple[int, int, int, int] | None, bool]:
    """Paste the mover where it is at frame ``index``: its box in view, and whether it moved."""
    x = _mover_x(m, index)
    if x is None:
        return None, False
    paste(world, *cut, round(x), m.y_bottom)
    h, w = cut[0].shape[:2]
    x0, x1 = max(0, round(x)), min(WH[0], round(x) + w)
    if x0 >= x1:
        return None, False
    return (x0, m.y_bottom - h, x1, m.y_bottom), x != _mover_x(m, index - 1)


def _base(scene: Scene) -> Image:
    base = _cover(scene.photo)
    for photo, xyxy, x, y_bottom in scene.parked:
        paste(base, *_cutout(photo, xyxy, 1.0), x, y_bottom)
    if scene.weather == "none":
        return base
    haze = cv2.addWeighted(base, 0.8, np.full_like(base, 200), 0.2, 0)  # overcast
    return np.asarray(haze, np.uint8)


def scene_frames(name: str) -> Iterator[SceneFrame]:
    """The frames of scene ``name`` (see SCENES), one at a time."""
    if name not in SCENES:
        raise KeyError(f"unknown scene {name!r}: choose from {sorted(SCENES)}")
    scene = SCENES[name]
    rng = np.random.default_rng(scene.seed)
    base = _base(scene)
    trees = _Trees(rng, [(110, 470, 95.0), (330, 455, 80.0), (590, 475, 100.0)])
    falling: Snow | Rain | None = None
    if scene.weather in ("snow", "rain"):
        falling = Snow(rng, WH) if scene.weather == "snow" else Rain(rng, WH)
    foliage = _Foliage(rng, base, scene.foliage) if scene.foliage else None
    m = scene.mover
    cut = _cutout(m.photo, m.crop_xyxy, m.scale) if m is not None else None
    # Noise from one large field, a random window of it per frame: cheap and varied enough.
    # (From the scene's own generator: cv2.randn would draw on OpenCV's process-wide one.)
    noise = np.rint(rng.normal(0, NOISE_SIGMA, (WH[1] + 64, WH[0] + 64, 3))).astype(np.int16)
    world, frame = np.empty_like(base), np.empty_like(base)
    for index in range(scene.frames):
        t_s = index / FPS
        if foliage is not None:
            foliage.apply(base, world)
        else:
            world[:] = base
        if scene.trees:
            trees.draw(world, t_s)
        box, moving = _place(world, m, cut, index) if m and cut else (None, False)
        dx, dy = rng.uniform(-JITTER_PX, JITTER_PX, 2)
        shake = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
        cv2.warpAffine(world, shake, WH, dst=frame, borderMode=cv2.BORDER_REFLECT)
        if falling is not None:
            falling.apply(frame)
        ox, oy = rng.integers(0, 64, 2)
        image = cv2.add(frame, noise[oy : oy + WH[1], ox : ox + WH[0]], dtype=cv2.CV_8U)
        yield SceneFrame(np.asarray(image, np.uint8), t_s, index, box, moving)
