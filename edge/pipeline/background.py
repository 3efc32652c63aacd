"""Class-free static foreground from a dual background model, sturdy against street life.

A long-term and a short-term background are kept as running averages of a small grey
frame. Where the frame differs from the long-term background but no longer from the
short-term one, something arrived a while ago and stayed: a static object (Porikli's dual
foreground). Long-term learning is masked where there is foreground, so a left object is not
absorbed. What a street camera adds, and how each is met:

- **Shake and jitter.** Strong edges (a sign pole, a kerb) that move by a pixel or two
  flicker in and out of the foreground; the morphological opening removes such thin lines,
  and what survives changes from frame to frame, so it never settles into a static blob.
  (Tolerating each pixel's 3x3 neighbourhood range was tried: it also hid low-contrast
  objects dumped beside the very edges it was meant to forgive.)
- **Lighting.** Dusk, a cloud or a street lamp change the whole picture by a smooth gain.
  The long-term background is compared after a gain field (the median frame/background ratio
  in each of 4x3 blocks, interpolated) is applied to it, so a gradual or sudden brightness
  change is not foreground; the median ignores an object covering part of a block. A change
  no gain explains (the camera switching to infrared grey) makes most of the frame foreground
  at once: the model then re-learns from the short-term background after ``2 * short_s``,
  keeping the old background (with the new gain) under the static objects it held, so they
  are still there afterwards. A blob whose frame/background ratio is nearly constant inside
  it (a shadow or a patch of light on the same texture) is illumination, not an object.
- **Ghosts, judged over time.** A "ghost" (the long-term background remembers an object that
  has gone) has its outline in the background rather than in the frame. One frame's verdict
  is noise (shake, sensor noise, a pole's edge in the outline band): a camera that shook once
  turned a dumped bag into a "ghost" and the bag was never reported. So each pixel keeps a
  ghost score: seconds judged ghost minus seconds judged real, bounded below at
  ``-ghost_hold_s`` (a blob long judged real has that much credit: just after a car that
  stood in front of a bag leaves, the bag's outline is half hidden and reads as a ghost for
  a few seconds). A blob is absorbed into the long-term background only when its score
  reaches ``ghost_hold_s``; a blob whose score is above 0 is not reported meanwhile (a true
  ghost must not fire).
- **Recovery.** An absorbed blob's old background is remembered for ``recover_s``. If the
  frame there keeps differing from that old background with its outline in the frame (the
  object is still there: the absorption was a mistake) for ``ghost_hold_s``, the old
  background and the blob's static age come back, and the blob is reported again.
- **Occlusion.** A pixel's static age is held (not reset) while something moves in front of
  it (it still differs from the long-term background), so a bag a passer-by walks past is
  static again, with its age, as soon as they have passed: a pixel that looks as it did
  when it was last static counts as static at once, although the short-term background
  still remembers the passer-by (a car that stood in front of a sack for 6 s otherwise hid
  it for 3.6 s more). The rules keep the incident itself open while it is hidden
  (edge/rules/sites.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from contract.config.camera import BackgroundConfig
from edge.pipeline.boxes import iou_matrix

Grey = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]
#: The gain field's blocks (columns, rows): large enough that a dumped object covers little
#: of one, small enough to follow a street lamp's pool of light.
_GAIN_BLOCKS = (4, 3)
#: Added to both sides of the frame/background ratio so dark pixels do not make it explode.
_RATIO_OFFSET = 8.0
#: Frame/background ratio this uniform (std/mean) inside a blob is a shadow or light patch.
_ILLUMINATION_CV = 0.06
#: Below this grey-level spread the background has no texture to compare.
_MIN_TEXTURE_STD = 6.0
#: Absorbed blobs remembered for recovery, at most (oldest forgotten first).
_MAX_ABSORBED = 32
_PAD_PX = 4


@dataclass(frozen=True)
class StaticBlobs:
    """Static foreground blobs: boxes (xyxy, frame pixels) and, for each, when its place
    began to differ from the background (the object, or whoever brought it, arrived)."""

    xyxy: npt.NDArray[np.float32]
    since_ts: npt.NDArray[np.float64]

    @staticmethod
    def empty() -> StaticBlobs:
        return StaticBlobs(np.empty((0, 4), np.float32), np.empty(0, np.float64))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> StaticBlobs:
        return StaticBlobs(self.xyxy[index], self.since_ts[index])


@dataclass
class _Absorbed:
    """A blob taken into the long-term background, kept in case it was a mistake."""

    ys: slice
    xs: slice
    mask: Mask
    old_long: Grey
    age_s: float
    since_ts: float
    absorbed_ts: float
    real_s: float = 0.0


class StaticForeground:
    def __init__(self, cfg: BackgroundConfig) -> None:
        self.cfg = cfg
        self._long: Grey | None = None
        self._short: Grey | None = None
        self._last_ts: float | None = None
        self._age_s: Grey | None = None
        self._ghost_s: Grey | None = None
        #: Seconds each pixel has differed from the long-term background without a break.
        self._fg_s: Grey | None = None
        #: How each pixel looked when it was last static (settled in the short-term model).
        self._look: Grey | None = None
        self._absorbed: list[_Absorbed] = []
        self._relearn_until_ts: float | None = None
        self._protect: Mask | None = None
        self._scale = 1.0
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))

    def _grey(self, frame_bgr: npt.NDArray[np.uint8]) -> Grey:
        h, w = frame_bgr.shape[:2]
        self._scale = self.cfg.work_width_px / w
        small = cv2.resize(
            frame_bgr,
            (self.cfg.work_width_px, max(1, round(h * self._scale))),
            interpolation=cv2.INTER_AREA,
        )
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return cv2.GaussianBlur(grey, (5, 5), 0).astype(np.float32)

    def update(
        self,
        frame_bgr: npt.NDArray[np.uint8],
        ts_s: float,
        min_area_px: float,
        explained_xyxy: npt.NDArray[np.float32] | None = None,
    ) -> StaticBlobs:
        """Static blobs at least ``min_area_px`` (frame pixels) large and not covered by an
        ``explained`` box (a person or vehicle standing there)."""
        g = self._grey(frame_bgr)
        if self._long is None or self._short is None or self._last_ts is None:
            self._long, self._short, self._last_ts = g.copy(), g.copy(), ts_s
            self._age_s, self._ghost_s = np.zeros_like(g), np.zeros_like(g)
            self._fg_s = np.zeros_like(g)
            self._look = np.full_like(g, -1e6)  # nothing has been static yet
            return StaticBlobs.empty()
        dt = max(1e-3, ts_s - self._last_ts)
        self._last_ts = ts_s
        gain = self._gain(g)
        long_seen = (self._long + _RATIO_OFFSET) * gain - _RATIO_OFFSET
        thr = float(self.cfg.diff_threshold)
        fg_long = np.abs(g - long_seen) > thr
        fg_short = np.abs(g - self._short) > thr
        cv2.accumulateWeighted(g, self._short, 1 - math.exp(-dt / self.cfg.short_s))
        if self._relearning(ts_s, fg_long, gain):
            return StaticBlobs.empty()
        assert self._look is not None
        # Static: settled into the short-term background, or looking again as it did when it
        # was last static (an occluder has just left; the short-term background still
        # remembers the occluder for a few seconds).
        settled = fg_long & (~fg_short | (np.abs(g - self._look) <= thr))
        opened = cv2.morphologyEx(settled.astype(np.uint8), cv2.MORPH_OPEN, self._kernel)
        static: Mask = cv2.morphologyEx(opened, cv2.MORPH_CLOSE, self._kernel).astype(bool)
        # The look follows the object while it matches (light changes), and is taken anew only
        # where nothing was static: a car standing in front of a sack is not the sack's look.
        assert self._age_s is not None
        same = (self._age_s <= 0) | (np.abs(g - self._look) <= thr)
        np.copyto(self._look, g, where=static & ~fg_short & same)
        self._update_age(static, fg_long, dt)
        learn = (1 - cv2.dilate(fg_long.astype(np.uint8), self._kernel)).astype(np.uint8)
        cv2.accumulateWeighted(g, self._long, 1 - math.exp(-dt / self.cfg.long_s), mask=learn)
        self._recover(g, ts_s, dt)
        blobs = self._blobs(g, long_seen, static, min_area_px, ts_s, dt)
        if explained_xyxy is not None and len(explained_xyxy) and len(blobs):
            covered = iou_matrix(blobs.xyxy, explained_xyxy.astype(np.float32)).max(axis=1) > 0.1
            blobs = blobs[~covered]
        return blobs

    def _gain(self, g: Grey) -> Grey:
        """The smooth gain that takes the long-term background to this frame's lighting."""
        assert self._long is not None
        cols, rows = _GAIN_BLOCKS
        h, w = g.shape
        bh, bw = max(1, h // rows), max(1, w // cols)
        ratio = (g[: rows * bh, : cols * bw] + _RATIO_OFFSET) / (
            self._long[: rows * bh, : cols * bw] + _RATIO_OFFSET
        )
        blocks = ratio.reshape(rows, bh, cols, bw).transpose(0, 2, 1, 3).reshape(rows, cols, -1)
        med = np.median(blocks, axis=2).astype(np.float32)
        field: Grey = cv2.resize(med, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        return field

    def _update_age(self, static: Mask, fg_long: Mask, dt: float) -> None:
        """Seconds each pixel has been static; held while something passes in front of it
        (still foreground against the long-term background), reset where it is background."""
        assert self._age_s is not None
        assert self._ghost_s is not None
        assert self._fg_s is not None
        self._fg_s = np.where(fg_long, self._fg_s + dt, 0.0).astype(np.float32)
        self._age_s = np.where(
            static, self._age_s + dt, np.where(fg_long, self._age_s, 0.0)
        ).astype(np.float32)
        self._ghost_s[~fg_long] = 0.0

    def _relearning(self, ts_s: float, fg_long: Mask, gain: Grey) -> bool:
        """A change no gain explains covers most of the frame: wait ``2 * short_s`` for the
        short-term background to settle on the new look, then re-learn from it. True while
        waiting (no blobs are judged)."""
        assert self._long is not None
        assert self._short is not None
        assert self._age_s is not None
        if self._relearn_until_ts is None:
            if float(fg_long.mean()) < self.cfg.global_change_fraction:
                return False
            self._relearn_until_ts = ts_s + 2 * self.cfg.short_s
            settled = (self._age_s >= self.cfg.short_s).astype(np.uint8)
            self._protect = cv2.dilate(settled, self._kernel).astype(bool)
            return True
        if ts_s < self._relearn_until_ts:
            return True
        assert self._protect is not None
        kept = (self._long + _RATIO_OFFSET) * gain - _RATIO_OFFSET
        self._long = np.where(self._protect, kept, self._short).astype(np.float32)
        self._absorbed.clear()  # their old backgrounds are of the old look
        self._relearn_until_ts, self._protect = None, None
        return True

    def _blobs(
        self, g: Grey, long_seen: Grey, static: Mask, min_area_px: float, ts_s: float, dt: float
    ) -> StaticBlobs:
        assert self._age_s is not None
        assert self._ghost_s is not None
        assert self._fg_s is not None
        assert self._long is not None
        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            static.astype(np.uint8), connectivity=8
        )
        area_scale = self._scale * self._scale
        boxes: list[list[float]] = []
        since: list[float] = []
        for i in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area / area_scale < min_area_px:
                continue
            # Work inside the blob's box (plus a margin for its outline), not the whole frame.
            ys = slice(max(0, y - _PAD_PX), y + h + _PAD_PX)
            xs = slice(max(0, x - _PAD_PX), x + w + _PAD_PX)
            blob = labels[ys, xs] == i
            if float(np.median(self._age_s[ys, xs][blob])) < self.cfg.short_s:
                continue  # the short-term background is still taking the new look in
            if _illumination(g[ys, xs], long_seen[ys, xs], blob):
                continue
            if not self._judge(g, ys, xs, blob, ts_s, dt):
                continue
            s = self._scale
            boxes.append([x / s, y / s, (x + w) / s, (y + h) / s])
            since.append(ts_s - float(np.median(self._fg_s[ys, xs][blob])))
        return StaticBlobs(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(since))

    def _judge(self, g: Grey, ys: slice, xs: slice, blob: Mask, ts_s: float, dt: float) -> bool:
        """Add this frame's ghost verdict to the blob's score; absorb a blob whose score has
        reached ``ghost_hold_s``. True: report the blob (no ghost evidence stands)."""
        assert self._ghost_s is not None
        assert self._long is not None
        assert self._age_s is not None
        assert self._fg_s is not None
        ghost = self._is_ghost(g[ys, xs], self._long[ys, xs], blob)
        score = self._ghost_s[ys, xs]
        # Bounded both ways: a blob long judged real has that much credit against a spell of
        # ghost verdicts (its outline half hidden just after an occluder left).
        score[blob] = np.clip(score[blob] + (dt if ghost else -dt), -self.cfg.ghost_hold_s, None)
        held = float(np.median(score[blob]))
        if held < self.cfg.ghost_hold_s:
            return held <= 0.0
        self._absorbed.append(
            _Absorbed(
                ys,
                xs,
                blob.copy(),
                self._long[ys, xs].copy(),
                float(np.median(self._age_s[ys, xs][blob])),
                ts_s - float(np.median(self._fg_s[ys, xs][blob])),
                ts_s,
            )
        )
        del self._absorbed[:-_MAX_ABSORBED]
        np.copyto(self._long[ys, xs], g[ys, xs], where=blob)
        score[blob] = 0.0
        self._age_s[ys, xs][blob] = 0.0
        return False

    def _recover(self, g: Grey, ts_s: float, dt: float) -> None:
        """Give an absorbed blob back when the object is evidently still there."""
        assert self._long is not None
        assert self._age_s is not None
        assert self._fg_s is not None
        thr = float(self.cfg.diff_threshold)
        kept: list[_Absorbed] = []
        for a in self._absorbed:
            if ts_s - a.absorbed_ts > self.cfg.recover_s:
                continue
            frame, old = g[a.ys, a.xs], a.old_long
            differs = float((np.abs(frame - old)[a.mask] > thr).mean()) > 0.5
            if not differs:
                continue  # the place looks as it did before: the object has gone
            real = not self._is_ghost(frame, old, a.mask.astype(np.uint8))
            a.real_s = max(0.0, a.real_s + (dt if real else -dt))
            if a.real_s >= self.cfg.ghost_hold_s:
                np.copyto(self._long[a.ys, a.xs], old, where=a.mask)
                self._age_s[a.ys, a.xs][a.mask] = a.age_s + (ts_s - a.absorbed_ts)
                self._fg_s[a.ys, a.xs][a.mask] = ts_s - a.since_ts
                continue
            kept.append(a)
        self._absorbed = kept

    def _is_ghost(self, frame: Grey, background: Grey, blob: Mask | npt.NDArray[np.uint8]) -> bool:
        """A real object has its outline in the frame; a ghost has it in the background."""
        b = blob.astype(np.uint8)
        band = (cv2.dilate(b, self._kernel) - cv2.erode(b, self._kernel)).astype(bool)

        def outline(img: Grey) -> float:
            gx = cv2.Sobel(img, cv2.CV_32F, 1, 0)
            gy = cv2.Sobel(img, cv2.CV_32F, 0, 1)
            return float(np.hypot(gx, gy)[band].mean())

        return outline(background) > 1.2 * outline(frame)


def _illumination(frame: Grey, background: Grey, blob: Mask) -> bool:
    """The blob is the same texture, darker or lighter (a shadow, a light): the frame/background
    ratio is nearly the same all over it. On a surface without texture a plain object and a
    shadow look alike: such a blob counts as an object (a missed bag is worse than a shadow
    that stood still long enough)."""
    if float(background[blob].std()) < _MIN_TEXTURE_STD:
        return False
    ratio = (frame[blob] + _RATIO_OFFSET) / (background[blob] + _RATIO_OFFSET)
    return float(ratio.std()) < _ILLUMINATION_CV * float(ratio.mean())
