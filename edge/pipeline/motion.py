"""Motion gating: decide per frame whether the detector has to run at all.

Detection is the cost on an edge box. A frame that differs from the frame the detector last
saw only by noise cannot hold new objects, so its detections are the last ones carried
forward. The comparison is against the last *detected* frame, not the previous frame, so slow
changes add up until they count.

What a street camera sees while nothing happens must not count either: the camera shakes,
the sensor is noisy, snow and rain fall, trees and hedges move in the wind. So:

- the reference is the per-pixel median of the detected frame and the two before it (a
  flake or a drop in one of them is not in it; a large change, an object, is kept as the
  detector saw it), widened to its 3x3 min/max (a pixel of shake);
- a pixel has changed when it left that range by more than the threshold *plus what the
  pixel learnt to vary by on its own*: a low quantile of its change over 0.1 s, which
  leaves fluttering all the time and shaken edges raise, and passing flakes (a step in ten)
  or an object that comes in for a second or two hardly do; nothing is learnt while a
  tracked object moves, nor (when the caller passes boxes) where the detector found one;
- a change counts as a blob: a large one at once, one down to ``min_area_fraction`` of the
  frame only where the previous frame changed too (a flake is elsewhere a frame later, an
  object that came in is still there).

The frame is shrunk once to a small grey (``shrink``, which a decode thread may do and pass
in); every other array is the gate's own, made once, so a frame allocates next to nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from contract.config.camera import MotionConfig
from edge.detectors.detections import Detections

Grey = npt.NDArray[np.uint8]
ImageBGR = npt.NDArray[np.uint8]
_KERNEL = np.ones((3, 3), np.uint8)
#: Tolerance per grey level a pixel learnt to vary by: leaves that flutter by 10 in 0.1 s
#: swing by several times that between a reference and a frame seconds later.
ACTIVITY_GAIN = 4.0
#: A blob this many times ``min_area_fraction`` counts at once; smaller ones (down to
#: ``min_area_fraction``) only where they changed in two frames running. Near snowflakes at
#: work size reach two to three times ``min_area_fraction``, a few merged ones four.
IMMEDIATE_AREA = 5.0
#: The learning step: the change over this long is what a pixel is learnt to vary by. The
#: learnt level goes down at every step, up at most every RISE_EVERY_S (every step for the
#: first WARMUP_S): it settles where RISE_EVERY_S / (LEARN_EVERY_S + RISE_EVERY_S) of the
#: steps (3 in 4) change more, and takes seconds, not frames, to rise.
LEARN_EVERY_S = 0.1
RISE_EVERY_S = 0.3
WARMUP_S = 3.0
#: A track missing this long is forgotten by MotionTracker.
FORGET_TRACK_S = 60.0


def _halvings(width: int, work_width_px: int) -> int:
    """How many exact halvings a frame of ``width`` takes on its way to the work width."""
    n = 0
    while width >= 2 * work_width_px:
        width //= 2
        n += 1
    return n


def work_size(wh: tuple[int, int], work_width_px: int) -> tuple[int, int]:
    """The (width, height) of the grey work frame of a ``wh`` frame."""
    w, h = wh
    width = min(work_width_px, w)
    return width, max(1, round(h * width / w))


def shrink(
    image_bgr: ImageBGR,
    work_width_px: int,
    *,
    out: Grey | None = None,
    scratch: list[npt.NDArray[np.uint8]] | None = None,
) -> Grey:
    """The frame as the gate compares it: grey, ``work_width_px`` wide, blurred.

    Pure and thread-safe (a decode thread can compute it once per frame and hand it over):
    it writes only to ``out`` and ``scratch`` (the caller's reusable buffers; None: new).
    Grey first (the one full-size pass), then halvings by linear interpolation, which
    average 2x2 blocks (exactly, for even sizes), then INTER_AREA for the rest of the way:
    the frame is averaged down as INTER_AREA alone would, at a fraction of its cost. The
    blur keeps sensor noise and a pixel of shake small.
    """
    h, w = image_bgr.shape[:2]
    size = work_size((w, h), work_width_px)
    small = _u8(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY, dst=_buffer(scratch, 0, (h, w))))
    halvings = _halvings(w, work_width_px)
    for i in range(halvings):
        half = (small.shape[1] // 2, small.shape[0] // 2)
        dst = _buffer(scratch, 1 + i, half[::-1])
        small = _u8(cv2.resize(small, half, dst=dst, interpolation=cv2.INTER_LINEAR))
    if (small.shape[1], small.shape[0]) != size:
        dst = _buffer(scratch, 1 + halvings, size[::-1])
        small = _u8(cv2.resize(small, size, dst=dst, interpolation=cv2.INTER_AREA))
    if out is None or out.shape != small.shape:
        out = np.empty_like(small)
    cv2.GaussianBlur(small, (5, 5), 0, dst=out)
    return out


def _u8(array: object) -> Grey:
    """OpenCV's result as the uint8 array it is (no copy)."""
    return np.asarray(array, np.uint8)


def _buffer(
    scratch: list[npt.NDArray[np.uint8]] | None, slot: int, shape: tuple[int, ...]
) -> npt.NDArray[np.uint8] | None:
    """Slot ``slot`` of the caller's scratch buffers, (re)made at ``shape``."""
    if scratch is None:
        return None
    while len(scratch) <= slot:
        scratch.append(np.empty(0, np.uint8))
    if scratch[slot].shape != shape:
        scratch[slot] = np.empty(shape, np.uint8)
    return scratch[slot]


@dataclass(frozen=True)
class GateDecision:
    detect: bool
    #: Why: "first", "refresh", "moving", "settling", "motion" or "still".
    reason: str
    motion_fraction: float = 0.0


class _Buffers:
    """Every array the gate needs per frame, made once per work size."""

    def __init__(self, shape: tuple[int, int]) -> None:
        def grey() -> Grey:
            return np.zeros(shape, np.uint8)

        self.shape = shape
        #: The last three work frames, newest first.
        self.frames = [grey(), grey(), grey()]
        self.seen = 0
        self.low, self.high = grey(), grey()
        self.up, self.down, self.tolerance = grey(), grey(), grey()
        self.changed, self.kept, self.prev_changed = grey(), grey(), grey()
        #: ``prev_changed`` is the previous frame's, against the same reference.
        self.prev_changed_valid = False
        #: Per pixel, what it varies by over LEARN_EVERY_S on its own (grey levels), learnt
        #: against ``learnt``, the frame of the last learning step.
        self.activity, self.learnt = grey(), grey()
        self.learnt_ts_s: float | None = None
        self.rise_ts_s = self.start_ts_s = 0.0
        #: 0 where the last detection found an object: its variation is not learnt there.
        self.learnable = np.full(shape, 255, np.uint8)
        #: Width of the frames (before shrinking), to map object boxes to the work size.
        self.image_w = shape[1]
        self.ones = np.ones(shape, np.uint8)
        self.labels = np.zeros(shape, np.int32)
        self.scratch: list[npt.NDArray[np.uint8]] = []

    @property
    def frame(self) -> Grey:
        return self.frames[0]


class MotionGate:
    """One camera's gate. ``decide`` then, if the detector ran, ``detected``."""

    def __init__(self, cfg: MotionConfig, refresh_phase_s: float = 0.0) -> None:
        """``refresh_phase_s``: the first refresh comes this much sooner. Cameras of a box
        start together; with phases spread over ``refresh_s`` their still scenes' refreshes
        do not all fall on the same turn of the detect stage (a burst that delays them all)."""
        self.cfg = cfg
        self.refresh_phase_s = refresh_phase_s % cfg.refresh_s
        self._buf: _Buffers | None = None
        self._has_reference = False
        self._last_detect_ts_s = float("-inf")
        self._last_motion_ts_s = float("-inf")

    def shrink(self, image_bgr: ImageBGR) -> Grey:
        """This gate's work frame of ``image_bgr`` (a new array; thread-safe)."""
        return shrink(image_bgr, self.cfg.work_width_px)

    def decide(
        self,
        image_bgr: ImageBGR,
        ts_s: float,
        *,
        moving: bool,
        settling: bool = False,
        grey: Grey | None = None,
    ) -> GateDecision:
        """``moving``: a tracked object is in motion, so its carried box would fall behind.
        ``settling``: the detector saw something the tracker has not taken up yet. Carried
        forward, its score would stay frozen on one side of the tracker's threshold, so while
        there was motion lately it gets fresh detections (a still scene's clutter does not).
        ``grey``: the frame's work frame (``shrink``) when it was made already."""
        buf = self._take(image_bgr, grey)
        self._learn(buf, ts_s, moving)
        if not self._has_reference:
            self._last_motion_ts_s = ts_s  # at the start everything in view is new
            return GateDecision(True, "first")
        decision = self._forced(ts_s, moving, settling)
        if decision is not None:
            buf.prev_changed_valid = False
            return decision
        fraction = self._changed_fraction(buf)
        if fraction >= self.cfg.min_area_fraction:
            self._last_motion_ts_s = ts_s
            return GateDecision(True, "motion", fraction)
        return GateDecision(False, "still", fraction)

    def _forced(self, ts_s: float, moving: bool, settling: bool) -> GateDecision | None:
        """Detect whatever the picture shows: a refresh is due, or tracks need it."""
        if ts_s - self._last_detect_ts_s >= self.cfg.refresh_s:
            return GateDecision(True, "refresh")
        if moving:
            self._last_motion_ts_s = ts_s
            return GateDecision(True, "moving")
        if settling and ts_s - self._last_motion_ts_s <= self.cfg.moving_hold_s:
            return GateDecision(True, "settling")
        return None

    def detected(self, ts_s: float, objects_xyxy: npt.NDArray[np.float32] | None = None) -> None:
        """The detector ran on the frame last passed to ``decide``: it is the new reference
        (see ``_reference``), widened to its 3x3 min and max to absorb a pixel of shake.

        ``objects_xyxy``: what it found there (frame pixels). How those pixels vary is the
        objects' doing (a person fidgeting at a table), not the scene's, so it is not learnt
        there until the next detection; else the tolerance grown there would hide the
        person's leaving. None: not known, the last boxes stay."""
        buf = self._buf
        if buf is None:
            raise RuntimeError("detected() before decide()")
        if objects_xyxy is not None:
            self._mark_objects(buf, objects_xyxy)
        ref = self._reference(buf)
        cv2.erode(ref, _KERNEL, dst=buf.low)
        cv2.dilate(ref, _KERNEL, dst=buf.high)
        buf.prev_changed_valid = False
        first = not self._has_reference
        self._has_reference = True
        self._last_detect_ts_s = ts_s - (self.refresh_phase_s if first else 0.0)

    @staticmethod
    def _mark_objects(buf: _Buffers, objects_xyxy: npt.NDArray[np.float32]) -> None:
        buf.learnable.fill(255)
        scale = buf.shape[1] / buf.image_w
        for x0, y0, x1, y1 in np.asarray(objects_xyxy, np.float64).reshape(-1, 4).tolist():
            top_left = (math.floor(x0 * scale), math.floor(y0 * scale))
            bottom_right = (math.ceil(x1 * scale), math.ceil(y1 * scale))
            cv2.rectangle(buf.learnable, top_left, bottom_right, 0, -1)

    def _reference(self, buf: _Buffers) -> Grey:
        """The detected frame without what only passed through it: per pixel the median of it
        and the two frames before, so a flake or a drop in one of them is gone (else its
        leaving would read as a change for as long as the reference holds). Where the frame
        differs from that median in a large blob, an object that moved (a hand that just
        left, a car that just came), the frame itself is kept: the detector saw it there."""
        if buf.seen < 3:
            return buf.frame
        a, b, c = buf.frames
        median, scratch = buf.up, buf.down
        cv2.min(a, b, dst=median)
        cv2.max(a, b, dst=scratch)
        cv2.min(scratch, c, dst=scratch)
        cv2.max(median, scratch, dst=median)
        cv2.absdiff(a, median, dst=scratch)
        cv2.threshold(scratch, self.cfg.diff_threshold, 255, cv2.THRESH_BINARY, dst=buf.kept)
        cv2.morphologyEx(buf.kept, cv2.MORPH_OPEN, _KERNEL, dst=buf.kept)
        big_px = IMMEDIATE_AREA * self.cfg.min_area_fraction * buf.kept.size
        if cv2.countNonZero(buf.kept) < big_px:
            return median
        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            buf.kept, labels=buf.labels, connectivity=8
        )
        big = np.flatnonzero(stats[1:n, cv2.CC_STAT_AREA] >= big_px) + 1  # 0: background
        if big.size:
            # Only on a detected frame with such a blob: the detector's run costs far more.
            np.copyto(scratch, np.isin(labels, big))
            cv2.dilate(scratch, _KERNEL, dst=scratch)
            cv2.copyTo(a, scratch, dst=median)
        return median

    def _take(self, image_bgr: ImageBGR, grey: Grey | None) -> _Buffers:
        """This frame's work frame in the gate's own buffers, newest first (made anew when
        the size changes, which starts the gate over)."""
        if grey is None:
            h, w = image_bgr.shape[:2]
            shape = work_size((w, h), self.cfg.work_width_px)[::-1]
        elif grey.ndim != 2 or grey.dtype != np.uint8:
            raise ValueError(f"grey: a 2-D uint8 work frame expected, got {grey.dtype}{grey.shape}")
        else:
            shape = (grey.shape[0], grey.shape[1])
        buf = self._buf
        if buf is None or buf.shape != shape:
            buf = self._buf = _Buffers(shape)
            self._has_reference = False
        buf.frames.insert(0, buf.frames.pop())
        buf.seen += 1
        buf.image_w = image_bgr.shape[1]
        if grey is None:
            shrink(image_bgr, self.cfg.work_width_px, out=buf.frame, scratch=buf.scratch)
        else:
            np.copyto(buf.frame, grey)
        return buf

    def _learn(self, buf: _Buffers, ts_s: float, moving: bool) -> None:
        """Each pixel's usual change over LEARN_EVERY_S (what wind and shake do to it), a low
        quantile of it: a level down at every step where the change was smaller, a level up
        at most every RISE_EVERY_S where it was larger. Snow and rain pass a pixel in a few
        steps out of ten and hardly raise it, leaves that flutter all the time do; an object
        that comes in and stops or goes within a second or two does not teach itself much
        tolerance before the detector sees it. Fast at the start (WARMUP_S), so a windy scene
        holds soon. Steps of fixed time, not frames: 30 fps learns no faster than 10. Nothing
        is learnt while a tracked object moves: that is not the scene's own variation."""
        if buf.learnt_ts_s is None:
            buf.rise_ts_s = buf.start_ts_s = ts_s
        if buf.learnt_ts_s is None or moving:
            buf.learnt_ts_s = ts_s  # the next step starts from here
            np.copyto(buf.learnt, buf.frame)
            return
        if ts_s - buf.learnt_ts_s < 0.9 * LEARN_EVERY_S:  # 0.9: frame times jitter
            return
        buf.learnt_ts_s = ts_s
        cv2.absdiff(buf.frame, buf.learnt, dst=buf.up)
        np.copyto(buf.learnt, buf.frame)
        warm = ts_s - buf.start_ts_s < WARMUP_S
        if warm or ts_s - buf.rise_ts_s >= 0.9 * RISE_EVERY_S:
            buf.rise_ts_s = ts_s
            cv2.compare(buf.up, buf.activity, cv2.CMP_GT, dst=buf.down)
            cv2.bitwise_and(buf.down, buf.learnable, dst=buf.down)
            cv2.add(buf.activity, buf.ones, dst=buf.activity, mask=buf.down)
        cv2.compare(buf.up, buf.activity, cv2.CMP_LT, dst=buf.down)
        cv2.subtract(buf.activity, buf.ones, dst=buf.activity, mask=buf.down)

    def _changed_fraction(self, buf: _Buffers) -> float:
        """Share of the frame in blobs of change that count: at least IMMEDIATE_AREA times
        ``min_area_fraction`` large in this frame, or ``min_area_fraction`` large where this
        frame and the previous one both changed (a flake is somewhere else a frame later)."""
        # Per pixel: the threshold plus what the pixel varies by on its own, spread to its
        # neighbours (a branch swinging to the next pixel).
        cv2.convertScaleAbs(
            buf.activity, dst=buf.tolerance, alpha=ACTIVITY_GAIN, beta=self.cfg.diff_threshold
        )
        cv2.dilate(buf.tolerance, _KERNEL, dst=buf.tolerance)
        # A pixel changed only if it left the range of its reference neighbourhood: a camera
        # shaking by a pixel (at work size) moves edges within that range, an object does not.
        cv2.subtract(buf.frame, buf.high, dst=buf.up)
        cv2.subtract(buf.low, buf.frame, dst=buf.down)
        cv2.max(buf.up, buf.down, dst=buf.up)
        cv2.compare(buf.up, buf.tolerance, cv2.CMP_GT, dst=buf.changed)
        # Opening drops one-pixel slivers along shaken edges and the finest flakes; closing
        # then joins the pieces of one textured object (flakes are rarely that close).
        cv2.morphologyEx(buf.changed, cv2.MORPH_OPEN, _KERNEL, dst=buf.changed)
        cv2.morphologyEx(buf.changed, cv2.MORPH_CLOSE, _KERNEL, dst=buf.changed)
        min_px = self.cfg.min_area_fraction * buf.changed.size
        now = self._blob_area(buf, buf.changed, IMMEDIATE_AREA * min_px)
        kept = 0
        if buf.prev_changed_valid:
            cv2.bitwise_and(buf.changed, buf.prev_changed, dst=buf.kept)
            kept = self._blob_area(buf, buf.kept, min_px)
        buf.changed, buf.prev_changed = buf.prev_changed, buf.changed
        buf.prev_changed_valid = True
        return max(now, kept) / buf.changed.size

    @staticmethod
    def _blob_area(buf: _Buffers, mask: Grey, min_px: float) -> int:
        """Pixels of ``mask`` in 8-connected blobs of at least ``min_px``."""
        if cv2.countNonZero(mask) < min_px:
            return 0
        # Labels, then areas by counting: OpenCV's own statistics cost twice as much here.
        n, _ = cv2.connectedComponents(mask, labels=buf.labels, connectivity=8)
        areas = np.bincount(buf.labels.ravel(), minlength=n)[1:]
        return int(areas[areas >= min_px].sum())


class MotionTracker:
    """Which confirmed tracks are in motion.

    A track moves when its centre leaves a circle of ``fraction`` of its box diagonal around
    where it last settled; it counts as moving for ``hold_s`` after that. Box jitter of a
    still object stays inside the circle at any frame rate. A track the detector missed for
    a few frames (a parked car behind falling snow) keeps its anchor: found again where it
    was, it is not new and not moving (forgetting it would run the detector on every frame
    for ``hold_s`` each time, and on those frames it is missed again).
    """

    def __init__(self, fraction: float, hold_s: float) -> None:
        self.fraction = fraction
        self.hold_s = hold_s
        self._anchor: dict[int, tuple[float, float]] = {}
        self._moved_ts_s: dict[int, float] = {}
        self._seen_ts_s: dict[int, float] = {}
        self.any_moving = False

    def update(self, tracks: Detections, ts_s: float) -> None:
        present: list[int] = []
        for box, raw_id in zip(tracks.xyxy, tracks.tracker_id, strict=True):
            tid = int(raw_id)
            present.append(tid)
            self._seen_ts_s[tid] = ts_s
            cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
            diagonal = float(np.hypot(box[2] - box[0], box[3] - box[1])) or 1.0
            before = self._anchor.get(tid)
            if (
                before is None
                or np.hypot(cx - before[0], cy - before[1]) > self.fraction * diagonal
            ):
                self._anchor[tid], self._moved_ts_s[tid] = (cx, cy), ts_s  # new, or it moved
        # Track ids are not reused: an anchor unseen this long only takes memory.
        for tid in [t for t, seen in self._seen_ts_s.items() if ts_s - seen > FORGET_TRACK_S]:
            del self._anchor[tid], self._moved_ts_s[tid], self._seen_ts_s[tid]
        self.any_moving = any(ts_s - self._moved_ts_s[t] < self.hold_s for t in present)
