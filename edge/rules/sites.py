"""Location memory of stationary objects: a parked car or a dropped bag is a place, not a
track id, so missed detections, occlusions and id switches do not restart its clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.rules.base import iou_matrix

# How much a new sighting moves the remembered box: smooths jitter, follows slow drift.
_BOX_SMOOTHING = 0.3


@dataclass
class Site:
    xyxy: npt.NDArray[np.float32]
    label: str
    still_since_ts: float
    last_seen_ts: float
    baseline: bool = False
    event_id: str | None = None
    stage: str | None = None
    started_ts: float = 0.0
    last_sent_ts: float = 0.0
    unattended_since_ts: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


class SiteMemory:
    def __init__(self, match_iou: float, absence_s: float) -> None:
        self.match_iou = match_iou
        self.absence_s = absence_s
        self.sites: list[Site] = []

    def _best(self, xyxy: npt.NDArray[np.float32], min_iou: float) -> Site | None:
        if not self.sites:
            return None
        boxes = np.stack([s.xyxy for s in self.sites])
        ious = iou_matrix(xyxy[None].astype(np.float32), boxes)[0]
        i = int(np.argmax(ious))
        return self.sites[i] if ious[i] >= min_iou else None

    def observe(
        self, xyxy: npt.NDArray[np.float32], label: str, still_since_ts: float, ts_s: float
    ) -> tuple[Site, bool]:
        """A stationary sighting: refresh the site it belongs to, or open one. (site, is_new)"""
        site = self._best(xyxy, self.match_iou)
        if site is None:
            site = Site(
                xyxy=xyxy.astype(np.float32).copy(),
                label=label,
                still_since_ts=still_since_ts,
                last_seen_ts=ts_s,
            )
            self.sites.append(site)
            return site, True
        site.xyxy = ((1 - _BOX_SMOOTHING) * site.xyxy + _BOX_SMOOTHING * xyxy).astype(np.float32)
        site.last_seen_ts = ts_s
        return site, False

    def touch(self, xyxy: npt.NDArray[np.float32], ts_s: float, min_iou: float) -> None:
        """A moving box that still covers a site (jitter, a hand on it) keeps the site alive."""
        site = self._best(xyxy, min_iou)
        if site is not None:
            site.last_seen_ts = ts_s

    def expire(self, ts_s: float) -> list[Site]:
        gone = [s for s in self.sites if ts_s - s.last_seen_ts > self.absence_s]
        self.sites = [s for s in self.sites if ts_s - s.last_seen_ts <= self.absence_s]
        return gone


class Cooldown:
    """Places where an incident just ended; a new one there waits ``cooldown_s``."""

    def __init__(self, cooldown_s: float, match_iou: float) -> None:
        self.cooldown_s = cooldown_s
        self.match_iou = match_iou
        self._ended: list[tuple[npt.NDArray[np.float32], float]] = []

    def add(self, xyxy: npt.NDArray[np.float32], ts_s: float) -> None:
        self._ended.append((xyxy.copy(), ts_s))

    def blocks(self, xyxy: npt.NDArray[np.float32], ts_s: float) -> bool:
        self._ended = [(b, t) for b, t in self._ended if ts_s - t < self.cooldown_s]
        if not self._ended:
            return False
        boxes = np.stack([b for b, _ in self._ended])
        return bool((iou_matrix(xyxy[None].astype(np.float32), boxes)[0] >= self.match_iou).any())
