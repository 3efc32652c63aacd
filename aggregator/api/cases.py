"""Cases: the board, one case with its events and audit trail, and changes to it."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from aggregator.api.auth import require
from aggregator.api.deps import RowId, ServicesDep
from aggregator.auth import User
from aggregator.db.models import AUDIT, CASES, EVENTS
from aggregator.review import Review, ReviewError

router = APIRouter(
    prefix="/api/v1/cases", tags=["cases"], dependencies=[Depends(require("viewer"))]
)
Operator = Annotated[User, Depends(require("operator"))]
Status = Literal[
    "filed", "dispatched", "in_progress", "resolved", "verified", "closed", "cancelled"
]


@router.get("")
def list_cases(
    services: ServicesDep,
    status: Status | None = None,
    department: str | None = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> dict[str, Any]:
    """Cases, newest first; overdue = still open past their deadline."""
    conds = []
    if status is not None:
        conds.append(CASES.c.status == status)
    if department is not None:
        conds.append(CASES.c.department == department)
    if overdue is not None:
        late = (CASES.c.deadline_at < time.time()) & CASES.c.closed_at.is_(None)
        conds.append(late if overdue else ~late)
    with services.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(CASES).where(*conds)).scalar_one()
        rows = conn.execute(
            select(CASES).where(*conds).order_by(CASES.c.id.desc()).limit(limit).offset(offset)
        ).all()
    return {"total": total, "items": [dict(r._mapping) for r in rows]}


@router.get("/{case_id}")
def get_case(case_id: RowId, services: ServicesDep) -> dict[str, Any]:
    """One case with its events and every change made to it."""
    with services.engine.connect() as conn:
        row = conn.execute(select(CASES).where(CASES.c.id == case_id)).first()
        if row is None:
            raise HTTPException(404, f"no case {case_id}")
        events = conn.execute(
            select(
                EVENTS.c.event_id,
                EVENTS.c.started_ts,
                EVENTS.c.value,
                EVENTS.c.unit,
                EVENTS.c.clip_id,
                EVENTS.c.snapshot_id,
            )
            .where(EVENTS.c.case_id == case_id)
            .order_by(EVENTS.c.started_ts)
        ).all()
        trail = conn.execute(
            select(AUDIT)
            .where(AUDIT.c.entity == "case", AUDIT.c.entity_id == str(case_id))
            .order_by(AUDIT.c.at)
        ).all()
    return {
        **dict(row._mapping),
        "events": [dict(e._mapping) for e in events],
        "audit": [dict(a._mapping) for a in trail],
    }


class CaseUpdate(BaseModel):
    status: Status | None = None
    department: str | None = Field(None, min_length=1, max_length=64)
    assignee: str | None = Field(None, min_length=1, max_length=64)
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    note: str | None = Field(None, max_length=512, description="Why: kept in the audit log.")


@router.patch("/{case_id}")
def update_case(
    case_id: RowId, body: CaseUpdate, services: ServicesDep, user: Operator
) -> dict[str, Any]:
    """Dispatch, progress, resolve (operator); verify, close, cancel, reopen (supervisor)."""
    try:
        Review(services.engine, services.cases).update_case(
            case_id, user, body.model_dump(exclude={"note"}), body.note
        )
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return get_case(case_id, services)
