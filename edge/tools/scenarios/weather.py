"""Falling snow and rain over a frame (what a street camera sees although nothing happens).

Moved here from tests/scenes.py (the motion-gate scenes use them too). Both draw on the
generator they are given, in the same order on every run, so a seeded scene is the same
frame for frame; they only ever brighten the picture, as lit flakes and drops do.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


def blend_towards(frame: Image, mask: Image, level: int) -> None:
    """frame += (level - frame) * mask / 255, in place (only ever brightens)."""
    up = cv2.subtract(np.full_like(frame, level), frame)
    cv2.multiply(up, cv2.cvtColor(mask, cv2.COLOR_GRAY2BGR), dst=up, scale=1 / 255)
    cv2.add(frame, up, dst=frame)


class Snow:
    """Flakes in three depths: far ones small and slow, near ones large, soft and fast."""

    #: count, pixel offsets of a flake's shape (near flakes: radius), fall px/frame, level.
    FAR = (1400, ((0, 0), (0, 1), (1, 0)), 3.0, 180)
    MID = (450, ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1)), 7.0, 225)
    NEAR = (70, 8, 24.0, 200)

    def __init__(self, rng: np.random.Generator, wh: tuple[int, int]) -> None:
        self.rng = rng
        self.wh = wh
        self.xy = [
            rng.uniform((0, 0), wh, (n, 2)) for n in (self.FAR[0], self.MID[0], self.NEAR[0])
        ]
        self.mask = np.zeros(wh[::-1], np.uint8)
        self.near = np.zeros(wh[::-1], np.uint8)

    def apply(self, frame: Image) -> None:
        w, h = self.wh
        speeds = (self.FAR[2], self.MID[2], self.NEAR[2])
        for xy, speed in zip(self.xy, speeds, strict=True):
            n = len(xy)
            xy += np.column_stack([self.rng.normal(0.8, 1.0, n), self.rng.normal(speed, 1.0, n)])
            xy %= self.wh  # flakes that fall out come back at the top
        self.mask[:] = 0
        for xy, (_, shape, _, level) in zip(self.xy, (self.FAR, self.MID), strict=False):
            x, y = xy[:, 0].astype(np.intp), xy[:, 1].astype(np.intp)
            for dy, dx in shape:
                self.mask[(y + dy) % h, (x + dx) % w] = level
        self.near[:] = 0
        for x, y in self.xy[2].astype(np.int32).tolist():
            cv2.circle(self.near, (x, y), self.NEAR[1], self.NEAR[3], -1, cv2.LINE_AA)
        cv2.GaussianBlur(self.near, (11, 11), 0, dst=self.near)
        cv2.max(self.mask, self.near, dst=self.mask)
        blend_towards(frame, self.mask, 245)


class Rain:
    """Streaks of falling drops, new ones every frame (a drop crosses the view in one)."""

    def __init__(self, rng: np.random.Generator, wh: tuple[int, int]) -> None:
        self.rng = rng
        self.wh = wh
        self.mask = np.zeros(wh[::-1], np.uint8)

    def apply(self, frame: Image) -> None:
        self.mask[:] = 0
        rng = self.rng
        for count, length, thick, bright in ((700, 24.0, 1, 120), (60, 80.0, 3, 110)):
            x0 = rng.uniform(-40, self.wh[0], count)
            y0 = rng.uniform(-60, self.wh[1], count)
            n = rng.normal(length, length / 4, count)
            pts = np.column_stack([x0, y0, x0 + 0.2 * n, y0 + n]).astype(np.int32).tolist()
            for x, y, ex, ey in pts:
                cv2.line(self.mask, (x, y), (ex, ey), bright, thick, cv2.LINE_AA)
        blend_towards(frame, self.mask, 210)
