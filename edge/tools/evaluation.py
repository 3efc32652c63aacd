"""Event-level scoring of a replay against ground truth made by watching the video.

Beyond precision and recall: when each incident began and ended against the truth (start and
end error), how many extra incidents one true incident was split into (fragments: an operator
sees the same problem twice), and how often an incident ended and the same zone's next one of
the same type began within ``flap_window_s`` (flapping: start/end pairs within seconds, the
mark of a threshold without hysteresis).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


#: An incident of a zone starting this soon after the previous one of its type ended flaps.
FLAP_WINDOW_S = 10.0


class TruthFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    video: str = ""
    notes: str = ""
    #: Set when the scenario is a known limit of the rules: the reason, shown in the table.
    known_limit: str | None = None
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

    @property
    def end_error_s(self) -> float | None:
        """None when either side lasts to the end of the video (nothing to compare)."""
        if self.truth.end_s is None or self.incident.end_s is None:
            return None
        return self.incident.end_s - self.truth.end_s


@dataclass(frozen=True)
class EvalReport:
    matches: list[Match]
    false_positives: list[Incident]
    misses: list[TruthEvent]
    #: Extra incidents overlapping a matched truth event (they are also false positives).
    fragments: list[Incident] = field(default_factory=list)
    #: Incidents that began within FLAP_WINDOW_S after their zone's previous one ended.
    flaps: list[Incident] = field(default_factory=list)

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

    @property
    def max_abs_end_error_s(self) -> float | None:
        errors = [abs(e) for m in self.matches if (e := m.end_error_s) is not None]
        return max(errors) if errors else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "max_abs_start_error_s": round(self.max_abs_start_error_s, 3),
            "max_abs_end_error_s": _round(self.max_abs_end_error_s),
            "fragments": len(self.fragments),
            "flaps": len(self.flaps),
            "matches": [
                {
                    "type": m.truth.type,
                    "zone": m.truth.zone,
                    "truth_start_s": m.truth.start_s,
                    "event_start_s": round(m.incident.start_s, 3),
                    "start_error_s": round(m.start_error_s, 3),
                    "end_error_s": _round(m.end_error_s),
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


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


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
    fragments = {ii for _, ti, ii in pairs if ti in used_t and ii not in used_i}
    matched = {m.incident.event_id for m in matches}
    return EvalReport(
        matches=matches,
        false_positives=[f for i, f in enumerate(found) if i not in used_i],
        misses=[t for i, t in enumerate(truth) if i not in used_t],
        fragments=[found[ii] for ii in sorted(fragments)],
        flaps=flapping(found, matched),
    )


def flapping(
    found: list[Incident], matched: set[str], window_s: float = FLAP_WINDOW_S
) -> list[Incident]:
    """Incidents that began within ``window_s`` after the previous incident of the same type
    and zone ended. Two incidents that each match a truth event of their own are two real
    events (a car leaves, the next one parks), not a flap."""
    last: dict[tuple[str, str], Incident] = {}
    out = []
    for inc in sorted(found, key=lambda i: i.start_s):
        key = (inc.type, inc.zone)
        prev = last.get(key)
        if (
            prev is not None
            and prev.end_s is not None
            and inc.start_s - prev.end_s < window_s
            and not (inc.event_id in matched and prev.event_id in matched)
        ):
            out.append(inc)
        if inc.end_s is not None:
            last[key] = inc
    return out


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
