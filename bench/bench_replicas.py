"""Ingest replicas: end-to-end events/s with 1, 2 and 3 replicas, and the long fault run.

Scaling (default), in one run on this machine, each on a fresh PostgreSQL database: 4 edges
with pre-filled outboxes (--count messages in all) drain through `edge publish` to N
`aggregator ingest` replicas listed in each edge's `aggregator.endpoints`; events/s from the
first to the last commit (committed_at in the database), and the ratio to 1 replica.

Faults (--kills K): tests/system/test_replicas.py with K kills instead of 10: 3 ingest
replicas and 1 API replica, 4 edges at --rate messages/s each, a random replica SIGKILLed
every 5 s and restarted; then exactly-once is checked in the database and no outbox holds a
dead letter. 100 kills take about 9 minutes.

    .venv/bin/python bench/bench_replicas.py [--count 40000] [--replicas 1 2 3]
    .venv/bin/python bench/bench_replicas.py --kills 100
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text

from bench.bench_aggregator_load import machine
from edge.delivery.outbox import Outbox
from edge.tools.loadgen import generate
from tests.deploy import Deployment, database
from tests.postgres import SESSION
from tests.replicas import ReplicaSet, outbox_counts, stored_per_edge

EDGES = 4


def _count(url: str) -> tuple[int, float, float]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            n, first, last = conn.execute(
                text("SELECT count(*), min(committed_at), max(committed_at) FROM event_messages")
            ).one()
    finally:
        engine.dispose()
    return int(n), float(first or 0), float(last or 0)


def scaling_run(n_replicas: int, count: int) -> float:
    """Events/s from the first to the last commit, N ingest replicas, 4 pre-filled edges."""
    with tempfile.TemporaryDirectory() as tmp, database("postgresql", Path(tmp)) as url:
        d = Deployment(Path(tmp), url)
        rs = ReplicaSet(d)
        for i in range(n_replicas):
            rs.add_ingest(f"ingest-{i}")
        try:
            rs.start_all()
            per_edge = count // EDGES
            publishers = []
            for e in range(EDGES):
                cfg = rs.add_edge(f"bench-{e}")
                body = cfg.read_text().replace("ack_timeout_s: 1.0", "ack_timeout_s: 10.0")
                cfg.write_text(body + "  max_in_flight: 1000\n")
                box = Outbox(d.root / f"bench-{e}-outbox.sqlite3", max_rows=10 * per_edge)
                generate(box, f"bench-{e}", per_edge, 1e9, threading.Event(), f"b{e}-cam")
                box.close()
            for e in range(EDGES):
                publishers.append(
                    d.spawn("edge", "publish", "-c", f"bench-{e}.yaml", log=f"bench-{e}.log")
                )
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                n, first, last = _count(url)
                if n >= per_edge * EDGES:
                    return n / max(last - first, 1e-6)
                time.sleep(0.2)
            raise AssertionError(f"only {n} of {per_edge * EDGES} stored in 10 minutes")
        finally:
            d.stop_all()


def fault_run(kills: int, rate: float, per_edge: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, database("postgresql", Path(tmp)) as url:
        d = Deployment(Path(tmp), url)
        rs = ReplicaSet(d)
        for i in range(3):
            rs.add_ingest(f"ingest-{i}")
        rs.add_api("api-0", port=d.http_port)
        try:
            rs.start_all()
            edges = []
            for e in range(EDGES):
                rs.add_edge(f"box-{e}")
                edges.append(
                    d.spawn(
                        "edge",
                        "loadgen",
                        "-c",
                        f"box-{e}.yaml",
                        "--count",
                        str(per_edge),
                        "--rate",
                        str(rate),
                        "--camera-prefix",
                        f"box-{e}-cam",
                        "--exit-when-done",
                        log=f"box-{e}.log",
                    )
                )
            rng = random.Random(100)
            done_kills = 0
            t0 = time.monotonic()
            while done_kills < kills or any(p.poll() is None for p in edges):
                if time.monotonic() - t0 > 5.0 * kills + 300:
                    raise AssertionError("the edges did not finish")
                time.sleep(5.0)
                if done_kills < kills:
                    victim = rng.choice(rs.replicas)
                    rs.kill(victim)
                    rs.start(victim, wait=False)
                    done_kills += 1
                    if done_kills % 10 == 0:
                        print(f"  {done_kills} kills, {_count(url)[0]} stored", flush=True)
            for r in rs.replicas:
                rs.wait_ready(r)
            stored = stored_per_edge(url)
            dead = [outbox_counts(d.root / f"box-{e}-outbox.sqlite3") for e in range(EDGES)]
        finally:
            d.stop_all()
    want = {f"box-{e}": (per_edge, per_edge, per_edge) for e in range(EDGES)}
    print(f"{kills} kills in {time.monotonic() - t0:.0f} s; stored per edge (rows, distinct seq,")
    print(f"merged into events): {stored}; outboxes (waiting, dead): {dead}")
    print("exactly once, nothing dead-lettered:", stored == want and all(x == (0, 0) for x in dead))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=40_000, help="messages in all (scaling)")
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--kills", type=int, default=0, help="run the fault version instead")
    ap.add_argument("--rate", type=float, default=50.0, help="messages/s per edge (faults)")
    args = ap.parse_args()
    server = SESSION.get()
    print(f"machine: {machine(server.dsn())}", flush=True)
    if args.kills:
        fault_run(args.kills, args.rate, int(args.rate * 5.0 * args.kills))
        return
    rates = {}
    for n in args.replicas:
        rates[n] = scaling_run(n, args.count)
        print(f"{n} ingest replica(s): {rates[n]:,.0f} events/s", flush=True)
    base = rates[args.replicas[0]]
    print(f"{'replicas':>9}{'events/s':>10}{'ratio':>7}")
    for n, r in rates.items():
        print(f"{n:>9}{r:>10,.0f}{r / base:>7.2f}")


if __name__ == "__main__":
    main()
