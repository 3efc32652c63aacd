"""What a rule sees each frame, and the interface every rule implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.detectors.detections import Detections
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
    #: Class-free static foreground blobs in the zone (background evidence), xyxy pixels.
    static_blobs_xyxy: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.empty((0, 4), np.float32)
    )


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


def iou_matrix(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    out: npt.NDArray[np.float32] = np.where(union > 0, inter / np.maximum(union, 1e-9), 0).astype(
        np.float32
    )
    return out
