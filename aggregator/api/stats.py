"""Statistics for supervisors and planners: where problems recur and how fast they are handled."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import func, select

from aggregator.api.auth import require
from aggregator.api.deps import ServicesDep
from aggregator.db.models import CASES, EVENTS

router = APIRouter(
    prefix="/api/v1/stats", tags=["stats"], dependencies=[Depends(require("viewer"))]
)


def _by(conn: Any, col: Any) -> dict[str, int]:
    rows = conn.execute(select(col, func.count()).group_by(col).order_by(func.count().desc())).all()
    return {str(k): int(n) for k, n in rows}


@router.get("")
def overview(services: ServicesDep, since: float | None = None) -> dict[str, Any]:
    """Counts by type, camera, zone, day and hour; time to confirm and to close; overdue
    cases; hotspots (camera and zone with the most confirmed events)."""
    with services.engine.connect() as conn:
        by_type = _by(conn, EVENTS.c.type)
        by_camera = _by(conn, EVENTS.c.camera)
        by_zone = _by(conn, EVENTS.c.camera + "/" + EVENTS.c.zone)
        times = conn.execute(
            select(EVENTS.c.received_at, EVENTS.c.reviewed_at, EVENTS.c.review_status)
        ).all()
        hot = conn.execute(
            select(EVENTS.c.camera, EVENTS.c.zone, func.count())
            .where(EVENTS.c.review_status == "confirmed")
            .group_by(EVENTS.c.camera, EVENTS.c.zone)
            .order_by(func.count().desc())
            .limit(10)
        ).all()
        cases = conn.execute(
            select(CASES.c.created_at, CASES.c.closed_at, CASES.c.deadline_at)
        ).all()
    days: Counter[str] = Counter()
    hours: Counter[int] = Counter()
    to_confirm = []
    for received, reviewed, status in times:
        t = datetime.fromtimestamp(received, UTC)
        days[t.date().isoformat()] += 1
        hours[t.hour] += 1
        if status == "confirmed" and reviewed:
            to_confirm.append(reviewed - received)
    to_close = [c - o for o, c, _ in cases if c]
    now = time.time()
    return {
        "events_by_type": by_type,
        "events_by_camera": by_camera,
        "events_by_zone": by_zone,
        "events_by_day": dict(sorted(days.items())),
        "events_by_hour": {h: hours.get(h, 0) for h in range(24)},
        "median_time_to_confirm_s": statistics.median(to_confirm) if to_confirm else None,
        "median_time_to_close_s": statistics.median(to_close) if to_close else None,
        "open_cases": sum(1 for _, c, _ in cases if c is None),
        "overdue_cases": sum(1 for _, c, d in cases if c is None and d < now),
        "hotspots": [{"camera": c, "zone": z, "confirmed": int(n)} for c, z, n in hot],
    }
