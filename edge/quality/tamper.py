"""Camera tamper and video-quality diagnosis: is the picture still a good view of the scene?

``TamperMonitor(cfg).update(frame_bgr, ts_s)`` per frame returns a ``TamperVerdict``: the
subtype held now (covered, turned, defocused, frozen, noisy, glare; None while the view is
healthy), since when, and the frame's measures (edge/quality/measures.py says what each is
and why it was chosen). Pure: no threads, no I/O; one monitor per camera.

The reference. The frames of the first ``reference_s`` are the camera's own picture: their
mean edge images and grey image, and their mean brightness, local contrast, sharpness and
noise. Judging a frame against the camera's own picture rather than against fixed levels
lets one configuration serve a bright hall and a dim car park. Afterwards the reference
follows the view as an exponential average with time constant ``adapt_s`` (minutes), but
only with frames that look healthy while no verdict is held or pending: slow drift of the
mount, dusk and weather are followed, a tamper is never learnt. ``reset()`` learns anew
(say after a camera was re-aimed on purpose: a turned verdict otherwise lasts).

A frame is judged as the first of these that fits (``classify``):

1. covered: the scene is lost (scene match below ``scene_match_min``) and the picture is
   dark or flat against the reference (brightness or local contrast below their share of
   the reference's). A lost scene alone cannot tell a cover from a turn on a featureless
   scene (bare asphalt is as flat as a hand); a cover blocks light or flattens the picture,
   a turned camera still sees a lit scene with its texture.
2. glare: a large share of the reference's structure lies under saturation that a change of
   exposure does not explain (``glare_loss_min``). Before frozen and turned: a bloom stills
   what it covers and spoils the scene match.
3. frozen: consecutive analysed frames are bit-identical or nearly (mean difference at most
   ``frozen_change_max``, 0.001 grey levels) and the camera is live: at least
   ``live_share_min`` of its analysed frames changed during the reference (and since, while
   healthy). A real sensor always has noise, but an encoder on a still scene can repeat a
   frame exactly (the hallway video has bit-identical neighbours): frozen is only judged on
   a camera whose picture did change frame to frame, only for frames that stop changing
   altogether, and only when that lasts the hold time. A still picture under a live clock
   overlay changes a little every second and is not frozen by this measure.
4. noisy: the noise estimate is at least ``noise_min`` and ``noise_ratio`` times the
   reference's. Snow, rain and a little sensor noise stay far below.
5. turned: the scene is lost and the picture is neither dark nor flat. The match trusts
   what the reference showed: a view made of nothing but things that leave (the bottle
   video cropped to the two bottles taken away mid-video) reads as another scene while
   they are gone. A view with some fixed structure (a kerb, a facade, a table's edge)
   does not.
   A strong blur also loses the scene match (the edges it compares are gone), so a lost
   scene whose sharpness collapsed while its coarse layout (the picture at 1/8 size,
   blurred) still correlates with the reference's (``coarse_match_min``) is defocused, not
   turned: a lens losing focus over 2 s read "turned" once the blur was strong.
6. defocused: sharpness fell below ``defocused_sharpness_ratio`` of the reference's while
   the scene still matches, or only its coarse layout does (above).

The scene match uses the frame's edges smoothed over time (``_smooth``): per pixel the lower
of the frame's edge image (widened by the shake allowed) and its exponential average over
SMOOTH_S. Snowflakes and rain streaks are in single frames and in the average only faintly;
the ghost of a view that has just gone (turned away) is in the average but not near any
edge of the frame. A frame that lost most of the average's edges at once (a cover) starts
the average over (EDGE_LOSS).

Over time (``_Hold``): a verdict must hold, not flicker. Frames that look tampered start a
run; spells of healthy-looking frames shorter than ``gap_s`` do not end it (the moments
while the smoothing lets go of a view that has just gone). Once a run has lasted ``hold_s``
with a tampered look for at least RUN_SHARE_MIN of it, the subtype seen longest in it is
raised and ``since_ts_s`` is when the run began (the event's start). A verdict ends when no
frame has shown its subtype for ``clear_s``; a run of another subtype meanwhile is raised
as soon as it qualifies and the held one has ended, with its own start.

Cost. Frames are analysed at most every ``interval_s`` (0.2 s) at 320 px: 6-8 ms each for
a 768x432 frame on the development machine (most of it the 96 small template matches), so
3-4 % of a core per camera; frames in between return the last verdict at no cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from contract.config.tamper import TamperConfig
from contract.vocabulary import COVERED, DEFOCUSED, FROZEN, GLARE, NOISY, TURNED
from edge.quality.measures import Features, FloatImage, Grey, Measures, Reference, change, work_grey

#: Time constant (s) of the average of the frame's edge images for the scene match.
SMOOTH_S = 0.5
#: A frame with less than this share of the average's edges (mean) starts the average over:
#: a cover takes the edges away at once, dusk and defocus over seconds, snow adds some.
EDGE_LOSS = 0.5
#: A run is raised only if frames looked tampered for at least this share of it.
RUN_SHARE_MIN = 0.75


def classify(m: Measures, cfg: TamperConfig, live: bool) -> str | None:
    """What one frame looks like against the reference (see the module docstring)."""
    lost = m.scene_match < cfg.scene_match_min
    if lost and (
        m.brightness_ratio < cfg.covered_brightness_ratio
        or m.local_contrast_ratio < cfg.covered_contrast_ratio
    ):
        return COVERED
    if m.glare_loss >= cfg.glare_loss_min:
        return GLARE
    if live and m.change <= cfg.frozen_change_max:
        return FROZEN
    if m.noise >= cfg.noise_min and m.noise_ratio >= cfg.noise_ratio:
        return NOISY
    blurred = m.sharpness_ratio < cfg.defocused_sharpness_ratio
    # A strong blur loses the fine edges the scene match compares, but not the picture's
    # coarse layout; a turned camera loses both (and stays sharp).
    if lost and not (blurred and m.coarse_match >= cfg.coarse_match_min):
        return TURNED
    if blurred:
        return DEFOCUSED
    return None


@dataclass(frozen=True)
class TamperVerdict:
    #: The verdict held now; None while the view is healthy (or still being learnt).
    subtype: str | None
    #: When the held verdict's run of tampered-looking frames began (the event's start).
    since_ts_s: float | None
    #: The last analysed frame's measures (None before the first).
    measures: Measures | None
    #: What the last analysed frame looked like on its own, before the hold.
    candidate: str | None = None
    #: The reference is still being learnt: nothing is judged yet.
    learning: bool = False


@dataclass
class _Run:
    """Frames that look tampered, with gaps shorter than gap_s."""

    since_ts_s: float
    last_ts_s: float
    #: Seconds each subtype was seen in the run.
    seen_s: dict[str, float] = field(default_factory=dict)


class _Hold:
    """Turns per-frame candidates into a verdict that holds (see the module docstring)."""

    def __init__(self, cfg: TamperConfig) -> None:
        self.cfg = cfg
        self.held: str | None = None
        self.held_since_ts_s: float | None = None
        self._held_seen_ts_s = 0.0
        self._run: _Run | None = None

    @property
    def quiet(self) -> bool:
        """Nothing held or pending: the view may teach the reference."""
        return self.held is None and self._run is None

    def step(self, candidate: str | None, ts_s: float, dt_s: float) -> None:
        cfg = self.cfg
        if self.held is not None:
            if candidate == self.held:
                self._held_seen_ts_s = ts_s
            elif ts_s - self._held_seen_ts_s >= cfg.clear_s:
                self.held = self.held_since_ts_s = None
        other = candidate if candidate != self.held else None
        run = self._run
        if other is not None:
            if run is None:
                run = self._run = _Run(ts_s, ts_s)
            run.seen_s[other] = run.seen_s.get(other, 0.0) + dt_s
            run.last_ts_s = ts_s
        elif run is not None and ts_s - run.last_ts_s > cfg.gap_s:
            run = self._run = None
        if self.held is None and run is not None:
            elapsed_s = ts_s - run.since_ts_s
            leading = max(run.seen_s, key=lambda subtype: run.seen_s[subtype])
            need_s = cfg.frozen_hold_s if leading == FROZEN else cfg.hold_s
            if elapsed_s >= need_s and sum(run.seen_s.values()) >= RUN_SHARE_MIN * elapsed_s:
                self.held = leading
                self.held_since_ts_s = run.since_ts_s
                self._held_seen_ts_s = ts_s
                self._run = None


class TamperMonitor:
    """One camera's tamper and video-quality diagnosis; ``update`` per frame."""

    def __init__(self, cfg: TamperConfig) -> None:
        self.cfg = cfg
        self._verdict = TamperVerdict(None, None, None)
        self._last_ts_s: float | None = None
        self._kernel = np.ones((2 * cfg.shake_px + 1,) * 2, np.uint8)
        self.reset()

    def reset(self) -> None:
        """Forget the reference and any verdict: the next frames are learnt anew."""
        self._reference = Reference(self.cfg.shake_px)
        self._hold = _Hold(self.cfg)
        self._start_ts_s: float | None = None
        self._previous: Grey | None = None
        self._average: FloatImage | None = None
        #: Share of analysed frames that changed (a mean while learning, then followed).
        self._live_share = 0.0
        self._live_steps = 0

    @property
    def live(self) -> bool:
        """The camera's picture changes frame to frame (frozen can be judged)."""
        return self._live_steps > 0 and self._live_share >= self.cfg.live_share_min

    def update(self, frame_bgr: npt.NDArray[np.uint8], ts_s: float) -> TamperVerdict:
        """Judge ``frame_bgr`` (BGR or grey) taken at ``ts_s``: the verdict held now."""
        cfg = self.cfg
        last = self._last_ts_s
        if not cfg.enabled or (last is not None and 0 <= ts_s - last < 0.9 * cfg.interval_s):
            return self._verdict  # 0.9: frame times jitter
        dt_s = 0.0 if last is None else max(0.0, ts_s - last)
        self._last_ts_s = ts_s
        grey = work_grey(frame_bgr, cfg.work_width_px)
        if self._previous is not None and self._previous.shape != grey.shape:
            self.reset()  # a new stream size: a new picture
        features = Features.of(grey)
        smoothed = self._smooth(features, dt_s)
        change_level = change(grey, self._previous)
        self._previous = grey
        if self._start_ts_s is None:
            self._start_ts_s = ts_s
        if ts_s - self._start_ts_s < cfg.reference_s or self._reference.frames == 0:
            self._reference.add(features)
            self._learn_live(change_level, None)
            measures = Measures.alone(features, change_level)
            self._verdict = TamperVerdict(None, None, measures, learning=True)
            return self._verdict
        measures = self._reference.compare(features, smoothed, change_level)
        candidate = classify(measures, cfg, self.live)
        self._hold.step(candidate, ts_s, dt_s)
        if candidate is None and self._hold.quiet:
            weight = 1.0 - math.exp(-dt_s / cfg.adapt_s)
            self._reference.add(features, weight)
            self._learn_live(change_level, weight)
        held = self._hold
        self._verdict = TamperVerdict(held.held, held.held_since_ts_s, measures, candidate)
        return self._verdict

    def _smooth(self, f: Features, dt_s: float) -> FloatImage:
        """The edges both in this frame and in its recent past (see the module docstring):
        per pixel the lower of the average and the frame's edges widened to their maximum
        over the shake allowed (a frame shaken off the average by that much still counts)."""
        average = self._average
        if (
            average is None
            or average.shape != f.edges.shape
            or float(f.edges.mean()) < EDGE_LOSS * float(average.mean())
        ):
            self._average = f.edges.copy()
            return self._average
        average += (1.0 - math.exp(-dt_s / SMOOTH_S)) * (f.edges - average)
        widened = np.stack([cv2.dilate(e, self._kernel) for e in f.edges])
        return np.minimum(average, widened)

    def _learn_live(self, change_level: float, weight: float | None) -> None:
        """Learn the share of analysed frames that changed (a plain mean while learning)."""
        if math.isnan(change_level):
            return
        changed = 1.0 if change_level > self.cfg.frozen_change_max else 0.0
        alpha = 1.0 / (self._live_steps + 1) if weight is None else weight
        self._live_share += alpha * (changed - self._live_share)
        self._live_steps += 1
