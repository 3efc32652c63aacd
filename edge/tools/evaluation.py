"""Event-level scoring of a replay against ground truth made by watching the video."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.config.camera import CameraConfig
from contract.config.errors import config_error_from_validation
from contract.config.yaml_source import read_yaml
from contract.errors import ConfigError
from edge.rules.events import Event
from edge.tools.replay import ReplayOutputs, ReplaySummary, replay_file


class TruthEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    zone: str
    start_s: float = Field(ge=0)
    end_s: float | None = Field(None, description="null: lasts to the end of the video")
    note: str = ""


class TruthFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    video: str = ""
    notes: str = ""
    events: list[TruthEvent]


def load_truth(path: Path) -> TruthFile:
    """A JSON or YAML list of {type, zone, start_s, end_s}, or {video, notes, events: [...]}."""
    doc = read_yaml(path)
    data: Any = {"events": doc.data} if isinstance(doc.data, list) else doc.data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: truth must be a list of events or a mapping with 'events'")
    try:
        return TruthFile.model_validate(data)
    except ValidationError as exc:
        raise config_error_from_validation(doc, exc) from None


@dataclass(frozen=True)
class Incident:
    """All lifecycle messages of one event id, folded."""

    event_id: str
    type: str
    zone: str
    start_s: float
    fired_s: float
    end_s: float | None


def incidents(events: list[Event]) -> list[Incident]:
    by_id: dict[str, list[Event]] = {}
    for ev in events:
        by_id.setdefault(ev.event_id, []).append(ev)
    out = []
    for eid, evs in by_id.items():
        start = next((e for e in evs if e.phase == "start"), evs[0])
        end = next((e for e in evs if e.phase == "end"), None)
        out.append(
            Incident(
                eid, start.type, start.zone, start.started_ts, start.ts, end.ts if end else None
            )
        )
    return sorted(out, key=lambda i: i.start_s)


@dataclass(frozen=True)
class Match:
    truth: TruthEvent
    incident: Incident

    @property
    def start_error_s(self) -> float:
        return self.incident.start_s - self.truth.start_s


@dataclass(frozen=True)
class EvalReport:
    matches: list[Match]
    false_positives: list[Incident]
    misses: list[TruthEvent]

    @property
    def precision(self) -> float:
        n = len(self.matches) + len(self.false_positives)
        return len(self.matches) / n if n else 1.0

    @property
    def recall(self) -> float:
        n = len(self.matches) + len(self.misses)
        return len(self.matches) / n if n else 1.0

    @property
    def max_abs_start_error_s(self) -> float:
        return max((abs(m.start_error_s) for m in self.matches), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "max_abs_start_error_s": round(self.max_abs_start_error_s, 3),
            "matches": [
                {
                    "type": m.truth.type,
                    "zone": m.truth.zone,
                    "truth_start_s": m.truth.start_s,
                    "event_start_s": round(m.incident.start_s, 3),
                    "start_error_s": round(m.start_error_s, 3),
                    "event_id": m.incident.event_id,
                }
                for m in self.matches
            ],
            "false_positives": [
                {
                    "type": i.type,
                    "zone": i.zone,
                    "start_s": round(i.start_s, 3),
                    "end_s": None if i.end_s is None else round(i.end_s, 3),
                }
                for i in self.false_positives
            ],
            "misses": [t.model_dump() for t in self.misses],
        }


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def evaluate(found: list[Incident], truth: list[TruthEvent], video_end_s: float) -> EvalReport:
    """One-to-one matching of incidents to truth of the same type and zone, by time overlap."""
    pairs = []
    for ti, t in enumerate(truth):
        t_end = t.end_s if t.end_s is not None else video_end_s
        for ii, inc in enumerate(found):
            if inc.type != t.type or inc.zone != t.zone:
                continue
            ov = _overlap(
                t.start_s, t_end, inc.start_s, inc.end_s if inc.end_s is not None else video_end_s
            )
            if ov > 0:
                pairs.append((ov, ti, ii))
    used_t: set[int] = set()
    used_i: set[int] = set()
    matches = []
    for _, ti, ii in sorted(pairs, reverse=True):
        if ti in used_t or ii in used_i:
            continue
        used_t.add(ti)
        used_i.add(ii)
        matches.append(Match(truth[ti], found[ii]))
    matches.sort(key=lambda m: m.truth.start_s)
    return EvalReport(
        matches=matches,
        false_positives=[f for i, f in enumerate(found) if i not in used_i],
        misses=[t for i, t in enumerate(truth) if i not in used_t],
    )


def evaluate_video(
    video: str,
    cfg: CameraConfig,
    truth: TruthFile,
    *,
    events_out: Path | None = None,
    show_progress: bool = True,
) -> tuple[EvalReport, ReplaySummary]:
    """Replay the video as fast as possible through the camera's chain and score its events."""
    summary = replay_file(
        video,
        cfg,
        realtime=False,
        outputs=ReplayOutputs(events_out=events_out),
        show_progress=show_progress,
    )
    return evaluate(incidents(summary.events), truth.events, summary.media_s), summary
