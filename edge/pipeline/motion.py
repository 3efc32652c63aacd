"""Motion gating: decide per frame whether the detector has to run at all.

Detection is the cost on an edge box. A frame that differs from the frame the detector last
saw only by noise cannot hold new objects, so its detections are the last ones carried
forward. The comparison is against the last *detected* frame, not the previous frame, so slow
changes add up until they count.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from contract.config.camera import MotionConfig
from edge.detectors.detections import Detections

Grey = npt.NDArray[np.uint8]
_KERNEL = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class GateDecision:
    detect: bool
    #: Why: "first", "refresh", "moving", "settling", "motion" or "still".
    reason: str
    motion_fraction: float = 0.0


class MotionGate:
    """One camera's gate. ``decide`` then, if the detector ran, ``detected``."""

    def __init__(self, cfg: MotionConfig) -> None:
        self.cfg = cfg
        self._low: Grey | None = None
        self._high: Grey | None = None
        self._pending: Grey | None = None
        self._last_detect_ts_s = float("-inf")
        self._last_motion_ts_s = float("-inf")

    def _shrink(self, image_bgr: npt.NDArray[np.uint8]) -> Grey:
        h, w = image_bgr.shape[:2]
        width = min(self.cfg.work_width_px, w)
        height = max(1, round(h * width / w))
        small = cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        # Blur so that sensor noise and a pixel of camera shake do not read as motion.
        return np.asarray(cv2.GaussianBlur(grey, (5, 5), 0), dtype=np.uint8)

    def decide(
        self,
        image_bgr: npt.NDArray[np.uint8],
        ts_s: float,
        *,
        moving: bool,
        settling: bool = False,
    ) -> GateDecision:
        """``moving``: a tracked object is in motion, so its carried box would fall behind.
        ``settling``: the detector saw something the tracker has not taken up yet. Carried
        forward, its score would stay frozen on one side of the tracker's threshold, so while
        there was motion lately it gets fresh detections (a still scene's clutter does not)."""
        grey = self._shrink(image_bgr)
        self._pending = grey
        if self._low is None or self._high is None or self._low.shape != grey.shape:
            self._last_motion_ts_s = ts_s  # at the start everything in view is new
            return GateDecision(True, "first")
        if ts_s - self._last_detect_ts_s >= self.cfg.refresh_s:
            return GateDecision(True, "refresh")
        if moving:
            self._last_motion_ts_s = ts_s
            return GateDecision(True, "moving")
        if settling and ts_s - self._last_motion_ts_s <= self.cfg.moving_hold_s:
            return GateDecision(True, "settling")
        # A pixel changed only if it left the range of its reference neighbourhood: a camera
        # shaking by a pixel (at work size) moves edges within that range, an object does not.
        thr = self.cfg.diff_threshold
        changed = (cv2.subtract(grey, self._high) > thr) | (cv2.subtract(self._low, grey) > thr)
        # Opening keeps blobs (objects) and drops one-pixel slivers along shaken edges.
        changed = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_OPEN, _KERNEL) > 0
        fraction = float(np.count_nonzero(changed)) / changed.size
        if fraction >= self.cfg.min_area_fraction:
            self._last_motion_ts_s = ts_s
            return GateDecision(True, "motion", fraction)
        return GateDecision(False, "still", fraction)

    def detected(self, ts_s: float) -> None:
        """The detector ran on the frame last passed to ``decide``: it is the new reference."""
        if self._pending is None:
            raise RuntimeError("detected() before decide()")
        self._low = np.asarray(cv2.erode(self._pending, _KERNEL), dtype=np.uint8)
        self._high = np.asarray(cv2.dilate(self._pending, _KERNEL), dtype=np.uint8)
        self._last_detect_ts_s = ts_s


class MotionTracker:
    """Which confirmed tracks are in motion.

    A track moves when its centre leaves a circle of ``fraction`` of its box diagonal around
    where it last settled; it counts as moving for ``hold_s`` after that. Box jitter of a
    still object stays inside the circle at any frame rate.
    """

    def __init__(self, fraction: float, hold_s: float) -> None:
        self.fraction = fraction
        self.hold_s = hold_s
        self._anchor: dict[int, tuple[float, float]] = {}
        self._moved_ts_s: dict[int, float] = {}
        self.any_moving = False

    def update(self, tracks: Detections, ts_s: float) -> None:
        anchor: dict[int, tuple[float, float]] = {}
        moved: dict[int, float] = {}
        for box, raw_id in zip(tracks.xyxy, tracks.tracker_id, strict=True):
            tid = int(raw_id)
            cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
            diagonal = float(np.hypot(box[2] - box[0], box[3] - box[1])) or 1.0
            before = self._anchor.get(tid)
            if (
                before is None
                or np.hypot(cx - before[0], cy - before[1]) > self.fraction * diagonal
            ):
                anchor[tid], moved[tid] = (cx, cy), ts_s  # new in the scene, or it moved
            else:
                anchor[tid], moved[tid] = before, self._moved_ts_s[tid]
        self._anchor, self._moved_ts_s = anchor, moved
        self.any_moving = any(ts_s - t < self.hold_s for t in moved.values())
