"""Stored events (the review API proper arrives with the review issue)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import func, select

from aggregator.api.auth import require
from aggregator.api.deps import ServicesDep
from aggregator.db.models import EVENTS, MEDIA, EventMessageRow, EventRow

router = APIRouter(
    prefix="/api/v1/events", tags=["events"], dependencies=[Depends(require("viewer"))]
)


@router.get("")
def list_events(
    services: ServicesDep,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    """Events, newest first, with the total count."""
    with services.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(EventRow)).scalar_one()
        rows = conn.execute(
            select(EVENTS).order_by(EventRow.started_ts.desc()).limit(limit).offset(offset)
        ).all()
        items = [dict(r._mapping) for r in rows]
        _evidence_status(conn, items)
    return {"total": total, "items": items}


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
    """One event with its lifecycle history in order."""
    with services.engine.connect() as conn:
        row = conn.execute(select(EVENTS).where(EventRow.event_id == event_id)).first()
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
        item = dict(row._mapping)
        _evidence_status(conn, [item])
    return {**item, "history": [dict(h._mapping) for h in history]}
