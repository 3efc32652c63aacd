"""What the camera does to the picture of the world: it shakes and drifts on its pole, rain
or snow falls in front of the lens, the light changes (dusk, street lights coming on, the
switch to infrared), and the sensor adds noise. Compression and lost frames happen later, in
the encoder (build.py).

The order is the physical one: the world is shifted by the mount's motion, weather is in
front of the lens (so it does not shift with the street), the light scales everything, and
noise comes last and grows as the picture darkens (the camera's gain goes up at dusk).
Each effect draws on its own random generator, spawned from the recipe's seed, so adding
rain to a recipe does not change its shake.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edge.tools.scenarios.recipe import Light, Recipe
from edge.tools.scenarios.sprites import Image
from edge.tools.scenarios.weather import Rain, Snow

# Colour casts: dusk turns blue, sodium street lights warm (BGR multipliers at full effect).
_DUSK_TINT = (1.0, 0.95, 0.85)
_LAMP_TINT = (0.8, 0.95, 1.15)
# Noise field larger than the frame: each frame takes a random window of it (cheap, varied).
_NOISE_PAD_PX = 64


def light_state(lights: list[Light], t_s: float) -> tuple[float, tuple[float, float, float], bool]:
    """(gain, BGR tint, infrared) at ``t_s``; effects combine in the recipe's order."""
    gain, tint, ir = 1.0, (1.0, 1.0, 1.0), False
    for light in lights:
        if light.kind == "dusk":
            assert light.end_s is not None  # the recipe checks it
            f = min(1.0, max(0.0, (t_s - light.start_s) / (light.end_s - light.start_s)))
            gain *= 1 + (light.gain - 1) * f
            tint = tuple(c * (1 + (d - 1) * f) for c, d in zip(tint, _DUSK_TINT, strict=True))  # type: ignore[assignment]
        elif t_s >= light.start_s and (light.end_s is None or t_s < light.end_s):
            gain *= light.gain
            if light.kind == "lights_on":
                tint = tuple(c * d for c, d in zip(tint, _LAMP_TINT, strict=True))  # type: ignore[assignment]
            else:
                ir = True
    return gain, tint, ir


def apply_light(frame: Image, lights: list[Light], t_s: float) -> tuple[Image, float]:
    """The frame as the camera exposes it, and the gain (for the noise)."""
    gain, tint, ir = light_state(lights, t_s)
    if ir:
        # Under infrared, leaves and skin reflect strongly and colour is gone: a grey picture
        # where green counts most.
        b, g, r = cv2.split(frame)
        grey = cv2.addWeighted(cv2.addWeighted(b, 0.15, g, 0.6, 0), 1.0, r, 0.25, 0)
        frame = np.asarray(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), np.uint8)
        tint = (1.0, 1.0, 1.0)
    if gain == 1.0 and tint == (1.0, 1.0, 1.0):
        return frame, gain
    scale = (gain * tint[0], gain * tint[1], gain * tint[2], 0.0)
    return np.asarray(cv2.multiply(frame, scale, dtype=cv2.CV_8U), np.uint8), gain


class Camera:
    """Mount motion, weather, light and sensor noise, frame after frame."""

    def __init__(self, recipe: Recipe, seed: np.random.SeedSequence) -> None:
        self.recipe = recipe
        self.wh = (recipe.size_px[0], recipe.size_px[1])
        shake, noise, weather = (np.random.default_rng(s) for s in seed.spawn(3))
        self._shake = shake
        self._noise_rng = noise
        self.weather: Snow | Rain | None = None
        if recipe.weather is not None:
            kind = Snow if recipe.weather.kind == "snow" else Rain
            self.weather = kind(weather, self.wh)
        self._noise: np.ndarray | None = None
        if recipe.camera_motion.noise_sigma > 0:
            pad = _NOISE_PAD_PX
            size = (self.wh[1] + pad, self.wh[0] + pad, 3)
            self._noise = noise.standard_normal(size, np.float32)
        self._out = np.empty((self.wh[1], self.wh[0], 3), np.uint8)

    def offset_px(self, t_s: float) -> tuple[float, float]:
        """How far the picture is shifted at ``t_s``: drift so far plus this frame's shake.
        Called once per frame, in order (the shake is random)."""
        motion = self.recipe.camera_motion
        f = t_s / self.recipe.duration_s
        dx, dy = motion.drift_px[0] * f, motion.drift_px[1] * f
        if motion.shake_px > 0:
            sx, sy = self._shake.uniform(-motion.shake_px, motion.shake_px, 2)
            dx, dy = dx + float(sx), dy + float(sy)
        return dx, dy

    def capture(self, world: Image, t_s: float) -> Image:
        """The camera's picture of ``world`` at ``t_s`` (a new array)."""
        dx, dy = self.offset_px(t_s)
        if dx or dy:
            shift = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
            cv2.warpAffine(world, shift, self.wh, dst=self._out, borderMode=cv2.BORDER_REFLECT)
        else:
            self._out[:] = world
        frame = self._out
        w = self.recipe.weather
        if self.weather is not None and w is not None:
            # The drops keep falling when out of the time window: only their drawing stops.
            active = t_s >= w.start_s and (w.end_s is None or t_s < w.end_s)
            scratch = frame.copy() if not active else frame
            self.weather.apply(scratch)
        frame, gain = apply_light(frame, self.recipe.light, t_s)
        return self._add_noise(frame, gain)

    def _add_noise(self, frame: Image, gain: float) -> Image:
        if self._noise is None:
            return frame.copy()
        sigma = self.recipe.camera_motion.noise_sigma * max(1.0, 1 / math.sqrt(gain))
        ox, oy = (int(v) for v in self._noise_rng.integers(0, _NOISE_PAD_PX, 2))
        window = self._noise[oy : oy + self.wh[1], ox : ox + self.wh[0]]
        noisy = frame.astype(np.float32) + sigma * window
        return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
