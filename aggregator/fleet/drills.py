"""The drill report: how fast each step went for the events raised under one drill switch.

Per drill event raised in the switch's scope while it held (started_ts from its start to its
cancellation, end or now):
- detection: the event's start on the box -> received at the aggregator (received_at);
- review: received -> confirmed or dismissed (reviewed_at);
- dispatch: its case filed (created_at) -> first moved to dispatched or in_progress (the
  case's update_case audit entries).
Steps that did not happen (yet) are null and left out of the figures.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select

from aggregator.core.fleet_config import ModesConfig
from aggregator.db.models import AUDIT, CAMERAS, CASES, EVENTS
from aggregator.fleet.errors import FleetError
from aggregator.fleet.modes import ModeSwitches, Switch

#: Case statuses that mean someone was sent.
DISPATCHED = ("dispatched", "in_progress")


@dataclass(frozen=True)
class StepFigures:
    count: int
    median: float | None
    p95: float | None
    max: float | None


@dataclass(frozen=True)
class DrillRow:
    event_id: str
    type: str
    camera: str
    detection_s: float | None
    review_s: float | None
    dispatch_s: float | None


@dataclass(frozen=True)
class DrillReport:
    switch: Switch
    rows: tuple[DrillRow, ...]

    @property
    def steps(self) -> dict[str, StepFigures]:
        return {
            step: figures([getattr(r, step) for r in self.rows])
            for step in ("detection_s", "review_s", "dispatch_s")
        }


def figures(values: list[float | None]) -> StepFigures:
    """Count, median, 95th percentile (nearest rank) and maximum of the values present."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return StepFigures(0, None, None, None)
    p95 = xs[max(0, math.ceil(0.95 * len(xs)) - 1)]
    return StepFigures(len(xs), statistics.median(xs), p95, xs[-1])


def _in_scope(switch: Switch) -> list[Any]:
    """Conditions on EVENTS for the cameras the switch covered."""
    kind, value = switch.scope.kind, switch.scope.value
    if kind == "camera":
        return [EVENTS.c.camera == value]
    if kind in ("group", "area"):
        col = CAMERAS.c.camera_group if kind == "group" else CAMERAS.c.grid_cell
        return [EVENTS.c.camera.in_(select(CAMERAS.c.camera_id).where(col == value))]
    return []


def _dispatched_at(conn: Connection, case_ids: set[int]) -> dict[int, float]:
    """case id -> when it first moved to a DISPATCHED status, from its audit entries."""
    if not case_ids:
        return {}
    rows = conn.execute(
        select(AUDIT.c.entity_id, AUDIT.c.at, AUDIT.c.detail)
        .where(
            AUDIT.c.entity == "case",
            AUDIT.c.action == "update_case",
            AUDIT.c.entity_id.in_(sorted(str(c) for c in case_ids)),
        )
        .order_by(AUDIT.c.at)
    )
    out: dict[int, float] = {}
    for entity_id, at, detail in rows:
        moved_to = (detail or {}).get("to", {}).get("status")
        if moved_to in DISPATCHED:
            out.setdefault(int(entity_id), float(at))
    return out


def drill_report(engine: Engine, modes: ModesConfig, switch_id: int) -> DrillReport:
    """The report of one switch to a drill mode (404 FleetError: no such switch; 409: the
    switch's mode is not a drill)."""
    switch = ModeSwitches(engine, modes).get(switch_id)
    definition = modes.definitions.get(switch.mode)
    if definition is None or not definition.drill:
        raise FleetError(409, f"mode switch {switch_id} is to '{switch.mode}', not a drill")
    ends = [t for t in (switch.cancelled_at, switch.ends_at) if t is not None]
    until = min(ends) if ends else time.time()
    e = EVENTS.c
    with engine.connect() as conn:
        events = conn.execute(
            select(
                e.event_id,
                e.type,
                e.camera,
                e.started_ts,
                e.received_at,
                e.reviewed_at,
                e.case_id,
            )
            .where(
                e.drill.is_(True),
                e.mode == switch.mode,
                e.started_ts >= switch.starts_at,
                e.started_ts < until,
                *_in_scope(switch),
            )
            .order_by(e.started_ts, e.event_id)
        ).all()
        case_ids = {int(r.case_id) for r in events if r.case_id is not None}
        filed = dict(
            conn.execute(
                select(CASES.c.id, CASES.c.created_at).where(CASES.c.id.in_(sorted(case_ids)))
            ).all()
        )
        dispatched = _dispatched_at(conn, case_ids)
    rows = []
    for r in events:
        case_id = r.case_id
        sent = dispatched.get(case_id) if case_id is not None else None
        rows.append(
            DrillRow(
                event_id=str(r.event_id),
                type=str(r.type),
                camera=str(r.camera),
                detection_s=float(r.received_at) - float(r.started_ts),
                review_s=None if r.reviewed_at is None else r.reviewed_at - r.received_at,
                dispatch_s=None if sent is None else sent - float(filed[case_id]),
            )
        )
    return DrillReport(switch, tuple(rows))
