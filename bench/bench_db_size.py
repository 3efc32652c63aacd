"""Database size per million events, for docs/scaling.md: --incidents incidents (3 lifecycle
messages each, as `edge loadgen` makes them) stored through EventStore into a fresh,
migrated PostgreSQL database (partitioned tables), then the bytes of each table with its
indexes and TOAST (every partition summed), per incident and per million.

    .venv/bin/python bench/bench_db_size.py [--incidents 200000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text

from aggregator.db.engine import make_engine, migrate
from aggregator.store import EventStore, Received
from bench.bench_aggregator_load import machine
from contract import wire
from edge.tools.loadgen import message
from tests.deploy import database
from tests.postgres import SESSION

TABLES = ("events", "event_messages")
BATCH = 500


def table_bytes(url: str, table: str) -> int:
    """The table, its indexes and TOAST, summed over its partitions when it has them."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT COALESCE(SUM(pg_total_relation_size(relid)), 0) "
                        "FROM pg_partition_tree(CAST(:t AS regclass))"
                    ),
                    {"t": table},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--incidents", type=int, default=200_000)
    args = ap.parse_args()
    print(f"machine: {machine(SESSION.get().dsn())}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, database("postgresql", Path(tmp)) as url:
        migrate(url)
        store = EventStore(make_engine(url))
        n_messages = 3 * args.incidents
        t0 = time.perf_counter()
        for edge in range(4):  # four boxes, their own cameras
            batch: list[Received] = []
            for i in range(n_messages // 4):
                payload = message(f"box-{edge}", i, f"b{edge}-cam")[0]
                batch.append(Received(f"box-{edge}", i + 1, wire.decode_event(payload)))
                if len(batch) == BATCH:
                    store.ingest(batch)
                    batch = []
            store.ingest(batch)
        print(f"stored {n_messages:,} messages in {time.perf_counter() - t0:.0f} s")
        engine = create_engine(url, isolation_level="AUTOCOMMIT")  # VACUUM needs it
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
        engine.dispose()
        sizes = {t: table_bytes(url, t) for t in TABLES}
    total = sum(sizes.values())
    print(f"{'table':<16}{'bytes':>14}{'per incident':>14}{'GB per million':>16}")
    for t, b in {**sizes, "total": total}.items():
        print(f"{t:<16}{b:>14,}{b / args.incidents:>14.0f}{b / args.incidents * 1e6 / 1e9:>16.2f}")


if __name__ == "__main__":
    main()
