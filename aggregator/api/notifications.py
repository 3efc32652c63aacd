"""Notifications out (admin): recent webhook notices, delivered or still being retried."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import ColumnElement, func, select

from aggregator.api.auth import require
from aggregator.api.deps import ServicesDep
from aggregator.api.schemas.common import errors
from aggregator.api.schemas.notifications import (
    DeliveryStatus,
    NotificationKind,
    NotificationPublic,
    NotificationsPublic,
)
from aggregator.db.grid_models import NOTIFICATIONS

router = APIRouter(
    prefix="/api/v1/notifications",
    tags=["notifications"],
    dependencies=[Depends(require("admin"))],
    responses=errors(401, 403),
)


@router.get("", responses=errors(422))
def list_notifications(
    services: ServicesDep,
    status: DeliveryStatus | None = None,
    kind: NotificationKind | None = None,
    webhook: Annotated[str | None, Query(max_length=64)] = None,
    case_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> NotificationsPublic:
    """Notifications, newest first, with their delivery: pending (with attempts, the last
    error and the next try) or delivered."""
    n = NOTIFICATIONS.c
    conds: list[ColumnElement[bool]] = []
    if status is not None:
        conds.append(
            n.delivered_at.is_(None) if status == "pending" else n.delivered_at.isnot(None)
        )
    for column, value in ((n.kind, kind), (n.webhook, webhook), (n.case_id, case_id)):
        if value is not None:
            conds.append(column == value)
    with services.engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(NOTIFICATIONS).where(*conds)
        ).scalar_one()
        pending = conn.execute(
            select(func.count()).select_from(NOTIFICATIONS).where(n.delivered_at.is_(None))
        ).scalar_one()
        rows = conn.execute(
            select(NOTIFICATIONS).where(*conds).order_by(n.id.desc()).limit(limit).offset(offset)
        ).all()
    items = [
        NotificationPublic.model_validate(
            {**r._mapping, "status": "pending" if r.delivered_at is None else "delivered"}
        )
        for r in rows
    ]
    return NotificationsPublic(total=total, pending=pending, items=items)
