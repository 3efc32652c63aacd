"""All rules of one camera: builds them from the config, feeds each zone its view."""

from __future__ import annotations

import uuid

import numpy as np

from contract.config.camera import CameraConfig
from contract.config.rules import CountRuleConfig, DwellRuleConfig, LeftObjectRuleConfig
from contract.errors import ConfigError
from contract.vocabulary import PEACETIME
from edge.detectors.detections import Detections
from edge.detectors.filter import check_class_name
from edge.pipeline.background import StaticBlobs
from edge.pipeline.zones import Zone
from edge.rules.base import IdFactory, Rule, ZoneFrame
from edge.rules.count import CountRule
from edge.rules.dwell import DwellRule
from edge.rules.events import Event, RuleContext
from edge.rules.left_object import LeftObjectRule


def new_uuid() -> str:
    return str(uuid.uuid4())


class RuleEngine:
    def __init__(
        self,
        cfg: CameraConfig,
        class_names: tuple[str, ...],
        model: str,
        new_id: IdFactory = new_uuid,
        *,
        mode: str = PEACETIME,
        drill: bool = False,
    ) -> None:
        """``mode``/``drill``: stamped on every event of these rules (the camera's operating
        mode when they were built)."""
        kept = set(cfg.detection.classes) if cfg.detection.classes is not None else None
        self.zones: list[tuple[Zone, list[Rule]]] = []
        self.needs_background = False
        for zi, zcfg in enumerate(cfg.zones):
            rules: list[Rule] = []
            for ri, rcfg in enumerate(zcfg.rules):
                loc = ("zones", zi, "rules", ri)
                names = list(rcfg.classes)
                if isinstance(rcfg, LeftObjectRuleConfig):
                    names += rcfg.owner_classes
                    self.needs_background |= "background" in rcfg.evidence
                for name in names:
                    check_class_name(name, class_names, cfg.where((*loc, "classes")), model)
                    if kept is not None and name not in kept:
                        raise ConfigError(
                            f"{cfg.where((*loc, 'classes'))}: rule class '{name}' is not in "
                            "detection.classes, so the rule would never see it"
                        )
                ctx = RuleContext(cfg.id, zcfg.name, rcfg.name, rcfg.type, class_names, mode, drill)
                rules.append(_build(rcfg, ctx, new_id))
            self.zones.append((Zone(zcfg), rules))

    @property
    def rule_count(self) -> int:
        return sum(len(r) for _, r in self.zones)

    def update(
        self,
        ts_s: float,
        frame_wh: tuple[int, int],
        tracks: Detections,
        static_blobs: StaticBlobs | None = None,
    ) -> list[Event]:
        out: list[Event] = []
        anchors = tracks.anchor_bottom_center
        for zone, rules in self.zones:
            if not rules:
                continue
            in_zone = tracks[zone.contains(anchors, frame_wh)]
            blobs = StaticBlobs.empty()
            if static_blobs is not None and len(static_blobs):
                xyxy = static_blobs.xyxy
                bottoms = np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], axis=1)
                blobs = static_blobs[zone.contains(bottoms, frame_wh)]
            view = ZoneFrame(ts_s, frame_wh, in_zone, tracks, blobs)
            for rule in rules:
                out += rule.update(view)
        return out

    def resumed(self, ts_s: float) -> None:
        """The camera's view is usable again after a tamper suspended the rules."""
        for _, rules in self.zones:
            for rule in rules:
                rule.resumed(ts_s)

    def finish(self, ts_s: float) -> list[Event]:
        return [ev for _, rules in self.zones for r in rules for ev in r.finish(ts_s)]


def _build(cfg: object, ctx: RuleContext, new_id: IdFactory) -> Rule:
    if isinstance(cfg, CountRuleConfig):
        return CountRule(cfg, ctx, new_id)
    if isinstance(cfg, DwellRuleConfig):
        return DwellRule(cfg, ctx, new_id)
    if isinstance(cfg, LeftObjectRuleConfig):
        return LeftObjectRule(cfg, ctx, new_id)
    raise TypeError(f"no rule for config {type(cfg).__name__}")
