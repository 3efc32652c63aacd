"""Which evidence retention may remove: the legal hold, and the order of eviction."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from aggregator.db.grid_models import VERIFICATIONS
from aggregator.db.models import CASES, EVENTS, MEDIA
from aggregator.review import OPEN_STATUSES


def held() -> ColumnElement[bool]:
    """The legal hold, for a query over MEDIA outer-joined to EVENTS: the evidence of a
    confirmed event, of an event in a case that is still open, or the photo of an open
    citizen report or a verification snapshot of an open case."""
    in_open_case = (
        select(CASES.c.id)
        .where(CASES.c.id == EVENTS.c.case_id, CASES.c.status.in_(OPEN_STATUSES))
        .exists()
    )
    # A citizen's photo is the evidence of their report while its case is open.
    citizen_photo = (
        select(CASES.c.id)
        .where(CASES.c.photo_id == MEDIA.c.media_id, CASES.c.status.in_(OPEN_STATUSES))
        .exists()
    )
    # So is a verification's snapshot: what the camera showed before the case was closed.
    verify_snapshot = (
        select(VERIFICATIONS.c.id)
        .join(CASES, CASES.c.id == VERIFICATIONS.c.case_id)
        .where(VERIFICATIONS.c.snapshot_id == MEDIA.c.media_id, CASES.c.status.in_(OPEN_STATUSES))
        .exists()
    )
    return or_(EVENTS.c.review_status == "confirmed", in_open_case, citizen_photo, verify_snapshot)


WITH_EVENTS = MEDIA.join(EVENTS, EVENTS.c.event_id == MEDIA.c.event_id, isouter=True)


def choose_victims(
    candidates: Sequence[Any],
    by_edge: dict[str, int],
    excess: int,
    too_old: float,
    too_old_by_mode: Mapping[str, float] | None = None,
) -> tuple[list[Any], int]:
    """Of the unheld rows (oldest first), those to delete, and the bytes still over the
    limit after: every row received before too_old (before too_old_by_mode[its event's mode]
    for modes that keep evidence longer), then while over the limit dismissed ones, then the
    oldest of whichever edge holds the most."""
    by_mode = too_old_by_mode or {}
    victims: list[Any] = []
    per_edge: dict[str, deque[Any]] = {}

    def take(row: Any) -> None:
        nonlocal excess
        victims.append(row)
        by_edge[row.edge_id] -= row.size
        excess -= row.size

    for row in candidates:
        expired = row.received_at < by_mode.get(getattr(row, "mode", None) or "", too_old)
        if expired or (row.dismissed and excess > 0):
            take(row)
        else:
            per_edge.setdefault(row.edge_id, deque()).append(row)
    heap = [(-by_edge[e], e) for e in per_edge]
    heapq.heapify(heap)
    while excess > 0 and heap:
        _, edge = heapq.heappop(heap)
        take(per_edge[edge].popleft())
        if per_edge[edge]:
            heapq.heappush(heap, (-by_edge[edge], edge))
    return victims, excess
