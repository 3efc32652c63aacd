"""Events: the review queue with filters, one event with its history, and review actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import Connection, func, select

from aggregator.api.auth import able, require
from aggregator.api.deps import ServicesDep
from aggregator.api.schemas.common import AuditEntryPublic, errors
from aggregator.api.schemas.events import (
    BulkDismissed,
    BulkFailed,
    BulkIn,
    BulkPublic,
    Confirmed,
    ConfirmIn,
    Dismissed,
    DismissIn,
    EventDetailPublic,
    EventPublic,
    EventsPublic,
    HistoryEntryPublic,
    ReviewStatus,
)
from aggregator.auth import User
from aggregator.db.models import AUDIT, EVENTS, MEDIA, EventMessageRow
from aggregator.review import Review, ReviewError
from contract.vocabulary import Severity

router = APIRouter(
    prefix="/api/v1/events",
    tags=["events"],
    dependencies=[Depends(require("viewer"))],
    responses=errors(401),
)
Reviewer = Annotated[User, Depends(able("review"))]
COUNT_CAP = 10_000
T = TypeVar("T")


@router.get("", responses=errors(422))
def list_events(
    services: ServicesDep,
    camera: str | None = None,
    zone: str | None = None,
    type: str | None = None,
    status: ReviewStatus | None = None,
    severity: Severity | None = None,
    since: Annotated[float | None, Query(description="started_ts at or after, seconds")] = None,
    until: Annotated[float | None, Query(description="started_ts before, seconds")] = None,
    has_clip: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> EventsPublic:
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
    return EventsPublic(
        total=min(total, COUNT_CAP),
        total_is_capped=total > COUNT_CAP,
        limit=limit,
        offset=offset,
        items=[EventPublic.model_validate(i) for i in items],
    )


def _evidence_status(conn: Connection, items: list[dict[str, Any]]) -> None:
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


@router.get("/{event_id}", responses=errors(404))
def get_event(event_id: str, services: ServicesDep) -> EventDetailPublic:
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
        mid = item[f"{kind}_id"]
        item[f"{kind}_url"] = f"/api/v1/media/{mid}" if mid else None
    return EventDetailPublic.model_validate(
        {
            **item,
            "history": [HistoryEntryPublic.model_validate(dict(h._mapping)) for h in history],
            "audit": [AuditEntryPublic.model_validate(dict(a._mapping)) for a in trail],
        }
    )


def _run(fn: Callable[..., T], *args: Any) -> T:
    """A review action, its refusal answered with the status the workflow chose."""
    try:
        return fn(*args)
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.post("/{event_id}/confirm", responses=errors(400, 403, 404, 422))
def confirm(event_id: str, body: ConfirmIn, services: ServicesDep, user: Reviewer) -> Confirmed:
    """Confirm a real problem: it becomes a case, or joins the open case of its camera,
    zone and type."""
    review = Review(services.engine, services.catalogue, services.modes, services.grid)
    case_id = _run(review.confirm, event_id, user, body.note)
    return Confirmed(event_id=event_id, case_id=case_id)


@router.post("/{event_id}/dismiss", responses=errors(400, 403, 404, 409, 422))
def dismiss(event_id: str, body: DismissIn, services: ServicesDep, user: Reviewer) -> Dismissed:
    """Dismiss with a reason: false_positive, duplicate or not_actionable."""
    review = Review(services.engine, services.catalogue, services.modes, services.grid)
    _run(review.dismiss, event_id, user, body.reason, body.note)
    return Dismissed(event_id=event_id, status="dismissed", reason=body.reason)


@router.post("/bulk", responses=errors(400, 403, 422))
def bulk(body: BulkIn, services: ServicesDep, user: Reviewer) -> BulkPublic:
    """Confirm or dismiss many events; each result says what happened to that event."""
    if body.action == "dismiss" and body.reason is None:
        raise HTTPException(422, "dismissing needs a reason")
    review = Review(services.engine, services.catalogue, services.modes, services.grid)
    results: list[Confirmed | BulkDismissed | BulkFailed] = []
    for event_id in body.event_ids:
        try:
            if body.action == "confirm":
                case_id = review.confirm(event_id, user, body.note)
                results.append(Confirmed(event_id=event_id, case_id=case_id))
            else:
                review.dismiss(event_id, user, str(body.reason), body.note)
                results.append(BulkDismissed(event_id=event_id, status="dismissed"))
        except ReviewError as exc:
            results.append(BulkFailed(event_id=event_id, error=str(exc), status_code=exc.status))
    return BulkPublic(results=results)
