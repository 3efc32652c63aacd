"""Time partitions on PostgreSQL (issue 13): migration 0008 turns an existing database's events
and event_messages into partitioned tables with every row and index kept; partitions are
created ahead (rows that waited in DEFAULT move in) and dropped when expired, except the rows
under legal hold, which move to DEFAULT. SQLite keeps plain tables."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, func, select, text, update

from aggregator.api.events import list_events
from aggregator.db.engine import MIGRATIONS, make_engine, migrate
from aggregator.db.models import CASES, EVENT_OWNERS, EVENTS, MESSAGES
from aggregator.db.partitions import drop_expired, ensure_partitions, range_partitions
from aggregator.store import EventStore, Received
from contract import wire
from tests.deploy import database

DAY = 86400.0
WEEK = 7 * DAY
NOW = 1_800_000_000.0  # a fixed "now" (2027-01-15), so that period edges are the same each run


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[str]:
    with database("postgresql", tmp_path) as url:
        yield url


def _alembic(url: str, action: str, rev: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    getattr(command, action)(cfg, rev)


def _wire(n: int, started: float, phase: str = "start", ts: float | None = None) -> wire.WireEvent:
    return wire.WireEvent(
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"ev/{n}")),
        type=("crowding", "litter")[n % 2],
        phase=phase,  # type: ignore[arg-type]
        camera=f"cam-{n % 3}",
        zone="z",
        rule="r",
        ts=started if ts is None else ts,
        started_ts=started,
        value=float(n),
        unit="persons",
        severity="low",
        boxes=(),
        labels=(),
        stage=None,
        peak=None,
        created_wall=0.0,
    )


def _ingest(engine: Engine, events: list[wire.WireEvent], first_seq: int = 1) -> None:
    EventStore(engine).ingest([Received("box", first_seq + i, ev) for i, ev in enumerate(events)])


#: The events columns of migration 0007 (later ones, such as 0009's mode, come after it).
_COLUMNS_0007 = [c for c in EVENTS.c if c.name not in ("mode", "drill")]


def _dump(engine: Engine) -> tuple[list[Any], list[Any]]:
    with engine.connect() as conn:
        events = conn.execute(select(*_COLUMNS_0007).order_by(EVENTS.c.event_id)).all()
        msgs = conn.execute(select(MESSAGES).order_by(MESSAGES.c.id)).all()
    return [tuple(r) for r in events], [tuple(r) for r in msgs]


def _where(engine: Engine, table: str, key: str, value: float) -> str:
    """The partition holding the rows of table with key = value."""
    with engine.connect() as conn:
        return str(
            conn.execute(
                text(f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE {key} = :v"),
                {"v": value},
            ).scalar_one()
        )


def _indexes(engine: Engine, table: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT indexname FROM pg_indexes WHERE tablename = :t"), {"t": table}
        )
        return {str(r[0]) for r in rows}


def _partitioned(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT partrelid::regclass::text FROM pg_partitioned_table"))
        return {str(r[0]) for r in rows}


def test_upgrade_keeps_every_row_and_index(pg: str) -> None:
    _alembic(pg, "upgrade", "0007")
    engine = make_engine(pg)
    # 0007's plain tables, filled the way the old store filled them: 5 weeks of incidents,
    # one from 1970 and one before the epoch (which no partition is made for: DEFAULT).
    starts = [NOW - i * 0.7 * DAY for i in range(50)] + [1000.0, -5.0]
    with engine.begin() as conn:
        for n, st in enumerate(starts):
            row: dict[str, Any] = dict.fromkeys(c.name for c in _COLUMNS_0007)
            row.update(event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"old/{n}")), edge_id="box")
            row.update(
                camera=f"cam-{n % 3}", zone="z", rule="r", type=("crowding", "litter")[n % 2]
            )
            row.update(status="closed", started_ts=st, last_ts=st + 5 * DAY, value=1.0)
            row.update(unit="u", severity="low", boxes=[], labels=[], has_start=True, has_end=True)
            row.update(n_messages=2, received_at=st, updated_at=st, review_status="new")
            conn.execute(EVENTS.insert().values(row))
            for k, (phase, ts) in enumerate((("start", st), ("end", st + 5 * DAY))):
                conn.execute(
                    MESSAGES.insert().values(
                        edge_id="box", seq=2 * n + k + 1, event_id=row["event_id"], phase=phase,
                        ts=ts, value=1.0, payload={"n": n}, created_wall=0.0, committed_at=0.0,
                    )
                )  # fmt: skip
    before = _dump(engine)
    indexes = {t: _indexes(engine, t) for t in ("events", "event_messages")}

    _alembic(pg, "upgrade", "head")
    assert _dump(engine) == before
    with engine.connect() as conn:  # every event's owner and key, for the ingest
        owners = conn.execute(select(EVENT_OWNERS).order_by(EVENT_OWNERS.c.event_id)).all()
    assert [tuple(o) for o in owners] == [(e[0], e[1], e[7]) for e in before[0]]
    assert _partitioned(engine) == {"events", "event_messages"}
    assert {t: _indexes(engine, t) for t in indexes} == indexes
    with engine.connect() as conn:
        weeks = range_partitions(conn, "events")
        assert len(weeks) >= 7  # ~5 weeks of incidents and 1970
        assert all(p.hi - p.lo == WEEK for p in weeks)
    assert _where(engine, "events", "started_ts", -5.0) == "events_default"
    assert _where(engine, "events", "started_ts", starts[3]) != "events_default"
    assert _where(engine, "event_messages", "ts", 1000.0) != "event_messages_default"

    # The review queue's query, filters and order as the API runs them.
    services = SimpleNamespace(engine=engine)
    page = list_events(services, type="litter", limit=5)  # type: ignore[arg-type]
    want = sorted((st for n, st in enumerate(starts) if n % 2), reverse=True)[:5]
    assert [e.started_ts for e in page.items] == want
    assert page.total == 26

    # The store merges into migrated rows, and message ids go on from the old ones.
    old_id, old_started = before[0][0][0], before[0][0][7]
    first = replace(_wire(0, old_started + 1, "update", NOW), event_id=old_id)
    _ingest(engine, [first], 1000)
    with engine.connect() as conn:
        merged = conn.execute(select(EVENTS).where(EVENTS.c.event_id == first.event_id)).one()
        assert (merged.n_messages, merged.started_ts) == (3, old_started)  # the stored one
        assert conn.execute(select(func.count()).select_from(EVENTS)).scalar_one() == len(starts)
        assert conn.execute(select(func.max(MESSAGES.c.id))).scalar_one() == 2 * len(starts) + 1

    _alembic(pg, "downgrade", "0007")
    assert _partitioned(engine) == set()
    assert {t: _indexes(engine, t) for t in indexes} == indexes
    assert len(_dump(engine)[1]) == len(before[1]) + 1
    engine.dispose()


def test_partitions_ahead_take_in_rows_waiting_in_default(pg: str) -> None:
    migrate(pg)
    engine = make_engine(pg)
    # No partition yet: this week's and next week's incidents wait in DEFAULT.
    evs = [_wire(i, NOW + i * DAY) for i in range(10)]
    _ingest(engine, evs)
    assert _where(engine, "events", "started_ts", evs[9].started_ts) == "events_default"

    created = ensure_partitions(engine, NOW, 7, 2)
    assert len(set(created)) == len(created) == 6  # 3 periods, 2 tables
    for ev in evs:
        assert _where(engine, "events", "started_ts", ev.started_ts) != "events_default"
        assert _where(engine, "event_messages", "ts", ev.ts) != "event_messages_default"
    assert len(_dump(engine)[0]) == 10
    assert ensure_partitions(engine, NOW, 7, 2) == []  # idempotent
    assert ensure_partitions(engine, NOW, 1, 5) == []  # another period fills gaps only

    # Two processes at once (two engines, two threads): each period made once, no error.
    later = NOW + 10 * WEEK
    engines = [make_engine(pg) for _ in range(2)]
    made: list[list[str]] = []
    errors: list[BaseException] = []

    def run(e: Engine) -> None:
        try:
            made.append(ensure_partitions(e, later, 1, 3))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(len(m) for m in made) == [0, 8]
    with engine.connect() as conn:
        days = [p for p in range_partitions(conn, "events") if p.lo >= later - DAY]
    assert [p.hi - p.lo for p in days] == [DAY] * 4
    for e in engines:
        e.dispose()
    engine.dispose()


def _case(engine: Engine, status: str) -> int:
    with engine.begin() as conn:
        values = {"camera": "cam-0", "zone": "z", "type": "crowding", "category": "c"}
        values.update(department="d", priority="normal", status=status)
        times = {"deadline_at": 0.0, "created_at": 0.0, "updated_at": 0.0}
        key = conn.execute(CASES.insert().values(**values, **times)).inserted_primary_key
        assert key is not None
        return int(key[0])


def test_expired_partitions_are_dropped_keeping_held_events(pg: str) -> None:
    migrate(pg)
    engine = make_engine(pg)
    old = NOW - 10 * WEEK
    ensure_partitions(engine, old, 7, 0)
    ensure_partitions(engine, NOW, 7, 1)
    # Old incidents (messages up to a day later), one each: confirmed, in an open case, in a
    # closed case, new, dismissed; one from before the epoch, in DEFAULT, confirmed, and one
    # there not held; one current.
    evs = [_wire(i, old + i * 3600) for i in range(5)] + [_wire(5, -5.0), _wire(6, -6.0)]
    evs.append(_wire(7, NOW))
    ends = [replace(ev, phase="end", ts=ev.ts + DAY) for ev in evs]
    _ingest(engine, evs + ends)
    ids = [ev.event_id for ev in evs]
    reviews: dict[int, dict[str, Any]] = {
        0: {"review_status": "confirmed"},
        1: {"case_id": _case(engine, "in_progress")},
        2: {"case_id": _case(engine, "closed")},
        4: {"review_status": "dismissed"},
        5: {"review_status": "confirmed"},
    }
    with engine.begin() as conn:
        for i, values in reviews.items():
            conn.execute(update(EVENTS).where(EVENTS.c.event_id == ids[i]).values(**values))

    dropped = drop_expired(engine, NOW, 30)
    assert len(dropped) == 2  # the old period of each table
    suffix = time.strftime("_p%Y%m%d_%H%M", time.gmtime(old // WEEK * WEEK))
    assert sorted(dropped) == [f"event_messages{suffix}", f"events{suffix}"]
    with engine.connect() as conn:
        kept = set(conn.execute(select(EVENTS.c.event_id)).scalars())
        counts = select(MESSAGES.c.event_id, func.count()).group_by(MESSAGES.c.event_id)
        per_event = {str(k): int(n) for k, n in conn.execute(counts)}
    assert kept == {ids[0], ids[1], ids[5], ids[7]}
    with engine.connect() as conn:
        assert set(conn.execute(select(EVENT_OWNERS.c.event_id)).scalars()) == kept
    assert per_event == {ids[0]: 2, ids[1]: 2, ids[5]: 2, ids[7]: 2}
    assert _where(engine, "events", "started_ts", evs[0].started_ts) == "events_default"
    assert _where(engine, "event_messages", "ts", evs[1].ts) == "event_messages_default"
    assert drop_expired(engine, NOW, 30) == []
    engine.dispose()


def test_sqlite_keeps_plain_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    assert ensure_partitions(engine, NOW, 7, 2) == []
    assert drop_expired(engine, NOW, 1) == []
    _ingest(engine, [_wire(1, NOW), _wire(1, NOW, "end", NOW + 5)])
    with engine.connect() as conn:
        assert conn.execute(select(EVENTS.c.n_messages)).scalar_one() == 2
    engine.dispose()
