"""Open supervision: the figures anyone may see, without a login. Counts, rates and medians
only: no names, no free text, no images, no case ids. Drill cases never count.

Rows are per (district, grid cell, category, month): the month (UTC) the cases were filed,
and of those cases how many are closed, the share closed on or before the deadline, the
median hours from filing to closing and the share sent back at least once (rework).
Cancelled cases count as filed and are left out of every rate. Totals per district and per
category cover the same months; the scorecard (aggregator/grid/scorecard.py) by department
and district covers the last weeks, without the trend.

Small counts are suppressed (k-anonymity, k = grid.public.min_count): a row, total or
scorecard line is published only when every count it shows is 0 or at least k; any other is
left out whole, and ``suppressed`` says how many were. Totals are computed from every case,
so a total may be larger than the sum of its published rows."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from aggregator.db.models import CASES
from aggregator.grid.catalogue import Catalogue
from aggregator.grid.scorecard import GroupBy, rate, scorecard, to_csv

MAX_MONTHS = 36
#: Medians are rounded to this many decimals of an hour.
HOUR_DIGITS = 2
ROW_FIELDS = ("district", "grid_cell", "category_code", "category", "month")
FIGURE_FIELDS = ("filed", "closed", "on_time_rate", "median_hours_to_close", "rework_rate")


def month_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m")


def month_start(now: float, months: int) -> float:
    """00:00 UTC on the first day of the month ``months - 1`` before now's (1: this month)."""
    day = datetime.fromtimestamp(now, UTC)
    index = day.year * 12 + day.month - 1 - (months - 1)
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC).timestamp()


def publishable(counts: Iterable[int], k: int) -> bool:
    """Every count is 0 or at least k (a count of 1..k-1 could single out a report)."""
    return all(n == 0 or n >= k for n in counts)


@dataclass
class Tally:
    """The figures of a set of cases."""

    filed: int = 0
    closed: int = 0
    on_time: int = 0
    reworked: int = 0
    hours: list[float] = field(default_factory=list)

    def add(self, row: Any) -> None:
        self.filed += 1
        if row.status != "closed" or row.closed_at is None:
            return
        self.closed += 1
        self.on_time += row.closed_at <= row.deadline_at
        self.reworked += row.rework_count > 0
        self.hours.append((row.closed_at - row.created_at) / 3600)

    def counts(self) -> tuple[int, int]:
        return self.filed, self.closed

    def figures(self) -> dict[str, Any]:
        median = statistics.median(self.hours) if self.hours else None
        return {
            "filed": self.filed,
            "closed": self.closed,
            "on_time_rate": rate(self.on_time, self.closed),
            "median_hours_to_close": None if median is None else round(median, HOUR_DIGITS),
            "rework_rate": rate(self.reworked, self.closed),
        }


def _tallies(
    rows: Iterable[Any], key: Callable[[Any], tuple[str, ...]]
) -> dict[tuple[str, ...], Tally]:
    tallies: dict[tuple[str, ...], Tally] = {}
    for row in rows:
        tallies.setdefault(key(row), Tally()).add(row)
    return tallies


def _published(
    tallies: dict[tuple[str, ...], Tally], names: tuple[str, ...], k: int
) -> tuple[list[dict[str, Any]], int]:
    """The publishable tallies as rows (sorted by key) and how many were suppressed."""
    out = [
        {**dict(zip(names, key, strict=True)), **t.figures()}
        for key, t in sorted(tallies.items())
        if publishable(t.counts(), k)
    ]
    return out, len(tallies) - len(out)


def _scorecard(
    conn: Connection, by: GroupBy, weeks: int, now: float, k: int
) -> tuple[list[dict[str, Any]], int]:
    scores = scorecard(conn, by, weeks, now)
    out = [s.summary() for s in scores if publishable((s.cases, s.closed, s.overdue_open), k)]
    return out, len(scores) - len(out)


def public_figures(
    conn: Connection, catalogue: Catalogue, now: float, months: int, weeks: int, k: int
) -> dict[str, Any]:
    """Everything the public page and feed show (see the module docstring)."""
    if not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be 1..{MAX_MONTHS}, not {months}")
    since = month_start(now, months)
    c = CASES.c
    rows = conn.execute(
        select(
            c.district,
            c.grid_cell,
            c.category_code,
            c.created_at,
            c.closed_at,
            c.deadline_at,
            c.status,
            c.rework_count,
        ).where(c.drill.is_(False), c.created_at >= since)
    ).all()

    def title(code: str) -> str:
        category = catalogue.by_code.get(code)
        return category.title if category else code

    cells, cut_rows = _published(
        _tallies(
            rows,
            lambda r: (
                r.district,
                r.grid_cell,
                r.category_code,
                title(r.category_code),
                month_of(r.created_at),
            ),
        ),
        ROW_FIELDS,
        k,
    )
    # Month first: the feed reads as a time series.
    cells.sort(key=lambda r: (r["month"], r["district"], r["grid_cell"], r["category_code"]))
    districts, cut_districts = _published(_tallies(rows, lambda r: (r.district,)), ("district",), k)
    categories, cut_categories = _published(
        _tallies(rows, lambda r: (r.category_code, title(r.category_code))),
        ("category_code", "category"),
        k,
    )
    departments, cut_departments = _scorecard(conn, "department", weeks, now, k)
    by_district, cut_by_district = _scorecard(conn, "district", weeks, now, k)
    return {
        "generated_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "min_count": k,
        "since": month_of(since),
        "months": months,
        "weeks": weeks,
        "rows": cells,
        "districts": districts,
        "categories": categories,
        "scorecard": {"by_department": departments, "by_district": by_district},
        "suppressed": {
            "rows": cut_rows,
            "districts": cut_districts,
            "categories": cut_categories,
            "by_department": cut_departments,
            "by_district": cut_by_district,
        },
    }


def figures_csv(figures: dict[str, Any]) -> str:
    """The rows of the figures as CSV (totals and scorecard are in the JSON)."""
    head = ROW_FIELDS + FIGURE_FIELDS
    return to_csv(head, ([row[f] for f in head] for row in figures["rows"]))
