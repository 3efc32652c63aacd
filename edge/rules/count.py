"""count (preset crowding): enough people in the zone for long enough, with hysteresis.

Dips are measured on frames seen below the threshold, not on the time between frames: at
2 frames a second, or across frames the camera lost, a gap in the stream says nothing about
the crowd (a 3 s gap restarted a 2 fps crowd's run, which then fired 8 s late).
"""

from __future__ import annotations

import numpy as np

from contract.config.rules import CountRuleConfig
from edge.rules.base import IdFactory, Rule, ZoneFrame, box_tuple
from edge.rules.events import Event, RuleContext


class CountRule(Rule):
    def __init__(self, cfg: CountRuleConfig, ctx: RuleContext, new_id: IdFactory) -> None:
        super().__init__(ctx, cfg.severity, new_id)
        self.cfg = cfg
        self._classes = self.class_ids(cfg.classes)
        self._density = cfg.area_m2 is not None
        self.unit = "persons_per_m2" if self._density else "persons"
        self._met_since: float | None = None  # start of the current run of frames above
        self._last_met: float | None = None
        self._below_since: float | None = None  # first frame seen below since the last met
        self._event_id: str | None = None
        self._started = 0.0
        self._peak = 0.0
        self._last_sent = 0.0
        self._last_end: float | None = None

    def _value(self, count: int) -> float:
        return count / self.cfg.area_m2 if self.cfg.area_m2 else float(count)

    def _met(self, value: float) -> bool:
        if self.cfg.min_density_per_m2 is not None:
            return value >= self.cfg.min_density_per_m2
        return value >= (self._value(self.cfg.min_count))

    def update(self, frame: ZoneFrame) -> list[Event]:
        ts = frame.ts_s
        sel = frame.in_zone[np.isin(frame.in_zone.class_id, self._classes)]
        value = self._value(len(sel))
        boxes = tuple(box_tuple(b) for b in sel.xyxy)
        out: list[Event] = []
        met = self._met(value)
        if met:
            # A dip longer than gap_s starts the run again; shorter ones are missed detections.
            dip = self._below_since is not None and ts - self._below_since > self.cfg.gap_s
            if self._event_id is None and (self._met_since is None or dip):
                self._met_since = ts
            self._last_met = ts
            self._below_since = None
        elif self._below_since is None:
            self._below_since = ts
        if self._event_id is None:
            cooling = self._last_end is not None and ts - self._last_end < self.cfg.cooldown_s
            if (
                met
                and self._met_since is not None
                and ts - self._met_since >= self.cfg.min_duration_s
                and not cooling
            ):
                self._event_id = self._new_id()
                self._started = self._met_since
                self._peak = value
                self._last_sent = ts
                out.append(
                    self._event(
                        self._event_id,
                        "start",
                        ts,
                        self._started,
                        value,
                        self.unit,
                        boxes=boxes,
                        peak=value,
                    )
                )
            return out
        # Active incident.
        assert self._last_met is not None
        if self._below_since is not None and ts - self._below_since >= self.cfg.clear_s:
            out.append(self._end(self._last_met, value))
            return out
        if value > self._peak or ts - self._last_sent >= self.cfg.update_interval_s:
            self._peak = max(self._peak, value)
            self._last_sent = ts
            out.append(
                self._event(
                    self._event_id,
                    "update",
                    ts,
                    self._started,
                    value,
                    self.unit,
                    boxes=boxes,
                    peak=self._peak,
                )
            )
        return out

    def _end(self, ts: float, value: float) -> Event:
        assert self._event_id is not None
        ev = self._event(
            self._event_id, "end", ts, self._started, value, self.unit, peak=self._peak
        )
        self._event_id = None
        self._met_since = None
        self._last_end = ts
        return ev

    def finish(self, ts_s: float) -> list[Event]:
        if self._event_id is None:
            return []
        return [self._end(ts_s, self._peak)]
