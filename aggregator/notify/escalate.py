"""Escalation: a case whose current stage is overdue gets its priority raised one level, its
escalation level counted up, an audit entry by "system" and an "escalated" notice to its
category's webhooks and the supervisors'. Once per stage: a later stage that runs late
escalates again. Safe with several processes sweeping at once (a conditional UPDATE decides
which one escalates)."""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine, select, update

from aggregator.auth import User
from aggregator.core.grid_config import GridConfig
from aggregator.db.models import CASES
from aggregator.grid.catalogue import PRIORITIES, Catalogue
from aggregator.notify.queue import enqueue
from aggregator.review import OPEN_STATUSES, audit

log = logging.getLogger(__name__)

#: Who the audit trail names for what the aggregator does by itself (no account has this
#: name's id 0; the role is only what the workflow would need for the change).
SYSTEM = User(0, "system", "supervisor")
#: Cases escalated in one transaction each; a sweep handles at most this many.
MAX_PER_SWEEP = 500


def raised(priority: str) -> str:
    """One priority level up (low -> normal -> high -> urgent), urgent stays urgent; an
    unknown priority stays as it is."""
    if priority not in PRIORITIES:
        return priority
    return PRIORITIES[min(PRIORITIES.index(priority) + 1, len(PRIORITIES) - 1)]


def escalate_overdue(engine: Engine, catalogue: Catalogue, grid: GridConfig, now: float) -> int:
    """Escalate every open case (drills too: their notices say drill) whose current stage
    was due before now and has not been escalated yet. Returns how many were."""
    with engine.connect() as conn:
        ids = conn.scalars(
            select(CASES.c.id)
            .where(
                CASES.c.status.in_(OPEN_STATUSES),
                CASES.c.stage_due_at < now,
                CASES.c.escalated_stage < CASES.c.stage_index,
            )
            .order_by(CASES.c.stage_due_at)
            .limit(MAX_PER_SWEEP)
        ).all()
    done = 0
    for case_id in ids:
        with engine.begin() as conn:
            done += _escalate(conn, catalogue, grid, case_id, now)
    return done


def _escalate(
    conn: Connection, catalogue: Catalogue, grid: GridConfig, case_id: int, now: float
) -> int:
    """Escalate one case if it still needs it (1), else 0: another process or a person got
    there first (its stage done, its priority changed) since the sweep looked."""
    row = conn.execute(select(CASES).where(CASES.c.id == case_id)).first()
    if row is None:
        return 0
    priority = raised(row.priority)
    # The conditions again, and the priority read: the UPDATE matches only while nobody
    # else changed the case, so two sweeps never escalate one stage twice.
    changed = conn.execute(
        update(CASES)
        .where(
            CASES.c.id == case_id,
            CASES.c.status.in_(OPEN_STATUSES),
            CASES.c.stage_due_at < now,
            CASES.c.escalated_stage < CASES.c.stage_index,
            CASES.c.stage_index == row.stage_index,
            CASES.c.priority == row.priority,
        )
        .values(
            priority=priority,
            escalation_level=CASES.c.escalation_level + 1,
            escalated_stage=row.stage_index,
            updated_at=now,
        )
    ).rowcount
    if changed != 1:
        return 0
    category = catalogue.by_code.get(row.category_code)  # None: a code since dropped
    stages = category.stages if category is not None else []
    stage = stages[row.stage_index].name if row.stage_index < len(stages) else ""
    detail = {
        "stage": stage,
        "stage_index": row.stage_index,
        "stage_due_at": row.stage_due_at,
        "overdue_s": round(now - row.stage_due_at, 1),
        "priority": {"from": row.priority, "to": priority},
        "escalation_level": row.escalation_level + 1,
    }
    audit(conn, SYSTEM, "escalate", "case", str(case_id), detail, f"stage {stage!r} is overdue")
    case = {
        **row._mapping,
        "priority": priority,
        "escalation_level": row.escalation_level + 1,
        "escalated_stage": row.stage_index,
        "updated_at": now,
    }
    extra = {
        "escalated_at": now,
        "overdue_s": detail["overdue_s"],
        "previous_priority": row.priority,
    }
    enqueue(conn, grid, category, "escalated", case, extra, now=now)
    log.info("escalated case %d: stage %r overdue, priority %s", case_id, stage, priority)
    return 1
