"""Location memory of stationary objects: a parked car or a dropped bag is a place, not a
track id, so missed detections, occlusions and id switches do not restart its clock.

A site hidden behind something else (a passer-by, a bus stopping in front of a parked car, the
hand of someone standing at a bag) cannot be seen, so it cannot be seen to be gone: its
absence clock is paused while a tracked object covers most of it, and counts ``absence_s``
from when it came out from behind. Without that, a bus standing in front of a parked car for
longer than ``absence_s`` ended the incident and a new one began when the bus left (one
illegal parking reported twice). An object taken away during the occlusion ends at the time
it was last seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.pipeline.boxes import coverage, iou_matrix

# How much a new sighting moves the remembered box: smooths jitter, follows slow drift.
_BOX_SMOOTHING = 0.3
# A site is hidden when this share of its box lies inside another tracked object's box.
HIDDEN_COVERAGE = 0.5


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
    #: Last time a tracked object covered the site (it could not be seen, so not missed).
    hidden_ts: float = float("-inf")
    extra: dict[str, float] = field(default_factory=dict)

    def absent_s(self, ts_s: float) -> float:
        """How long the site has been neither seen nor hidden."""
        return ts_s - max(self.last_seen_ts, self.hidden_ts)


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
        self,
        xyxy: npt.NDArray[np.float32],
        label: str,
        still_since_ts: float,
        ts_s: float,
        *,
        contain: float | None = None,
    ) -> tuple[Site, bool]:
        """A stationary sighting: refresh the site it belongs to, or open one. (site, is_new)

        ``contain``: also the site when this share of the sighting lies in the site's box, or
        of the site's box in the sighting (the same object seen whole and in part)."""
        site = self._best(xyxy, self.match_iou)
        if site is None and contain is not None:
            site = self._containing(xyxy, contain)
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

    def _containing(self, xyxy: npt.NDArray[np.float32], share: float) -> Site | None:
        if not self.sites:
            return None
        boxes = np.stack([s.xyxy for s in self.sites])
        one = xyxy[None].astype(np.float32)
        both = np.maximum(coverage(one, boxes)[0], coverage(boxes, one)[:, 0])
        i = int(np.argmax(both))
        return self.sites[i] if both[i] >= share else None

    def hide_all(self, ts_s: float) -> None:
        """Every site was out of sight until ``ts_s`` (the camera was blind)."""
        for site in self.sites:
            site.hidden_ts = max(site.hidden_ts, ts_s)

    def touch(self, xyxy: npt.NDArray[np.float32], ts_s: float, min_iou: float) -> None:
        """A moving box that still covers a site (jitter, a hand on it) keeps the site alive."""
        site = self._best(xyxy, min_iou)
        if site is not None:
            site.last_seen_ts = ts_s

    def expire(
        self, ts_s: float, occluders_xyxy: npt.NDArray[np.float32] | None = None
    ) -> list[Site]:
        """Forget the sites unseen for ``absence_s`` (not counting the time they were hidden
        behind one of ``occluders_xyxy``, every tracked object in the frame); return them."""
        if occluders_xyxy is not None and len(occluders_xyxy) and self.sites:
            sites = np.stack([s.xyxy for s in self.sites])
            hidden = coverage(sites, occluders_xyxy.astype(np.float32)).max(axis=1)
            for site, share in zip(self.sites, hidden.tolist(), strict=True):
                if share >= HIDDEN_COVERAGE and site.last_seen_ts != ts_s:
                    site.hidden_ts = ts_s
        gone = [s for s in self.sites if s.absent_s(ts_s) > self.absence_s]
        self.sites = [s for s in self.sites if s.absent_s(ts_s) <= self.absence_s]
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
