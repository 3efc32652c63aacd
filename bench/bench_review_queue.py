"""The review queue over 1,000,000 events in PostgreSQL: p50/p95 of listing the first page
with a filter, through the real HTTP API of a running aggregator, against the same query
run straight in the database (the baseline) in the same run.

    .venv/bin/python bench/bench_review_queue.py [--events 1000000] [--requests 300]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from sqlalchemy import create_engine, select

from aggregator.db.engine import migrate
from aggregator.db.models import EVENTS
from tests.deploy import Deployment, database

TYPES = ["crowding", "illegal_parking", "litter", "nonmotor_parking", "street_vending"]
CAMERAS = [f"cam-{i:03d}" for i in range(60)]
COLUMNS = (
    "event_id, edge_id, camera, zone, rule, type, status, started_ts, last_ts, ended_ts, value,"
    " peak, unit, severity, stage, boxes, labels, has_start, has_end, n_messages, received_at,"
    " updated_at, clip_id, snapshot_id, review_status"
)


def generate(pg_url: str, n: int) -> None:
    """Bulk-load n events with COPY: 90 days, 60 cameras, realistic status mix."""
    rng = random.Random(7)
    t0 = time.time() - 90 * 86400
    dsn = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY events ({COLUMNS}) FROM STDIN") as copy:
            for i in range(n):
                ts = t0 + rng.random() * 90 * 86400
                status = rng.choices(["new", "confirmed", "dismissed"], [0.6, 0.25, 0.15])[0]
                clip = str(uuid.UUID(int=rng.getrandbits(128))) if rng.random() < 0.8 else None
                copy.write_row(
                    (
                        str(uuid.UUID(int=rng.getrandbits(128))),
                        "box-1",
                        rng.choice(CAMERAS),
                        rng.choice(["north", "south", "east", "west"]),
                        "r",
                        rng.choice(TYPES),
                        "closed",
                        ts,
                        ts + 30,
                        ts + 30,
                        5.0,
                        None,
                        "persons",
                        rng.choice(["low", "medium", "high"]),
                        None,
                        "[]",
                        "[]",
                        True,
                        True,
                        3,
                        ts,
                        ts,
                        clip,
                        clip,
                        status,
                    )
                )
                if i and i % 200_000 == 0:
                    print(f"  {i} events loaded", flush=True)
        conn.commit()
        cur.execute("ANALYZE events")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=300)
    args = ap.parse_args()
    rng = random.Random(11)
    filters = [
        lambda: {"status": "new"},
        lambda: {"status": "new", "type": rng.choice(TYPES)},
        lambda: {"camera": rng.choice(CAMERAS)},
        lambda: {"type": rng.choice(TYPES), "has_clip": "true"},
        lambda: {"status": "new", "severity": "high"},
    ]
    with tempfile.TemporaryDirectory() as tmp, database("postgresql", Path(tmp)) as url:
        migrate(url)
        t = time.perf_counter()
        generate(url, args.events)
        print(f"loaded {args.events} events in {time.perf_counter() - t:.0f} s")
        d = Deployment(Path(tmp), url)
        try:
            d.start_aggregator()
            client = d.client()
            engine = create_engine(url)
            api_ms, db_ms = [], []
            for _ in range(args.requests):
                params = rng.choice(filters)()
                t = time.perf_counter()
                r = client.get("/api/v1/events", params={**params, "limit": 50})
                api_ms.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
                conds = [
                    EVENTS.c["review_status" if k == "status" else k] == v
                    for k, v in params.items()
                    if k != "has_clip"
                ]
                t = time.perf_counter()
                with engine.connect() as conn:
                    conn.execute(
                        select(EVENTS).where(*conds).order_by(EVENTS.c.started_ts.desc()).limit(50)
                    ).all()
                db_ms.append((time.perf_counter() - t) * 1000)
            engine.dispose()
        finally:
            d.stop_all()

    def q(xs: list[float]) -> tuple[float, float]:
        return statistics.median(xs), statistics.quantiles(xs, n=20)[18]

    (a50, a95), (b50, b95) = q(api_ms), q(db_ms)
    print(f"{'first page, 50 rows, one filter':<34}{'p50 ms':>8}{'p95 ms':>8}")
    print(f"{'HTTP API (login, filters, count)':<34}{a50:>8.1f}{a95:>8.1f}")
    print(f"{'same query straight in PostgreSQL':<34}{b50:>8.1f}{b95:>8.1f}")
    print(f"API / database p95 ratio: {a95 / b95:.1f}")


if __name__ == "__main__":
    main()
