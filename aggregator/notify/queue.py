"""The notification queue (a transactional outbox): a notice is one NOTIFICATIONS row per
webhook that should get it, written in the same transaction as the case change it tells of,
so it exists exactly when that change committed. aggregator/notify/deliver.py sends them."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from aggregator.core.grid_config import NOTIFICATION_KINDS, GridConfig
from aggregator.db.grid_models import NOTIFICATIONS
from aggregator.grid.catalogue import Category

log = logging.getLogger(__name__)

#: A CASES row as SQLAlchemy gives it (``row._mapping``, keyed by column too) or a dict.
CaseRow = Mapping[Any, Any]


def recipients(grid: GridConfig, category: Category | None, kind: str) -> list[str]:
    """The webhooks a notice of kind about a case of category goes to: the category's that
    subscribe to kind, and for escalations the supervisors' too; each once, in order."""
    names = list(category.webhooks) if category is not None else []
    if kind == "escalated":
        names += grid.supervisor_webhooks
    out: list[str] = []
    for name in names:
        hook = grid.webhooks.get(name)
        if hook is None:
            # Services.check_webhooks refuses such a config at start; a catalogue swapped
            # under a running process is the only way here.
            log.warning("webhook %r is not in grid.webhooks: its %s notice is not sent", name, kind)
            continue
        if kind in hook.kinds and name not in out:
            out.append(name)
    return out


def payload(
    notification_id: str,
    kind: str,
    category: Category | None,
    case: CaseRow,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a receiver is told: the case's identity, place, stage and state, picked field by
    field, so a citizen's description or photo never leaves (they are not public)."""
    stage_index = int(case["stage_index"])
    stages = category.stages if category is not None else []
    return {
        "notification_id": notification_id,
        "kind": kind,
        "case_id": case["id"],
        "category_code": case["category_code"],
        "category_title": category.title if category is not None else case["category"],
        "department": case["department"],
        "grid_cell": case["grid_cell"],
        "district": case["district"],
        "stage": stages[stage_index].name if 0 <= stage_index < len(stages) else None,
        "stage_index": stage_index,
        "stage_due_at": case["stage_due_at"],
        "deadline_at": case["deadline_at"],
        "priority": case["priority"],
        "status": case["status"],
        "source": case["source"],
        "created_at": case["created_at"],
        "escalation_level": case["escalation_level"],
        "drill": bool(case["drill"]),
        **(extra or {}),
    }


def enqueue(
    conn: Connection,
    grid: GridConfig,
    category: Category | None,
    kind: str,
    case: CaseRow,
    extra: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> list[str]:
    """Queue a notice of kind about case (a CASES row mapping) for every webhook that
    should get it, inside the caller's transaction. Returns the notification ids."""
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"notification kind {kind!r}: one of {', '.join(NOTIFICATION_KINDS)}")
    at = time.time() if now is None else now
    ids = []
    for webhook in recipients(grid, category, kind):
        notification_id = str(uuid.uuid4())
        conn.execute(
            NOTIFICATIONS.insert().values(
                notification_id=notification_id,
                webhook=webhook,
                kind=kind,
                case_id=case["id"],
                payload=payload(notification_id, kind, category, case, extra),
                created_at=at,
                attempts=0,
                next_attempt_at=at,
                delivered_at=None,
                last_error=None,
                leased_by=None,
                lease_until=None,
            )
        )
        ids.append(notification_id)
    return ids
