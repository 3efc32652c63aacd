"""Tampering at the lens, for the camera_tamper scenarios: a recipe's ``tamper`` steps drawn
on the camera's picture with edge/quality/simulate.py (the tamper tests draw the same)."""

from __future__ import annotations

import numpy as np

from edge.quality import simulate
from edge.tools.scenarios.recipe import Tamper
from edge.tools.scenarios.sprites import Image

#: A "turn" pans a window of this share of the world's width (the camera's view, zoomed in
#: a little for the whole video so that there is world beside it to turn to).
VIEW_WIDTH = 0.6


class Lens:
    def __init__(self, steps: list[Tamper], rng: np.random.Generator) -> None:
        self.steps = steps
        self.rng = rng
        self._turns = any(s.kind == "turn" for s in steps)

    def __call__(self, frame: Image, ts_s: float) -> Image:
        out = frame
        if self._turns:
            turned = next((s for s in self.steps if s.kind == "turn" and _on(s, ts_s)), None)
            start = 1.0 - VIEW_WIDTH - (turned.pan_frac if turned is not None else 0.0)
            out = simulate.pan_view(out, max(0.0, start), VIEW_WIDTH)
        for step in self.steps:
            if not _on(step, ts_s) or step.kind == "turn":
                continue
            if step.kind == "black":
                out = simulate.black_cover(out, self.rng)
            elif step.kind == "hand":
                out = simulate.hand_cover(out, self.rng)
            else:
                share = simulate.ramp(ts_s, step.start_s, step.ramp_s)
                out = simulate.defocus(out, share * step.blur_frac * out.shape[1])
        return out


def _on(step: Tamper, ts_s: float) -> bool:
    return ts_s >= step.start_s and (step.end_s is None or ts_s < step.end_s)
