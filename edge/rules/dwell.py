"""dwell (presets illegal_parking, nonmotor_parking, street_vending): an object stands still
in the zone too long. Passing or briefly queueing traffic never fires."""

from __future__ import annotations

import numpy as np

from contract.config.rules import DwellRuleConfig
from edge.rules.base import IdFactory, Rule, ZoneFrame, box_tuple
from edge.rules.events import Event, RuleContext, Severity
from edge.rules.sites import Cooldown, Site, SiteMemory
from edge.rules.stillness import Stillness

# A moving box overlapping a remembered object this much is that object jittering.
_TOUCH_IOU = 0.5


class DwellRule(Rule):
    unit = "s"

    def __init__(self, cfg: DwellRuleConfig, ctx: RuleContext, new_id: IdFactory) -> None:
        super().__init__(ctx, cfg.severity, new_id)
        self.cfg = cfg
        self._classes = self.class_ids(cfg.classes)
        self.stillness = Stillness(cfg.window_s, cfg.max_move_frac)
        self.memory = SiteMemory(cfg.match_iou, cfg.absence_s)
        self.cooldown = Cooldown(cfg.cooldown_s, cfg.match_iou)

    def _stage(self, dwell_s: float) -> tuple[str | None, Severity]:
        if dwell_s >= self.cfg.dwell_s:
            return "violation", self.severity
        if self.cfg.warn_after_s is not None and dwell_s >= self.cfg.warn_after_s:
            return "warning", "low"
        return None, self.severity

    def update(self, frame: ZoneFrame) -> list[Event]:
        ts = frame.ts_s
        sel = frame.in_zone[np.isin(frame.in_zone.class_id, self._classes)]
        still = self.stillness.update(sel.tracker_id, sel.xyxy, ts)
        for i, since in enumerate(still):
            label = self.ctx.class_names[int(sel.class_id[i])]
            if since is None:
                self.memory.touch(sel.xyxy[i], ts, _TOUCH_IOU)
            else:
                self.memory.observe(sel.xyxy[i], label, since, ts)
        out: list[Event] = []
        for site in self.memory.sites:
            out += self._advance(site, ts)
        for site in self.memory.expire(ts, frame.everywhere.xyxy):
            if site.event_id is not None:
                out.append(self._end(site))
        return out

    def _advance(self, site: Site, ts: float) -> list[Event]:
        dwell = site.last_seen_ts - site.still_since_ts
        stage, severity = self._stage(dwell)
        box = (box_tuple(site.xyxy),)
        if site.event_id is None:
            if stage is None or site.last_seen_ts != ts or self.cooldown.blocks(site.xyxy, ts):
                return []
            site.event_id = self._new_id()
            site.stage, site.started_ts, site.last_sent_ts = stage, site.still_since_ts, ts
            return [
                self._event(
                    site.event_id,
                    "start",
                    ts,
                    site.started_ts,
                    dwell,
                    self.unit,
                    severity=severity,
                    boxes=box,
                    labels=(site.label,),
                    stage=stage,
                )
            ]
        if stage != site.stage or ts - site.last_sent_ts >= self.cfg.update_interval_s:
            site.stage, site.last_sent_ts = stage, ts
            return [
                self._event(
                    site.event_id,
                    "update",
                    ts,
                    site.started_ts,
                    dwell,
                    self.unit,
                    severity=severity,
                    boxes=box,
                    labels=(site.label,),
                    stage=stage,
                )
            ]
        return []

    def _end(self, site: Site) -> Event:
        assert site.event_id is not None
        dwell = site.last_seen_ts - site.still_since_ts
        _, severity = self._stage(dwell)
        self.cooldown.add(site.xyxy, site.last_seen_ts)
        ev = self._event(
            site.event_id,
            "end",
            site.last_seen_ts,
            site.started_ts,
            dwell,
            self.unit,
            severity=severity,
            boxes=(box_tuple(site.xyxy),),
            labels=(site.label,),
            stage=site.stage,
        )
        site.event_id = None
        return ev

    def resumed(self, ts_s: float) -> None:
        self.memory.hide_all(ts_s)

    def finish(self, ts_s: float) -> list[Event]:
        return [self._end(s) for s in self.memory.sites if s.event_id is not None]
