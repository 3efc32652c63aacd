"""Cases: the board, one case with its events and audit trail, and changes to it."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import Connection, func, select

from aggregator.api.auth import ABILITIES, Viewer, able, require
from aggregator.api.deps import RowId, ServicesDep
from aggregator.api.schemas.cases import (
    CaseDetailPublic,
    CaseEventPublic,
    CasePublic,
    CasesPublic,
    CaseStatus,
    CaseUpdate,
)
from aggregator.api.schemas.common import AuditEntryPublic, errors
from aggregator.auth import User
from aggregator.db.grid_models import MAX_CELL_CHARS
from aggregator.db.models import AUDIT, CASES, EVENTS
from aggregator.grid.catalogue import Catalogue
from aggregator.grid.stages import next_due, stage_states
from aggregator.review import TRANSITIONS, Review, ReviewError

router = APIRouter(
    prefix="/api/v1/cases",
    tags=["cases"],
    dependencies=[Depends(require("viewer"))],
    responses=errors(401),
)
CaseEditor = Annotated[User, Depends(able("update_cases"))]


def transitions(status: str, user: User) -> list[str]:
    """The statuses ``user`` may move a case from ``status`` to: those of TRANSITIONS whose
    role they have, and none if they may not change cases at all (PATCH refuses them)."""
    if not user.has(ABILITIES["update_cases"]):
        return []
    return [nxt for nxt, role in TRANSITIONS.get(status, {}).items() if user.has(role)]


def _public(row: Any, user: User, catalogue: Catalogue) -> dict[str, Any]:
    category = catalogue.by_code.get(row.category_code) or catalogue.for_type(row.type)
    states = stage_states(category, row.created_at, row.deadline_at, row.stage_index)
    current = next_due(states)
    return {
        **row._mapping,
        "stage": current.name if current else "",
        "stages": [vars(s) for s in states],
        "transitions": transitions(row.status, user),
    }


@router.get("", responses=errors(422))
def list_cases(
    services: ServicesDep,
    user: Viewer,
    status: CaseStatus | None = None,
    department: str | None = None,
    overdue: bool | None = None,
    grid_cell: Annotated[str | None, Query(max_length=MAX_CELL_CHARS)] = None,
    district: Annotated[str | None, Query(max_length=64)] = None,
    category_code: Annotated[str | None, Query(max_length=16)] = None,
    source: Literal["camera", "citizen"] | None = None,
    drill: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> CasesPublic:
    """Cases, newest first; overdue = still open past their deadline; grid_cell, district,
    category_code, source and drill filter as named."""
    conds = []
    if status is not None:
        conds.append(CASES.c.status == status)
    if department is not None:
        conds.append(CASES.c.department == department)
    for column, value in (
        (CASES.c.grid_cell, grid_cell),
        (CASES.c.district, district),
        (CASES.c.category_code, category_code),
        (CASES.c.source, source),
        (CASES.c.drill, drill),
    ):
        if value is not None:
            conds.append(column == value)
    if overdue is not None:
        late = (CASES.c.deadline_at < time.time()) & CASES.c.closed_at.is_(None)
        conds.append(late if overdue else ~late)
    with services.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(CASES).where(*conds)).scalar_one()
        rows = conn.execute(
            select(CASES).where(*conds).order_by(CASES.c.id.desc()).limit(limit).offset(offset)
        ).all()
    return CasesPublic(
        total=total,
        items=[CasePublic.model_validate(_public(r, user, services.catalogue)) for r in rows],
    )


def _detail(conn: Connection, case_id: int, user: User, catalogue: Catalogue) -> CaseDetailPublic:
    row = conn.execute(select(CASES).where(CASES.c.id == case_id)).first()
    if row is None:
        raise HTTPException(404, f"no case {case_id}")
    events = conn.execute(
        select(
            EVENTS.c.event_id,
            EVENTS.c.type,
            EVENTS.c.started_ts,
            EVENTS.c.value,
            EVENTS.c.peak,
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
    return CaseDetailPublic.model_validate(
        {
            **_public(row, user, catalogue),
            "events": [CaseEventPublic.model_validate(dict(e._mapping)) for e in events],
            "audit": [AuditEntryPublic.model_validate(dict(a._mapping)) for a in trail],
        }
    )


@router.get("/{case_id}", responses=errors(404, 422))
def get_case(case_id: RowId, services: ServicesDep, user: Viewer) -> CaseDetailPublic:
    """One case with its events, every change made to it, and the moves this user may make."""
    with services.engine.connect() as conn:
        return _detail(conn, case_id, user, services.catalogue)


@router.patch("/{case_id}", responses=errors(400, 403, 404, 409, 422))
def update_case(
    case_id: RowId, body: CaseUpdate, services: ServicesDep, user: CaseEditor
) -> CaseDetailPublic:
    """Dispatch, progress, resolve (operator); verify, close, cancel, reopen (supervisor)."""
    try:
        Review(services.engine, services.catalogue, services.modes, services.grid).update_case(
            case_id, user, body.model_dump(exclude={"note"}), body.note
        )
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    with services.engine.connect() as conn:
        return _detail(conn, case_id, user, services.catalogue)
