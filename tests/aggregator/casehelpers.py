"""Cases written straight into the database with known times, for figures worked out by hand
(the public figures and the scorecard)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete

from aggregator.db.models import CASES

HOUR = 3600.0


def utc(text: str) -> float:
    """Unix seconds of an ISO 8601 time read as UTC, e.g. '2025-03-02T10:00'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def seed_case(
    conn: Connection,
    created_at: float,
    *,
    status: str = "filed",
    closed_after_h: float | None = None,
    deadline_h: float = 24.0,
    rework_count: int = 0,
    department: str = "street cleaning",
    district: str = "Old Town",
    grid_cell: str = "G-0101",
    category_code: str = "0101",
    drill: bool = False,
    **fields: Any,
) -> None:
    """One case; closed_after_h sets closed_at (give status closed or cancelled with it)."""
    closed_at = None if closed_after_h is None else created_at + closed_after_h * HOUR
    values: dict[str, Any] = {
        "camera": "cam-1",
        "zone": "square",
        "type": "litter",
        "category": "city appearance / exposed garbage",
        "department": department,
        "priority": "normal",
        "status": status,
        "assignee": None,
        "deadline_at": created_at + deadline_h * HOUR,
        "created_at": created_at,
        "updated_at": closed_at or created_at,
        "closed_at": closed_at,
        "drill": drill,
        "mode": "drill" if drill else "peacetime",
        "category_code": category_code,
        "district": district,
        "grid_cell": grid_cell,
        "rework_count": rework_count,
        **fields,
    }
    conn.execute(CASES.insert().values(**values))


def clear_cases(conn: Connection) -> None:
    conn.execute(delete(CASES))
