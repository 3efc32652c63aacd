"""The notices the case workflow queues as it goes (aggregator/review.py calls these inside
its own transactions): filed, the owner-first notice, closed. Escalations are queued by the
sweep in aggregator/notify/escalate.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from aggregator.core.grid_config import GridConfig
from aggregator.grid.catalogue import Category
from aggregator.notify.queue import CaseRow, enqueue


def owner_notice(category: Category, case: CaseRow) -> dict[str, Any]:
    """What the shop or property manager is asked: fix it within owner_first_h hours of
    filing, or the department enforces."""
    hours = category.owner_first_h
    assert hours is not None
    return {
        "owner_first_h": hours,
        "fix_by": float(case["created_at"]) + hours * 3600,
        "message": f"Please fix this within {hours:g} h; after that, {category.department} "
        f"enforces ({category.legal_basis}).",
    }


def on_filed(conn: Connection, grid: GridConfig, category: Category, case: CaseRow) -> list[str]:
    """A new case: "filed" to the category's webhooks, and "owner_notice" where the category
    asks the owner to fix it first. Returns the notification ids."""
    ids = enqueue(conn, grid, category, "filed", case)
    if category.owner_first_h is not None:
        ids += enqueue(conn, grid, category, "owner_notice", case, owner_notice(category, case))
    return ids


def on_closed(
    conn: Connection, grid: GridConfig, category: Category | None, case: CaseRow
) -> list[str]:
    """A finished case (closed, or cancelled: the payload's status says which), so the
    department's system stops tracking it."""
    return enqueue(conn, grid, category, "closed", case, {"closed_at": case["closed_at"]})
