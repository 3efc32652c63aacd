"""The review workflow: confirm or dismiss events, file and move cases, audit everything.

Follows the digital city-management cycle (report, file, dispatch, handle, feed back,
verify, close). Pure database work; the HTTP layer only checks roles and shapes answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from aggregator.auth import User
from aggregator.core.fleet_config import ModesConfig
from aggregator.core.grid_config import GridConfig
from aggregator.db.grid_models import GRID_CELLS
from aggregator.db.models import AUDIT, CAMERAS, CASES, EVENTS
from aggregator.grid.catalogue import Catalogue, Category
from aggregator.grid.stages import stage_states
from aggregator.notify.hooks import on_closed, on_filed
from aggregator.verifications import GUARDED_STATUSES, OVERRIDE_ACTION, closing_refusal

DISMISS_REASONS = ("false_positive", "duplicate", "not_actionable")
OPEN_STATUSES = ("filed", "dispatched", "in_progress", "resolved")
# status -> {next status: role needed}
TRANSITIONS: dict[str, dict[str, str]] = {
    "filed": {"dispatched": "operator", "cancelled": "supervisor"},
    "dispatched": {"in_progress": "operator", "cancelled": "supervisor"},
    "in_progress": {"resolved": "operator", "cancelled": "supervisor"},
    "resolved": {"verified": "supervisor", "in_progress": "supervisor"},
    "verified": {"closed": "supervisor"},
    "closed": {},
    "cancelled": {},
}


class ReviewError(Exception):
    """A request that the workflow refuses: ``status`` is the HTTP code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def audit(
    conn: Connection,
    user: User,
    action: str,
    entity: str,
    entity_id: str,
    detail: dict[str, Any],
    reason: str | None = None,
) -> None:
    conn.execute(
        AUDIT.insert().values(
            at=time.time(),
            username=user.username,
            action=action,
            entity=entity,
            entity_id=entity_id,
            detail=detail,
            reason=reason,
        )
    )


@dataclass(frozen=True)
class Filing:
    """How a new case is filed: its category, priority and stage deadlines (epoch seconds)."""

    category: Category
    priority: str
    stage_due_at: tuple[float, ...]

    def values(self) -> dict[str, Any]:
        """The cases columns these settle."""
        return {
            "category": self.category.title,
            "category_code": self.category.code,
            "department": self.category.department,
            "priority": self.priority,
            "stage_index": 0,
            "stage_due_at": self.stage_due_at[0],
            "deadline_at": self.stage_due_at[-1],
        }


def place(conn: Connection, camera: str) -> dict[str, Any]:
    """Where a camera's cases are: address, position, grid cell and its district."""
    cam = conn.execute(select(CAMERAS).where(CAMERAS.c.camera_id == camera)).first()
    if cam is None:
        return {"address": "", "lat": None, "lon": None, "grid_cell": "", "district": ""}
    district = conn.execute(
        select(GRID_CELLS.c.district).where(GRID_CELLS.c.code == cam.grid_cell)
    ).scalar()
    return {
        "address": cam.address,
        "lat": cam.lat,
        "lon": cam.lon,
        "grid_cell": cam.grid_cell,
        "district": district or "",
    }


class Review:
    def __init__(
        self,
        engine: Engine,
        catalogue: Catalogue,
        modes: ModesConfig | None = None,
        grid: GridConfig | None = None,
    ) -> None:
        """grid: where the webhooks of filed and closed cases are; None queues no notices."""
        self.engine = engine
        self.catalogue = catalogue
        self.modes = modes or ModesConfig()
        self.grid = grid

    def filing(self, category: Category, event_type: str, mode: str, now: float) -> Filing:
        """The filing of a case of category (raised as event_type) under mode: the mode's
        case override, where it has one, sets the priority and shortens every stage in
        proportion to its time limit (e.g. emergency: 48 h -> 12 h, a 4 h stage -> 1 h)."""
        definition = self.modes.definitions.get(mode)
        override = definition.cases.get(event_type) if definition else None
        priority = (override.priority if override else None) or category.priority
        scale = 1.0
        if override is not None and override.time_limit_h is not None:
            scale = override.time_limit_h / category.time_limit_h
        due = tuple(now + s.within_h * scale * 3600 for s in category.stages)
        return Filing(category, priority, due)

    def _event(self, conn: Connection, event_id: str) -> Any:
        row = conn.execute(select(EVENTS).where(EVENTS.c.event_id == event_id)).first()
        if row is None:
            raise ReviewError(404, f"no event {event_id}")
        return row

    def confirm(self, event_id: str, user: User, note: str | None = None) -> int:
        """Confirm the event into a case: an open case of the same camera, zone and type,
        or a new one. Returns the case id."""
        with self.engine.begin() as conn:
            ev = self._event(conn, event_id)
            if ev.review_status == "confirmed":
                return int(ev.case_id)
            now = time.time()
            open_case = conn.execute(
                select(CASES.c.id)
                .where(
                    CASES.c.camera == ev.camera,
                    CASES.c.zone == ev.zone,
                    CASES.c.type == ev.type,
                    CASES.c.status.in_(OPEN_STATUSES),
                    # A drill never joins a real case, nor a real event a drill one.
                    CASES.c.drill == ev.drill,
                )
                .order_by(CASES.c.id)
            ).first()
            if open_case is not None:
                case_id = int(open_case.id)
                audit(conn, user, "join_case", "case", str(case_id), {"event_id": event_id}, note)
            else:
                filing = self.filing(self.catalogue.for_type(ev.type), ev.type, ev.mode, now)
                inserted = conn.execute(
                    CASES.insert().values(
                        camera=ev.camera,
                        zone=ev.zone,
                        type=ev.type,
                        status="filed",
                        assignee=None,
                        created_at=now,
                        updated_at=now,
                        closed_at=None,
                        mode=ev.mode,
                        drill=ev.drill,
                        source="camera",
                        **filing.values(),
                        **place(conn, ev.camera),
                    )
                ).inserted_primary_key
                assert inserted is not None
                case_id = int(inserted[0])
                audit(
                    conn,
                    user,
                    "file_case",
                    "case",
                    str(case_id),
                    {
                        "event_id": event_id,
                        "category": filing.category.code,
                        "department": filing.category.department,
                    },
                    note,
                )
                if self.grid is not None:  # in this transaction: the notice iff the case
                    case = conn.execute(select(CASES).where(CASES.c.id == case_id)).one()
                    on_filed(conn, self.grid, filing.category, case._mapping)
            conn.execute(
                update(EVENTS)
                .where(EVENTS.c.event_id == event_id)
                .values(
                    review_status="confirmed",
                    review_reason=None,
                    reviewed_by=user.username,
                    reviewed_at=now,
                    case_id=case_id,
                )
            )
            audit(conn, user, "confirm", "event", event_id, {"case_id": case_id}, note)
        return case_id

    def dismiss(self, event_id: str, user: User, reason: str, note: str | None = None) -> None:
        if reason not in DISMISS_REASONS:
            raise ReviewError(422, f"reason must be one of {', '.join(DISMISS_REASONS)}")
        with self.engine.begin() as conn:
            ev = self._event(conn, event_id)
            if ev.review_status == "confirmed":
                raise ReviewError(409, f"event {event_id} is confirmed into case {ev.case_id}")
            conn.execute(
                update(EVENTS)
                .where(EVENTS.c.event_id == event_id)
                .values(
                    review_status="dismissed",
                    review_reason=reason,
                    reviewed_by=user.username,
                    reviewed_at=time.time(),
                )
            )
            audit(conn, user, "dismiss", "event", event_id, {"reason": reason}, note)

    def update_case(
        self, case_id: int, user: User, changes: dict[str, Any], note: str | None
    ) -> None:
        """Change status (along TRANSITIONS), department, assignee or priority, or finish
        the current stage; audited."""
        with self.engine.begin() as conn:
            row = conn.execute(select(CASES).where(CASES.c.id == case_id)).first()
            if row is None:
                raise ReviewError(404, f"no case {case_id}")
            values = self._status_change(conn, row, user, changes, note)
            for key in ("department", "assignee", "priority"):
                if changes.get(key) is not None and changes[key] != getattr(row, key):
                    values[key] = changes[key]
            if changes.get("stage_done"):
                values.update(self._next_stage(row))
            if not values and not note:
                return
            values["updated_at"] = time.time()
            conn.execute(update(CASES).where(CASES.c.id == case_id).values(**values))
            if self.grid is not None and values.get("status") in ("closed", "cancelled"):
                case = conn.execute(select(CASES).where(CASES.c.id == case_id)).one()
                category = self.catalogue.by_code.get(case.category_code)
                on_closed(conn, self.grid, category, case._mapping)
            before = {k: getattr(row, k) for k in values if k not in ("updated_at", "closed_at")}
            audit(
                conn,
                user,
                "update_case",
                "case",
                str(case_id),
                {"from": before, "to": {k: v for k, v in values.items() if k in before}},
                note,
            )

    @staticmethod
    def _status_change(
        conn: Connection, row: Any, user: User, changes: dict[str, Any], note: str | None
    ) -> dict[str, Any]:
        """The column changes of moving the case to changes["status"] (none if it stays). A
        camera case is verified or closed only when its camera's latest verification says
        cleared (aggregator/verifications.py), or a supervisor overrides it with a note
        (``override``, audited as verify_override)."""
        new_status = changes.get("status")
        if new_status is None or new_status == row.status:
            return {}
        allowed = TRANSITIONS.get(row.status, {})
        if new_status not in allowed:
            raise ReviewError(
                409,
                f"case {row.id} is {row.status}: it can go to "
                f"{', '.join(allowed) or 'nothing'}, not {new_status}",
            )
        if not user.has(allowed[new_status]):
            raise ReviewError(
                403, f"moving a case to {new_status} needs the {allowed[new_status]} role"
            )
        refusal = None
        if new_status in GUARDED_STATUSES and row.source == "camera" and row.camera:
            refusal = closing_refusal(conn, row.id, new_status)
        if refusal is not None:
            message, last = refusal
            if not changes.get("override"):
                raise ReviewError(409, message)
            if not user.has("supervisor"):
                raise ReviewError(403, "overriding the camera's verdict needs the supervisor role")
            if not note:
                raise ReviewError(
                    422, "an override of the camera's verdict needs a note saying why"
                )
            detail = {
                "to": new_status,
                "request_id": last.request_id if last else None,
                "verdict": last.verdict if last else None,
            }
            audit(conn, user, OVERRIDE_ACTION, "case", str(row.id), detail, note)
        values: dict[str, Any] = {"status": new_status}
        if new_status in ("closed", "cancelled"):
            values["closed_at"] = time.time()
        if row.status == "resolved" and new_status == "in_progress":
            values["rework_count"] = row.rework_count + 1  # sent back: GB/T 30428.4 rework
        return values

    def _next_stage(self, row: Any) -> dict[str, Any]:
        """Finish the current stage: the next one's deadline becomes the case's next."""
        category = self.catalogue.by_code.get(row.category_code) or self.catalogue.for_type(
            row.type
        )
        states = stage_states(category, row.created_at, row.deadline_at, row.stage_index)
        if row.stage_index >= len(states):
            raise ReviewError(409, f"case {row.id} has finished all {len(states)} stages")
        index = row.stage_index + 1
        return {
            "stage_index": index,
            "stage_due_at": states[index].due_at if index < len(states) else None,
        }
