"""Time partitions of events (by started_ts) and event_messages (by ts) on PostgreSQL.

Migration 0008 makes both tables partitioned by RANGE with a DEFAULT partition that takes
whatever falls outside every range. Here the ranges are kept up: `ensure_partitions` creates
the current period and those ahead (run at ingest start and periodically), `drop_expired`
drops the periods older than the retention age: retention drops whole partitions instead of
deleting rows one by one, except that rows under legal hold (events confirmed or in an open
case, and their messages) are first moved into the DEFAULT partition, where they stay. The
owners of dropped events (aggregator/event_owners.py) go with them.

Both take a transaction-scoped advisory lock, so two processes may run them at once; each
table is maintained in its own transaction, taking locks on that table only, so that no
maintenance step can deadlock with an ingest batch (which locks messages, then events).
SQLite keeps plain tables: both are no-ops there.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, TextClause, bindparam, text

from aggregator.review import OPEN_STATUSES
from contract.errors import StreetwatchError

DAY_S = 86400.0
#: (table, partition key column) of every time-partitioned table.
PARTITIONED: tuple[tuple[str, str], ...] = (("events", "started_ts"), ("event_messages", "ts"))
#: pg_advisory_xact_lock key that serialises partition maintenance across processes.
LOCK_KEY = 0x5357_5041_5254  # "SWPART"
#: How long maintenance waits for a table lock (an ingest batch or a long query holds it)
#: before it fails and leaves the next run to try again, rather than stall the ingest queued
#: behind it.
LOCK_TIMEOUT = "10s"
_BOUND = re.compile(r"FROM \((.+)\) TO \((.+)\)")


@dataclass(frozen=True)
class Partition:
    """A range partition: rows with lo <= key < hi (seconds since the epoch)."""

    name: str
    lo: float
    hi: float


def partition_name(table: str, lo: float) -> str:
    """The partition of table starting at lo, named by its UTC start to the minute (periods
    are an hour at least, so names are unique)."""
    return f"{table}_p{time.strftime('%Y%m%d_%H%M', time.gmtime(lo))}"


def default_name(table: str) -> str:
    return f"{table}_default"


def is_partitioned(conn: Connection, table: str) -> bool:
    return bool(
        conn.execute(
            text(
                "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                "WHERE c.relname = :t AND c.relnamespace = current_schema()::regnamespace"
            ),
            {"t": table},
        ).first()
    )


def range_partitions(conn: Connection, table: str) -> list[Partition]:
    """table's range partitions (not its DEFAULT), by start."""
    rows = conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = CAST(:t AS regclass)"
        ),
        {"t": table},
    )
    parts = []
    for name, bound in rows:
        m = _BOUND.search(str(bound))
        if m is not None:  # DEFAULT has no range
            parts.append(Partition(str(name), _bound(m.group(1)), _bound(m.group(2))))
    return sorted(parts, key=lambda p: p.lo)


def _bound(value: str) -> float:
    v = value.strip("'")
    return {"MINVALUE": -math.inf, "MAXVALUE": math.inf}.get(v) or float(v)


def _gaps(lo: float, hi: float, taken: list[Partition]) -> list[tuple[float, float]]:
    """The parts of [lo, hi) that no partition covers."""
    gaps, at = [], lo
    for p in taken:
        if p.hi <= at or p.lo >= hi:
            continue
        if p.lo > at:
            gaps.append((at, p.lo))
        at = max(at, p.hi)
    if at < hi:
        gaps.append((at, hi))
    return gaps


def _begin_maintenance(conn: Connection, table: str) -> None:
    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    if not is_partitioned(conn, table):
        raise StreetwatchError(
            f"table {table} is not partitioned: migrate the database to head (0008) first"
        )


def _columns(conn: Connection, table: str) -> str:
    names = conn.execute(
        text(
            "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ),
        {"t": table},
    ).scalars()
    return ", ".join(f'"{n}"' for n in names)


def create_partition(conn: Connection, table: str, key: str, lo: float, hi: float) -> str:
    """Create table's partition [lo, hi), first taking out of the DEFAULT partition the rows
    that belong to it (PostgreSQL refuses the partition while they sit there) and putting
    them in once it exists. Returns its name."""
    name, default = partition_name(table, lo), default_name(table)
    in_range = f'"{key}" >= :lo AND "{key}" < :hi'
    bounds = {"lo": lo, "hi": hi}
    moving = conn.execute(
        text(f'SELECT 1 FROM "{default}" WHERE {in_range} LIMIT 1'), bounds
    ).first()
    if moving:
        cols = _columns(conn, table)
        conn.execute(
            text(f'CREATE TEMP TABLE _moving AS SELECT {cols} FROM "{default}" WHERE {in_range}'),
            bounds,
        )
        conn.execute(text(f'DELETE FROM "{default}" WHERE {in_range}'), bounds)
    conn.execute(
        text(f'CREATE TABLE "{name}" PARTITION OF "{table}" FOR VALUES FROM ({lo!r}) TO ({hi!r})')
    )
    if moving:
        conn.execute(text(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM _moving'))
        conn.execute(text("DROP TABLE _moving"))
    return name


def ensure_partitions(engine: Engine, now_s: float, period_days: float, ahead: int) -> list[str]:
    """Create, for each partitioned table, the partitions of the period holding now_s and of
    the `ahead` periods after it (periods are period_days long, aligned to multiples of it
    since the epoch), where no partition covers them yet. Idempotent; safe to run in several
    processes at once. Returns the names created; [] on SQLite."""
    if engine.dialect.name != "postgresql":
        return []
    if period_days * DAY_S < 3600:
        raise StreetwatchError(f"partition period {period_days} days is under an hour")
    period_s = period_days * DAY_S
    first = math.floor(now_s / period_s)
    created: list[str] = []
    for table, key in PARTITIONED:
        with engine.begin() as conn:
            _begin_maintenance(conn, table)
            for k in range(first, first + ahead + 1):
                taken = range_partitions(conn, table)
                for lo, hi in _gaps(k * period_s, (k + 1) * period_s, taken):
                    created.append(create_partition(conn, table, key, lo, hi))
    return created


def _held(table: str) -> str:
    """SQL: whether row r of table is under legal hold: its event is confirmed, or in a case
    that is still open (:open, see _sql). Never NULL, so that NOT of it is sound."""

    def event(e: str) -> str:
        return (
            f"({e}.review_status = 'confirmed' OR EXISTS "
            f"(SELECT 1 FROM cases c WHERE c.id = {e}.case_id AND c.status IN :open))"
        )

    if table == "events":
        return event("r")
    return f"r.event_id IN (SELECT e.event_id FROM events e WHERE {event('e')})"


def _sql(sql: str) -> TextClause:
    return text(sql).bindparams(bindparam("open", value=list(OPEN_STATUSES), expanding=True))


def drop_expired(engine: Engine, now_s: float, max_age_days: float) -> list[str]:
    """Drop every partition whose whole range is older than max_age_days, first moving its
    rows under legal hold into the DEFAULT partition; and delete from the DEFAULT partitions
    the rows that old and not held (nothing else ever ages them out). The dropped events'
    owners are deleted too. Returns the names of the partitions dropped; [] on SQLite."""
    if engine.dialect.name != "postgresql":
        return []
    cutoff = now_s - max_age_days * DAY_S
    dropped: list[str] = []
    # Messages first: whether they are held is read from their events, which then still exist.
    for table, key in reversed(PARTITIONED):
        held = _held(table)
        with engine.begin() as conn:
            _begin_maintenance(conn, table)
            cols = _columns(conn, table)
            for p in range_partitions(conn, table):
                if p.hi > cutoff:
                    continue
                conn.execute(text(f'ALTER TABLE "{table}" DETACH PARTITION "{p.name}"'))
                # Its range has no partition now: the held rows land in DEFAULT.
                keep = f'SELECT {cols} FROM "{p.name}" AS r WHERE {held}'
                conn.execute(_sql(f'INSERT INTO "{table}" ({cols}) {keep}'))
                if table == "events":
                    gone = f'SELECT r.event_id FROM "{p.name}" AS r WHERE NOT {held}'
                    conn.execute(_sql(f"DELETE FROM event_owners WHERE event_id IN ({gone})"))
                conn.execute(text(f'DROP TABLE "{p.name}"'))
                dropped.append(p.name)
            expired = f'r."{key}" < :cutoff AND NOT ({held})'
            gone = f'DELETE FROM "{default_name(table)}" AS r WHERE {expired} RETURNING event_id'
            if table == "events":  # their ids may be used again, by anyone
                gone = f"WITH gone AS ({gone}) DELETE FROM event_owners "
                gone += "WHERE event_id IN (SELECT event_id FROM gone)"
            conn.execute(_sql(gone), {"cutoff": cutoff})
    return dropped
