"""The evaluation scorecard (GB/T 30428.4 style): per department, grid cell or district, over
the last N ISO weeks (UTC, the current one included):

- cases: filed in the period (cancelled ones too: they were filed);
- closed: closed in the period (status closed; cancelled cases are left out of every rate);
- on_time_rate: of those, closed on or before their deadline;
- rework_rate: of those, sent back at least once (resolved -> in progress);
- first_time_pass_rate: of those, never sent back (so 1 - rework_rate);
- overdue_open: open now and past their deadline, whenever filed;
- trend: per ISO week, the cases closed in it and their on-time rate.

Drill cases never count. The rows are grouped in Python after one query bounded by the
period, so SQLite and PostgreSQL give the same figures."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, and_, or_, select

from aggregator.db.models import CASES
from aggregator.review import OPEN_STATUSES

GroupBy = Literal["department", "grid_cell", "district"]
GROUP_COLUMNS = {
    "department": CASES.c.department,
    "grid_cell": CASES.c.grid_cell,
    "district": CASES.c.district,
}
MAX_WEEKS = 104
#: Rates are rounded to this many decimals (a tenth of a percent is precise enough).
RATE_DIGITS = 4


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, RATE_DIGITS) if whole else None


def iso_week(ts: float) -> str:
    """e.g. 2025-W07 (ISO 8601 week, UTC)."""
    year, week, _ = datetime.fromtimestamp(ts, UTC).isocalendar()
    return f"{year}-W{week:02d}"


def week_starts(now: float, weeks: int) -> list[float]:
    """Monday 00:00 UTC of the last ``weeks`` ISO weeks, oldest first, the current one last."""
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = day - timedelta(days=day.weekday())
    return [(monday - timedelta(weeks=n)).timestamp() for n in range(weeks - 1, -1, -1)]


@dataclass(frozen=True)
class WeekScore:
    week: str
    closed: int
    on_time_rate: float | None


@dataclass
class Score:
    group: str
    cases: int = 0
    closed: int = 0
    on_time: int = 0
    reworked: int = 0
    overdue_open: int = 0
    #: per week start: [closed, on time]
    weekly: dict[float, list[int]] = field(default_factory=dict)

    @property
    def on_time_rate(self) -> float | None:
        return rate(self.on_time, self.closed)

    @property
    def rework_rate(self) -> float | None:
        return rate(self.reworked, self.closed)

    @property
    def first_time_pass_rate(self) -> float | None:
        return rate(self.closed - self.reworked, self.closed)

    @property
    def trend(self) -> list[WeekScore]:
        return [
            WeekScore(iso_week(start), closed, rate(on_time, closed))
            for start, (closed, on_time) in self.weekly.items()
        ]

    def summary(self) -> dict[str, Any]:
        """The figures without the trend."""
        return {
            "group": self.group,
            "cases": self.cases,
            "closed": self.closed,
            "on_time_rate": self.on_time_rate,
            "rework_rate": self.rework_rate,
            "overdue_open": self.overdue_open,
            "first_time_pass_rate": self.first_time_pass_rate,
        }


def _week_of(ts: float, starts: Sequence[float]) -> float | None:
    found = None
    for start in starts:
        if ts >= start:
            found = start
    return found


def _add(score: Score, row: Any, starts: Sequence[float], now: float) -> None:
    since = starts[0]
    if row.created_at >= since:
        score.cases += 1
    if row.status in OPEN_STATUSES and row.deadline_at < now:
        score.overdue_open += 1
    if row.status != "closed" or row.closed_at is None or row.closed_at < since:
        return
    on_time = row.closed_at <= row.deadline_at
    score.closed += 1
    score.on_time += on_time
    score.reworked += row.rework_count > 0
    week = _week_of(row.closed_at, starts)
    if week is not None:
        score.weekly[week][0] += 1
        score.weekly[week][1] += on_time


def scorecard(conn: Connection, by: GroupBy, weeks: int, now: float) -> list[Score]:
    """One Score per group (by name) with cases in the period or open and overdue now."""
    if by not in GROUP_COLUMNS:
        raise ValueError(f"by must be one of {', '.join(GROUP_COLUMNS)}, not {by!r}")
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValueError(f"weeks must be 1..{MAX_WEEKS}, not {weeks}")
    starts = week_starts(now, weeks)
    since = starts[0]
    c = CASES.c
    rows = conn.execute(
        select(
            GROUP_COLUMNS[by].label("group"),
            c.created_at,
            c.closed_at,
            c.deadline_at,
            c.status,
            c.rework_count,
        ).where(
            c.drill.is_(False),
            or_(
                c.created_at >= since,
                c.closed_at >= since,
                and_(c.status.in_(OPEN_STATUSES), c.deadline_at < now),
            ),
        )
    )
    scores: dict[str, Score] = {}
    for row in rows:
        score = scores.get(row.group)
        if score is None:
            score = scores[row.group] = Score(row.group, weekly={s: [0, 0] for s in starts})
        _add(score, row, starts, now)
    return [scores[g] for g in sorted(scores)]


def _cell(value: Any) -> Any:
    """A CSV field: empty for None, and text a spreadsheet would run as a formula (a name
    starting with = + - @) quoted with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(head: Sequence[str], lines: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head)
    writer.writerows([_cell(v) for v in line] for line in lines)
    return out.getvalue()


def scorecard_csv(by: str, scores: Iterable[Score], weeks: Sequence[str]) -> str:
    """One line per group: the figures, then closed and on-time rate per week."""
    head = [by, "cases", "closed", "on_time_rate", "rework_rate", "overdue_open"]
    head.append("first_time_pass_rate")
    for week in weeks:
        head += [f"closed {week}", f"on_time_rate {week}"]
    lines = []
    for s in scores:
        line: list[Any] = list(s.summary().values())
        for w in s.trend:
            line += [w.closed, w.on_time_rate]
        lines.append(line)
    return to_csv(head, lines)
