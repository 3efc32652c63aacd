"""Statistics for supervisors and planners: where problems recur and how fast they are handled."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import BigInteger, Integer, cast, func, select

from aggregator.api.auth import require
from aggregator.api.deps import ServicesDep
from aggregator.api.schemas.common import errors
from aggregator.api.schemas.stats import Hotspot, StatsPublic
from aggregator.db.models import CASES, EVENTS

router = APIRouter(
    prefix="/api/v1/stats",
    tags=["stats"],
    dependencies=[Depends(require("viewer"))],
    responses=errors(401),
)


def _floor(expr: Any, dialect: str) -> Any:
    """Integer floor of a non-negative number, in SQL (SQLite may lack floor(); its CAST
    truncates, PostgreSQL's rounds)."""
    if dialect == "postgresql":
        return cast(func.floor(expr), BigInteger)
    return cast(expr, Integer)


def _by(conn: Any, col: Any, drill: bool) -> dict[str, int]:
    rows = conn.execute(
        select(col, func.count())
        .where(EVENTS.c.drill.is_(drill))
        .group_by(col)
        .order_by(func.count().desc())
    ).all()
    return {str(k): int(n) for k, n in rows}


@router.get("", responses=errors(422))
def overview(
    services: ServicesDep,
    since: float | None = None,
    drill: Annotated[
        bool, Query(description="false: real events and cases only; true: drills only.")
    ] = False,
) -> StatsPublic:
    """Counts by type, camera, zone, mode, day and hour; time to confirm and to close;
    overdue cases; hotspots (camera and zone with the most confirmed events). Drill events
    and cases are counted only when asked for (drill=true), and then alone."""
    real = EVENTS.c.drill.is_(drill)
    with services.engine.connect() as conn:
        by_type = _by(conn, EVENTS.c.type, drill)
        by_camera = _by(conn, EVENTS.c.camera, drill)
        by_zone = _by(conn, EVENTS.c.camera + "/" + EVENTS.c.zone, drill)
        by_mode = _by(conn, EVENTS.c.mode, drill)
        # Days and hours are grouped by the database: a million events must not be read out.
        day = _floor(EVENTS.c.received_at / 86400, conn.dialect.name)
        hour = _floor(EVENTS.c.received_at / 3600, conn.dialect.name) % 24
        per_day = conn.execute(select(day, func.count()).where(real).group_by(day)).all()
        per_hour = conn.execute(select(hour, func.count()).where(real).group_by(hour)).all()
        to_confirm = [
            float(d)
            for (d,) in conn.execute(
                select(EVENTS.c.reviewed_at - EVENTS.c.received_at).where(
                    real, EVENTS.c.review_status == "confirmed", EVENTS.c.reviewed_at.is_not(None)
                )
            )
        ]
        hot = conn.execute(
            select(EVENTS.c.camera, EVENTS.c.zone, func.count())
            .where(real, EVENTS.c.review_status == "confirmed")
            .group_by(EVENTS.c.camera, EVENTS.c.zone)
            .order_by(func.count().desc())
            .limit(10)
        ).all()
        cases = conn.execute(
            select(CASES.c.created_at, CASES.c.closed_at, CASES.c.deadline_at).where(
                CASES.c.drill.is_(drill)
            )
        ).all()
    days = {
        datetime.fromtimestamp(int(d) * 86400, UTC).date().isoformat(): int(n) for d, n in per_day
    }
    hours = {int(h): int(n) for h, n in per_hour}
    to_close = [c - o for o, c, _ in cases if c]
    now = time.time()
    return StatsPublic(
        events_by_type=by_type,
        events_by_camera=by_camera,
        events_by_zone=by_zone,
        events_by_mode=by_mode,
        events_by_day=dict(sorted(days.items())),
        events_by_hour={str(h): hours.get(h, 0) for h in range(24)},
        median_time_to_confirm_s=statistics.median(to_confirm) if to_confirm else None,
        median_time_to_close_s=statistics.median(to_close) if to_close else None,
        open_cases=sum(1 for _, c, _ in cases if c is None),
        overdue_cases=sum(1 for _, c, d in cases if c is None and d < now),
        hotspots=[Hotspot(camera=c, zone=z, confirmed=int(n)) for c, z, n in hot],
    )
