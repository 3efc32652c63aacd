"""Events: the review queue with filters, one event with its history, and review actions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from aggregator.api.auth import require
from aggregator.api.deps import ServicesDep
from aggregator.auth import User
from aggregator.db.models import AUDIT, EVENTS, MEDIA, EventMessageRow
from aggregator.review import Review, ReviewError

router = APIRouter(
    prefix="/api/v1/events", tags=["events"], dependencies=[Depends(require("viewer"))]
)
Operator = Annotated[User, Depends(require("operator"))]
COUNT_CAP = 10_000


@router.get("")
def list_events(
    services: ServicesDep,
    camera: str | None = None,
    zone: str | None = None,
    type: str | None = None,
    status: Literal["new", "confirmed", "dismissed"] | None = None,
    severity: Literal["low", "medium", "high"] | None = None,
    since: Annotated[float | None, Query(description="started_ts at or after, seconds")] = None,
    until: Annotated[float | None, Query(description="started_ts before, seconds")] = None,
    has_clip: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> dict[str, Any]:
    """Events, newest first, filtered, with the total that match."""
    conds = []
    for col, value in (
        ("camera", camera),
        ("zone", zone),
        ("type", type),
        ("review_status", status),
        ("severity", severity),
    ):
        if value is not None:
            conds.append(EVENTS.c[col] == value)
    if since is not None:
        conds.append(EVENTS.c.started_ts >= since)
    if until is not None:
        conds.append(EVENTS.c.started_ts < until)
    if has_clip is not None:
        conds.append(EVENTS.c.clip_id.is_not(None) if has_clip else EVENTS.c.clip_id.is_(None))
    with services.engine.connect() as conn:
        # Counting a million matches costs more than the page: count up to a cap.
        capped = select(EVENTS.c.event_id).where(*conds).limit(COUNT_CAP + 1).subquery()
        total = conn.execute(select(func.count()).select_from(capped)).scalar_one()
        rows = conn.execute(
            select(EVENTS)
            .where(*conds)
            .order_by(EVENTS.c.started_ts.desc(), EVENTS.c.event_id)
            .limit(limit)
            .offset(offset)
        ).all()
        items = [dict(r._mapping) for r in rows]
        _evidence_status(conn, items)
    return {
        "total": min(total, COUNT_CAP),
        "total_is_capped": total > COUNT_CAP,
        "limit": limit,
        "offset": offset,
        "items": items,
    }


def _evidence_status(conn: Any, items: list[dict[str, Any]]) -> None:
    """'available' once the upload arrived, 'pending' until then, 'none' without evidence."""
    wanted = [i[k] for i in items for k in ("clip_id", "snapshot_id") if i.get(k)]
    have = (
        set(conn.execute(select(MEDIA.c.media_id).where(MEDIA.c.media_id.in_(wanted))).scalars())
        if wanted
        else set()
    )
    for item in items:
        for kind in ("clip", "snapshot"):
            mid = item.get(f"{kind}_id")
            item[f"{kind}_status"] = (
                "none" if not mid else ("available" if mid in have else "pending")
            )


@router.get("/{event_id}")
def get_event(event_id: str, services: ServicesDep) -> dict[str, Any]:
    """One event with its lifecycle history, evidence links and review trail."""
    with services.engine.connect() as conn:
        row = conn.execute(select(EVENTS).where(EVENTS.c.event_id == event_id)).first()
        if row is None:
            raise HTTPException(404, f"no event {event_id}")
        history = conn.execute(
            select(
                EventMessageRow.phase,
                EventMessageRow.ts,
                EventMessageRow.value,
                EventMessageRow.seq,
                EventMessageRow.committed_at,
            )
            .where(EventMessageRow.event_id == event_id)
            .order_by(EventMessageRow.ts)
        ).all()
        trail = conn.execute(
            select(AUDIT)
            .where(AUDIT.c.entity == "event", AUDIT.c.entity_id == event_id)
            .order_by(AUDIT.c.at)
        ).all()
        item = dict(row._mapping)
        _evidence_status(conn, [item])
    for kind in ("clip", "snapshot"):
        if item[f"{kind}_id"]:
            item[f"{kind}_url"] = f"/api/v1/media/{item[f'{kind}_id']}"
    return {
        **item,
        "history": [dict(h._mapping) for h in history],
        "audit": [dict(a._mapping) for a in trail],
    }


class ConfirmIn(BaseModel):
    note: str | None = Field(None, max_length=512)


class DismissIn(BaseModel):
    reason: Literal["false_positive", "duplicate", "not_actionable"]
    note: str | None = Field(None, max_length=512)


class BulkIn(BaseModel):
    event_ids: list[str] = Field(min_length=1, max_length=500)
    action: Literal["confirm", "dismiss"]
    reason: Literal["false_positive", "duplicate", "not_actionable"] | None = None
    note: str | None = Field(None, max_length=512)


def _review(services: ServicesDep) -> Review:
    return Review(services.engine, services.cases)


def _run(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.post("/{event_id}/confirm")
def confirm(
    event_id: str, body: ConfirmIn, services: ServicesDep, user: Operator
) -> dict[str, Any]:
    """Confirm a real problem: it becomes a case, or joins the open case of its camera,
    zone and type."""
    case_id = _run(_review(services).confirm, event_id, user, body.note)
    return {"event_id": event_id, "case_id": case_id}


@router.post("/{event_id}/dismiss")
def dismiss(
    event_id: str, body: DismissIn, services: ServicesDep, user: Operator
) -> dict[str, Any]:
    """Dismiss with a reason: false_positive, duplicate or not_actionable."""
    _run(_review(services).dismiss, event_id, user, body.reason, body.note)
    return {"event_id": event_id, "status": "dismissed", "reason": body.reason}


@router.post("/bulk")
def bulk(body: BulkIn, services: ServicesDep, user: Operator) -> dict[str, Any]:
    """Confirm or dismiss many events; each result says what happened to that event."""
    if body.action == "dismiss" and body.reason is None:
        raise HTTPException(422, "dismissing needs a reason")
    review = _review(services)
    results = []
    for event_id in body.event_ids:
        try:
            if body.action == "confirm":
                results.append(
                    {"event_id": event_id, "case_id": review.confirm(event_id, user, body.note)}
                )
            else:
                review.dismiss(event_id, user, str(body.reason), body.note)
                results.append({"event_id": event_id, "status": "dismissed"})
        except ReviewError as exc:
            results.append({"event_id": event_id, "error": str(exc), "status_code": exc.status})
    return {"results": results}
