"""The review queue at 10,000,000 events in PostgreSQL, before and after time partitioning.

In one run, on one database (dropped at the end):
  1. schema 0007 (plain events table) filled with --events incidents over 90 days by
     generate_series in SQL (keys and indexes built after the rows, as a bulk load does);
  2. the queue's first filtered page, p50/p95: the API's own query code (count capped at
     10,000, the page of 50, evidence status) run in this process, and its two queries bare:
     the page and the capped count. VACUUM ANALYZE first, as autovacuum leaves old rows;
  3. migration 0008 turns the table into weekly partitions (its duration is printed);
  4. the same again on the partitioned table, plus the real HTTP API of a running
     `aggregator serve` (login, filters, JSON): the figure the goal (p95 <= 50 ms) is about.
The unpartitioned figures of step 2 are the in-run baseline.

    .venv/bin/python bench/bench_review_queue.py [--events 10000000] [--requests 300]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, func, select

from aggregator.api.events import COUNT_CAP, list_events
from aggregator.db.engine import MIGRATIONS, make_engine
from aggregator.db.models import EVENTS
from tests.deploy import Deployment, database

TYPES = ["crowding", "illegal_parking", "litter", "nonmotor_parking", "street_vending"]
CAMERAS = [f"cam-{i:03d}" for i in range(60)]
CHUNK = 1_000_000
DAYS = 90
# One incident: closed, 60% new / 25% confirmed / 15% dismissed, 80% with a clip.
ROWS = f"""
INSERT INTO events (event_id, edge_id, camera, zone, rule, type, status, started_ts, last_ts,
    ended_ts, value, peak, unit, severity, stage, boxes, labels, has_start, has_end, n_messages,
    received_at, updated_at, clip_id, snapshot_id, review_status)
SELECT md5(i::text)::uuid::text, 'box-1', 'cam-' || lpad((i %% 60)::text, 3, '0'),
    (ARRAY['north', 'south', 'east', 'west'])[1 + (i / 60) %% 4], 'r',
    (ARRAY{TYPES})[1 + (i / 7) %% 5], 'closed', t, t + 30, t + 30, 5.0, NULL, 'persons',
    (ARRAY['low', 'medium', 'high'])[1 + (i / 3) %% 3], NULL, '[]', '[]', true, true, 3, t, t,
    CASE WHEN c < 0.8 THEN md5('c' || i)::uuid::text END,
    CASE WHEN c < 0.8 THEN md5('s' || i)::uuid::text END,
    CASE WHEN r < 0.6 THEN 'new' WHEN r < 0.85 THEN 'confirmed' ELSE 'dismissed' END
FROM (SELECT i, %(t0)s + random() * {DAYS * 86400} AS t, random() AS r, random() AS c
      FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i) AS s
"""


def _alembic(url: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, revision)


def generate(pg_url: str, n: int) -> None:
    """n events over the last 90 days into a migrated database as it is (partitioned or
    not; its keys and indexes kept), with their owners where the schema has them. Other
    benchmarks seed their databases with this."""
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT setseed(0.13)")
        for lo in range(1, n + 1, CHUNK):
            hi = min(n, lo + CHUNK - 1)
            conn.execute(ROWS, {"t0": time.time() - DAYS * 86400, "lo": lo, "hi": hi})
        if conn.execute("SELECT to_regclass('event_owners')").fetchone() != (None,):
            conn.execute(
                "INSERT INTO event_owners SELECT event_id, edge_id, started_ts FROM events "
                "ON CONFLICT DO NOTHING"
            )
        conn.commit()
    vacuum(dsn)


def load(dsn: str, n: int) -> None:
    """n events into the plain table, the rows first, then its key and indexes."""
    t0 = time.time() - DAYS * 86400
    with psycopg.connect(dsn) as conn:
        defs = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events' "
            "AND indexname <> 'events_pkey'"
        ).fetchall()
        for name, _ in defs:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("ALTER TABLE events DROP CONSTRAINT events_pkey")
        conn.execute("SELECT setseed(0.13)")
        for lo in range(1, n + 1, CHUNK):
            conn.execute(ROWS, {"t0": t0, "lo": lo, "hi": min(n, lo + CHUNK - 1)})
            conn.commit()
            print(f"  {min(n, lo + CHUNK - 1)} events loaded", flush=True)
        conn.execute("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (event_id)")
        for _, sql in defs:
            conn.execute(sql)
        conn.commit()
    vacuum(dsn)


def vacuum(dsn: str) -> None:
    """As autovacuum leaves a table whose rows are weeks old: statistics and visibility map."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE events")


def filters(rng: random.Random) -> list[Callable[[], dict[str, Any]]]:
    return [
        lambda: {"status": "new"},
        lambda: {"status": "new", "type": rng.choice(TYPES)},
        lambda: {"camera": rng.choice(CAMERAS)},
        lambda: {"type": rng.choice(TYPES), "has_clip": True},
        lambda: {"status": "new", "severity": "high"},
    ]


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def measure(engine: Engine, requests: int, client: Any = None) -> dict[str, list[float]]:
    """ms per first page: the API's query code in this process, the bare page query, and
    (with a client) the HTTP API; the same random filters for each."""
    rng = random.Random(11)
    pick = filters(rng)
    services = SimpleNamespace(engine=engine)
    out: dict[str, list[float]] = {"code": [], "query": [], "count": [], "http": []}
    for _ in range(requests):
        params = rng.choice(pick)()
        out["code"].append(timed(lambda: list_events(services, limit=50, **params)))  # type: ignore[arg-type]  # noqa: B023
        conds = [
            EVENTS.c["review_status" if k == "status" else k] == v
            for k, v in params.items()
            if k != "has_clip"
        ]
        if params.get("has_clip"):
            conds.append(EVENTS.c.clip_id.is_not(None))
        page = select(EVENTS).where(*conds).order_by(EVENTS.c.started_ts.desc()).limit(50)
        capped = select(EVENTS.c.event_id).where(*conds).limit(COUNT_CAP + 1).subquery()
        count = select(func.count()).select_from(capped)
        with engine.connect() as conn:
            out["query"].append(timed(lambda: conn.execute(page).all()))  # noqa: B023
            out["count"].append(timed(lambda: conn.execute(count).scalar_one()))  # noqa: B023
        if client is not None:
            http = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
            t = time.perf_counter()
            r = client.get("/api/v1/events", params={**http, "limit": 50})
            out["http"].append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text
    return out


def q(xs: list[float]) -> tuple[float, float]:
    return statistics.median(xs), statistics.quantiles(xs, n=20)[18]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, database("postgresql", Path(tmp)) as url:
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        _alembic(url, "0007")
        t = time.perf_counter()
        load(dsn, args.events)
        print(f"loaded {args.events} events in {time.perf_counter() - t:.0f} s", flush=True)
        engine = make_engine(url)
        results["plain"] = measure(engine, args.requests)
        engine.dispose()
        t = time.perf_counter()
        _alembic(url, "head")
        print(f"migration 0008 (partitions) took {time.perf_counter() - t:.0f} s", flush=True)
        vacuum(dsn)
        with psycopg.connect(dsn) as conn:
            parts = conn.execute(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
            ).fetchone()
        print(f"events partitions (with DEFAULT): {parts[0] if parts else '?'}")
        engine = make_engine(url)
        d = Deployment(Path(tmp), url)
        try:
            d.start_aggregator()
            results["partitioned"] = measure(engine, args.requests, d.client())
        finally:
            d.stop_all()
            engine.dispose()

    print(f"\nfirst page of 50, one filter, {args.requests} requests, {args.events} events:")
    print(f"{'table':<13}{'what':<40}{'p50 ms':>8}{'p95 ms':>8}")
    names = {
        "http": "HTTP API (aggregator serve)",
        "code": "API query code (count, page, evidence)",
        "query": "bare page query",
        "count": "bare capped count (10,001)",
    }
    for table, res in results.items():
        for key, name in names.items():
            if res[key]:
                p50, p95 = q(res[key])
                print(f"{table:<13}{name:<40}{p50:>8.1f}{p95:>8.1f}")
    ratio = q(results["partitioned"]["code"])[1] / q(results["plain"]["code"])[1]
    print(f"partitioned / plain p95 of the API query code: {ratio:.2f}")


if __name__ == "__main__":
    main()
