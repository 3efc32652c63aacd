"""Governance events as the rules emit them: one incident, many lifecycle messages."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from contract.vocabulary import PEACETIME, Phase, Severity

__all__ = ["BoxXYXY", "Event", "Phase", "RuleContext", "Severity"]
BoxXYXY = tuple[float, float, float, float]


@dataclass(frozen=True)
class Event:
    """One lifecycle message. All messages of an incident share ``event_id``.

    ``ts`` is when this message's state holds (for ``end``: the last time the condition was
    seen); ``started_ts`` is when the incident began (the crowd formed, the car stopped, the
    owner walked away). Times are media seconds for files and Unix seconds for live sources.
    """

    event_id: str
    type: str
    phase: Phase
    camera: str
    zone: str
    rule: str
    ts: float
    started_ts: float
    value: float
    unit: str
    severity: Severity
    boxes: tuple[BoxXYXY, ...] = ()
    labels: tuple[str, ...] = ()
    stage: str | None = None
    peak: float | None = None
    #: Evidence recorded for this incident (ids of media uploaded separately).
    clip_id: str | None = None
    snapshot_id: str | None = None
    #: The operating mode the incident was raised under, and whether that mode is a drill.
    mode: str = PEACETIME
    drill: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ts"] = round(self.ts, 3)
        d["started_ts"] = round(self.started_ts, 3)
        d["value"] = round(self.value, 3)
        d["boxes"] = [[round(v, 1) for v in b] for b in self.boxes]
        d["labels"] = list(self.labels)
        return d


@dataclass(frozen=True)
class RuleContext:
    """What every rule needs to label its events; fixed for the rule's lifetime (a new mode
    builds new rules, so an incident keeps the mode it was raised under)."""

    camera: str
    zone: str
    rule: str
    type: str
    class_names: tuple[str, ...]
    mode: str = PEACETIME
    drill: bool = False
