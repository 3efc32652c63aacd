"""What a rule sees each frame, and the interface every rule implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.detectors.detections import Detections
from edge.pipeline.background import StaticBlobs
from edge.rules.events import BoxXYXY, Event, Phase, RuleContext, Severity

IdFactory = Callable[[], str]


@dataclass(frozen=True)
class ZoneFrame:
    """One frame as seen from one zone. Rules get data, never a camera or a file."""

    ts_s: float
    frame_wh: tuple[int, int]
    #: Confirmed tracks whose anchor (bottom centre) lies in the zone.
    in_zone: Detections
    #: Every confirmed track in the frame (an owner may stand just outside the zone).
    everywhere: Detections
    #: Class-free static foreground blobs in the zone (background evidence).
    static_blobs: StaticBlobs = field(default_factory=StaticBlobs.empty)


class Rule(ABC):
    def __init__(self, ctx: RuleContext, severity: Severity, new_id: IdFactory) -> None:
        self.ctx = ctx
        self.severity: Severity = severity
        self._new_id = new_id

    @abstractmethod
    def update(self, frame: ZoneFrame) -> list[Event]:
        """Advance the rule by one frame; return the lifecycle messages it caused."""

    @abstractmethod
    def finish(self, ts_s: float) -> list[Event]:
        """The stream ended: close every open incident."""

    def resumed(self, ts_s: float) -> None:  # noqa: B027 (optional: most rules keep no places)
        """The camera was blind until ``ts_s`` (its view tampered): what the rule remembers
        was not seen to go; absence counts from now."""

    def class_ids(self, names: list[str]) -> npt.NDArray[np.int64]:
        return np.asarray([self.ctx.class_names.index(n) for n in names], dtype=np.int64)

    def _event(
        self,
        event_id: str,
        phase: Phase,
        ts: float,
        started_ts: float,
        value: float,
        unit: str,
        *,
        severity: Severity | None = None,
        boxes: tuple[BoxXYXY, ...] = (),
        labels: tuple[str, ...] = (),
        stage: str | None = None,
        peak: float | None = None,
    ) -> Event:
        return Event(
            event_id=event_id,
            type=self.ctx.type,
            phase=phase,
            camera=self.ctx.camera,
            zone=self.ctx.zone,
            rule=self.ctx.rule,
            ts=ts,
            started_ts=started_ts,
            value=value,
            unit=unit,
            severity=severity or self.severity,
            boxes=boxes,
            labels=labels,
            stage=stage,
            peak=peak,
            mode=self.ctx.mode,
            drill=self.ctx.drill,
        )


def box_tuple(xyxy: npt.NDArray[np.float32]) -> BoxXYXY:
    return (float(xyxy[0]), float(xyxy[1]), float(xyxy[2]), float(xyxy[3]))
