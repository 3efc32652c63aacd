"""left_object (preset litter): something new appears and stays after whoever brought it
has walked away. Evidence: static detections of litter classes, and/or class-free static
foreground from the dual background model."""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from contract.config.rules import LeftObjectRuleConfig
from edge.pipeline.boxes import coverage, iou_matrix
from edge.rules.base import IdFactory, Rule, ZoneFrame, box_tuple
from edge.rules.events import Event, RuleContext
from edge.rules.sites import Cooldown, Site, SiteMemory
from edge.rules.stillness import Stillness

_TOUCH_IOU = 0.5
BLOB_LABEL = "object"


_BLOB_ON_OBJECT = 0.3
#: A blob this much inside a site (or a site this much inside the blob) is that site.
_CONTAINED = 0.6
#: How far back the rule remembers where owners stood (longer than any blob takes to settle).
_OWNER_HISTORY_S = 60.0


class OwnerHistory:
    """Where owners (people) were in the last ``keep_s`` seconds."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._seen: deque[tuple[float, npt.NDArray[np.float32]]] = deque()

    def add(self, ts_s: float, owners_xyxy: npt.NDArray[np.float32]) -> None:
        if len(owners_xyxy):
            self._seen.append((ts_s, owners_xyxy))
        while self._seen and self._seen[0][0] < ts_s - self.keep_s:
            self._seen.popleft()

    def last_near(self, near_xyxy: npt.NDArray[np.float32], after_ts: float) -> float:
        """The last time after ``after_ts`` an owner overlapped ``near_xyxy`` (1, 4); -inf."""
        for ts, owners in reversed(self._seen):
            if ts < after_ts:
                break
            if (iou_matrix(near_xyxy, owners)[0] > 0).any():
                return ts
        return float("-inf")


def _expand(xyxy: npt.NDArray[np.float32], frac: float) -> npt.NDArray[np.float32]:
    w, h = xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]
    return np.asarray(
        [xyxy[0] - frac * w, xyxy[1] - frac * h, xyxy[2] + frac * w, xyxy[3] + frac * h],
        np.float32,
    )


class LeftObjectRule(Rule):
    unit = "s"

    def __init__(self, cfg: LeftObjectRuleConfig, ctx: RuleContext, new_id: IdFactory) -> None:
        super().__init__(ctx, cfg.severity, new_id)
        self.cfg = cfg
        self._classes = self.class_ids(cfg.classes)
        self._owners = self.class_ids(cfg.owner_classes)
        self.stillness = Stillness(cfg.window_s, cfg.max_move_frac)
        self.memory = SiteMemory(cfg.match_iou, cfg.absence_s)
        self.cooldown = Cooldown(cfg.cooldown_s, cfg.match_iou)
        self._t0: float | None = None
        self._near = OwnerHistory(_OWNER_HISTORY_S)

    def update(self, frame: ZoneFrame) -> list[Event]:
        ts = frame.ts_s
        if self._t0 is None:
            self._t0 = ts
        in_baseline = ts - self._t0 < self.cfg.baseline_s
        seen: list[tuple[Site, bool]] = []
        sel = frame.in_zone[np.isin(frame.in_zone.class_id, self._classes)]
        if "detector" in self.cfg.evidence:
            still = self.stillness.update(sel.tracker_id, sel.xyxy, ts)
            for i, since in enumerate(still):
                if since is None:
                    self.memory.touch(sel.xyxy[i], ts, _TOUCH_IOU)
                else:
                    label = self.ctx.class_names[int(sel.class_id[i])]
                    site, new = self.memory.observe(sel.xyxy[i], label, since, ts)
                    if site.label == BLOB_LABEL:
                        site.label = label  # a class name says more than "object"
                    seen.append((site, new))
        if "background" in self.cfg.evidence:
            blobs = frame.static_blobs
            if "detector" in self.cfg.evidence and len(blobs) and len(sel):
                # A blob on a detected litter object is that object: one site, not two.
                blobs = blobs[coverage(blobs.xyxy, sel.xyxy).max(axis=1) < _BLOB_ON_OBJECT]
            for blob, since in zip(blobs.xyxy, blobs.since_ts.tolist(), strict=True):
                # Part of a site or around it (the blob includes a shadow, the detector saw
                # only the object): the same object, not a second one.
                site, new = self.memory.observe(blob, BLOB_LABEL, since, ts, contain=_CONTAINED)
                seen.append((site, new))
        for site, new in seen:
            if new and in_baseline:
                site.baseline = True  # it was there when we started watching
        owners = frame.everywhere[np.isin(frame.everywhere.class_id, self._owners)].xyxy
        self._near.add(ts, owners)
        out: list[Event] = []
        for site in self.memory.sites:
            if not site.baseline:
                out += self._advance(site, ts, owners)
        for site in self.memory.expire(ts, frame.everywhere.xyxy):
            if site.event_id is not None:
                out.append(self._end(site))
        return out

    def _near_box(self, site: Site) -> npt.NDArray[np.float32]:
        return _expand(site.xyxy, self.cfg.attend_margin_frac)[None]

    def _attended(self, site: Site, owners: npt.NDArray[np.float32]) -> bool:
        if len(owners) == 0:
            return False
        return bool((iou_matrix(self._near_box(site), owners)[0] > 0).any())

    def _advance(self, site: Site, ts: float, owners: npt.NDArray[np.float32]) -> list[Event]:
        box, labels = (box_tuple(site.xyxy),), (site.label,)
        if site.event_id is not None:
            if ts - site.last_sent_ts >= self.cfg.update_interval_s:
                site.last_sent_ts = ts
                return [
                    self._event(
                        site.event_id,
                        "update",
                        ts,
                        site.started_ts,
                        ts - site.started_ts,
                        self.unit,
                        boxes=box,
                        labels=labels,
                    )
                ]
            return []
        if self._attended(site, owners):
            site.unattended_since_ts = None
            return []
        if site.last_seen_ts != ts:
            return []
        if site.unattended_since_ts is None:
            # Whoever left it may have gone before the object was recognised as still (a
            # blob settles in seconds): the clock starts when they were last beside it.
            last_near = self._near.last_near(self._near_box(site), site.still_since_ts)
            site.unattended_since_ts = max(site.still_since_ts, last_near)
        left_s = ts - site.unattended_since_ts
        if left_s < self.cfg.persist_s or self.cooldown.blocks(site.xyxy, ts):
            return []
        site.event_id = self._new_id()
        site.started_ts, site.last_sent_ts = site.unattended_since_ts, ts
        return [
            self._event(
                site.event_id,
                "start",
                ts,
                site.started_ts,
                left_s,
                self.unit,
                boxes=box,
                labels=labels,
            )
        ]

    def _end(self, site: Site) -> Event:
        assert site.event_id is not None
        self.cooldown.add(site.xyxy, site.last_seen_ts)
        ev = self._event(
            site.event_id,
            "end",
            site.last_seen_ts,
            site.started_ts,
            site.last_seen_ts - site.started_ts,
            self.unit,
            boxes=(box_tuple(site.xyxy),),
            labels=(site.label,),
        )
        site.event_id = None
        return ev

    def resumed(self, ts_s: float) -> None:
        self.memory.hide_all(ts_s)

    def finish(self, ts_s: float) -> list[Event]:
        return [self._end(s) for s in self.memory.sites if s.event_id is not None]
