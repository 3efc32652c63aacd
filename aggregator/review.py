"""The review workflow: confirm or dismiss events, file and move cases, audit everything.

Follows the digital city-management cycle (report, file, dispatch, handle, feed back,
verify, close). Pure database work; the HTTP layer only checks roles and shapes answers.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from aggregator.auth import User
from aggregator.core.config import CasesConfig
from aggregator.core.fleet_config import ModesConfig
from aggregator.db.models import AUDIT, CAMERAS, CASES, EVENTS

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


class Review:
    def __init__(
        self, engine: Engine, cases: CasesConfig, modes: ModesConfig | None = None
    ) -> None:
        self.engine = engine
        self.cases = cases
        self.modes = modes or ModesConfig()

    def _filing(self, event_type: str, mode: str) -> tuple[str, float]:
        """(priority, time limit in hours) of a case of event_type opened under mode: the
        mode's case override where it has one, else the category's."""
        cat = self.cases.for_type(event_type)
        definition = self.modes.definitions.get(mode)
        override = definition.cases.get(event_type) if definition else None
        if override is None:
            return cat.priority, cat.time_limit_h
        return (
            override.priority or cat.priority,
            override.time_limit_h if override.time_limit_h is not None else cat.time_limit_h,
        )

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
                cat = self.cases.for_type(ev.type)
                priority, time_limit_h = self._filing(ev.type, ev.mode)
                cam = conn.execute(select(CAMERAS).where(CAMERAS.c.camera_id == ev.camera)).first()
                inserted = conn.execute(
                    CASES.insert().values(
                        camera=ev.camera,
                        zone=ev.zone,
                        type=ev.type,
                        category=cat.category,
                        department=cat.department,
                        priority=priority,
                        status="filed",
                        assignee=None,
                        deadline_at=now + time_limit_h * 3600,
                        address=cam.address if cam else "",
                        lat=cam.lat if cam else None,
                        lon=cam.lon if cam else None,
                        grid_cell=cam.grid_cell if cam else "",
                        created_at=now,
                        updated_at=now,
                        closed_at=None,
                        mode=ev.mode,
                        drill=ev.drill,
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
                    {"event_id": event_id, "category": cat.category, "department": cat.department},
                    note,
                )
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
        """Change status (along TRANSITIONS), department, assignee or priority; audited."""
        with self.engine.begin() as conn:
            row = conn.execute(select(CASES).where(CASES.c.id == case_id)).first()
            if row is None:
                raise ReviewError(404, f"no case {case_id}")
            values: dict[str, Any] = {}
            new_status = changes.get("status")
            if new_status is not None and new_status != row.status:
                allowed = TRANSITIONS.get(row.status, {})
                if new_status not in allowed:
                    raise ReviewError(
                        409,
                        f"case {case_id} is {row.status}: it can go to "
                        f"{', '.join(allowed) or 'nothing'}, not {new_status}",
                    )
                if not user.has(allowed[new_status]):
                    raise ReviewError(
                        403, f"moving a case to {new_status} needs the {allowed[new_status]} role"
                    )
                values["status"] = new_status
                if new_status in ("closed", "cancelled"):
                    values["closed_at"] = time.time()
            for key in ("department", "assignee", "priority"):
                if changes.get(key) is not None and changes[key] != getattr(row, key):
                    values[key] = changes[key]
            if not values and not note:
                return
            values["updated_at"] = time.time()
            conn.execute(update(CASES).where(CASES.c.id == case_id).values(**values))
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
