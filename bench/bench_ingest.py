"""Aggregator ingest: events/s into SQLite and PostgreSQL, end-to-end latency, message size.

For each database, in one run on this machine:
  * store-only baseline: the same messages written straight through EventStore.ingest in
    batches (no ZeroMQ, no edge), events/s;
  * end to end: an edge outbox pre-filled with N messages is drained by `edge publish` to a
    real `aggregator serve` over CurveZMQ; events/s from first to last commit, and the ratio
    to the baseline;
  * latency: a paced stream (200 messages/s) from `edge loadgen`; p50/p95 of commit time
    minus the edge's creation time of each message.
Plus the median size of a message on the wire (all frames, before encryption).

    .venv/bin/python bench/bench_ingest.py [--count 20001]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select

from aggregator.db.engine import make_engine, migrate
from aggregator.db.models import EventMessageRow
from aggregator.store import EventStore, Received
from contract import wire
from edge.delivery.outbox import Outbox
from edge.tools.loadgen import generate, message
from tests.deploy import Deployment, database


def stored(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(EventMessageRow)).scalar_one())
    engine.dispose()
    return n


def baseline(url: str, count: int) -> float:
    migrate(url)
    store = EventStore(make_engine(url))
    batch: list[Received] = []
    t0 = time.perf_counter()
    for i in range(count):
        batch.append(Received("base", i + 1, wire.decode_event(message("base", i)[0])))
        if len(batch) == 500:
            store.ingest(batch)
            batch = []
    store.ingest(batch)
    return count / (time.perf_counter() - t0)


def end_to_end(kind: str, count: int) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        d = Deployment(Path(tmp), url)
        try:
            cfg = d.add_edge("bench")
            text = cfg.read_text().replace("ack_timeout_s: 1.0", "ack_timeout_s: 5.0")
            cfg.write_text(text + "  max_in_flight: 2000\n")
            box = Outbox(d.root / "bench-outbox.sqlite3", max_rows=10 * count)
            generate(box, "bench", count, 1e9, threading.Event())
            box.close()
            d.start_aggregator()
            t0 = time.perf_counter()
            d.spawn("edge", "publish", "-c", cfg.name, log="edge.log")
            while stored(url) < count:
                time.sleep(0.05)
            rate = count / (time.perf_counter() - t0)
            # Latency under a paced, live stream: a second edge.
            cfg2 = d.add_edge("live")
            d.spawn(
                "edge",
                "loadgen",
                "-c",
                cfg2.name,
                "--count",
                "2001",
                "--rate",
                "200",
                "--camera-prefix",
                "live-cam",
                "--exit-when-done",
                log="live.log",
            ).wait(120)
            engine = create_engine(url)
            with engine.connect() as conn:
                lat = [
                    (c - w) * 1000
                    for c, w in conn.execute(
                        select(EventMessageRow.committed_at, EventMessageRow.created_wall).where(
                            EventMessageRow.edge_id == "live"
                        )
                    )
                ]
            engine.dispose()
            return rate, lat
        finally:
            d.stop_all()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=20001)
    args = ap.parse_args()
    sizes = [
        sum(map(len, wire.frames(wire.KIND_EVENT, "box-017", i + 1, message("box-017", i)[0])))
        for i in range(3000)
    ]
    print(
        f"median message size on the wire: {statistics.median(sizes):.0f} bytes "
        f"(all frames, before CURVE's 16-byte tag and framing)"
    )
    print(
        f"{'database':<12}{'store-only ev/s':>16}{'end-to-end ev/s':>17}{'ratio':>7}"
        f"{'latency p50 ms':>16}{'p95 ms':>8}"
    )
    for kind in ("sqlite", "postgresql"):
        with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
            base = baseline(url, args.count)
        rate, lat = end_to_end(kind, args.count)
        q = statistics.quantiles(lat, n=20)
        print(
            f"{kind:<12}{base:>16.0f}{rate:>17.0f}{rate / base:>7.2f}"
            f"{statistics.median(lat):>16.1f}{q[18]:>8.1f}"
        )


if __name__ == "__main__":
    main()
