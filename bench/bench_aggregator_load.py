"""The aggregator under sustained ingest: API latency with and without K edges pushing events.

In one run on this machine, against a real `aggregator serve` on a fresh PostgreSQL database
(created on the server of --database-url, dropped after) seeded with --seed-events events,
since a review queue in use is never empty:
  1. idle: p50/p95/p99 of GET /api/v1/events (first page, 50 rows), the same page filtered by
     status and type, and GET /api/v1/stats; one logged-in client asks them in turn, one
     request at a time, for --seconds;
  2. ingest alone: K `edge loadgen` processes (real outboxes, CurveZMQ over loopback, 500
     messages in flight each) each generate --rate messages/s, together more than the
     aggregator stores (the default 4 x 1000/s is above the 3,700/s end-to-end PostgreSQL
     figure of bench_ingest.py); after a warm-up, the messages stored per second over
     --seconds (the `stored` counter of GET /api/v1/ingest) and the edges' outbox backlog
     at the start and end of the window (growing: the aggregator is the bottleneck);
  3. under load: the edges go on; the requests of phase 1 for --seconds, and the ingest rate
     over that window;
  4. idle again once the edges are stopped: the control for the tables having grown.
Prints the machine, the ingest rates and, per endpoint and phase, the percentiles and
p95 under load / p95 idle.

    .venv/bin/python bench/bench_aggregator_load.py [--edges 4] [--rate 1000] [--seconds 30]
        [--database-url postgresql://postgres@127.0.0.1:5432/test] [--seed-events 100000]
        [--ingest-replicas N]

--ingest-replicas N runs N `aggregator ingest` processes and one `aggregator api` instead of
one `aggregator serve` (issue 13: the API then answers from its own process); the stored
rate is then counted in the database (the API's fleet counters refresh every second).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psycopg
from sqlalchemy.engine import make_url

from aggregator.db.engine import migrate
from bench.bench_review_queue import generate as seed_events
from tests.deploy import PG_ADMIN, Deployment
from tests.replicas import ReplicaSet

ENDPOINTS = {
    "GET /api/v1/events (first page)": ("/api/v1/events", {"limit": 50}),
    "GET /api/v1/events?status=new&type=litter": (
        "/api/v1/events",
        {"limit": 50, "status": "new", "type": "litter"},
    ),
    "GET /api/v1/stats": ("/api/v1/stats", {}),
}
WARMUP_S = 5.0
IN_FLIGHT = 500


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server of server_url (any database there), dropped after."""
    admin = make_url(server_url).set(drivername="postgresql")
    name = f"sw_load_{uuid.uuid4().hex[:10]}"
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = admin.set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine(dsn: str) -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {mem_kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        mem = ""
    with psycopg.connect(dsn) as conn:
        pg = conn.execute("SHOW server_version").fetchone()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}; Python {platform.python_version()}; "
        f"PostgreSQL {pg[0] if pg else '?'}; load average before the run {load}"
    )


Endpoints = dict[str, tuple[str, dict[str, object]]]


def measure(
    client: httpx.Client, seconds: float, endpoints: Endpoints | None = None
) -> dict[str, list[float]]:
    """Each endpoint in turn, one request at a time, for `seconds`: milliseconds per request."""
    endpoints = endpoints or ENDPOINTS
    out: dict[str, list[float]] = {name: [] for name in endpoints}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for name, (path, params) in endpoints.items():
            t = time.perf_counter()
            r = client.get(path, params=params)
            out[name].append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:200]}"
    return out


def percentiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=100, method="inclusive")
    return q[49], q[94], q[98]


@dataclass
class Window:
    rate: float  # messages stored per second
    duplicates: int  # resent messages the aggregator already had
    backlog: tuple[int, int]  # messages waiting in the edges' outboxes, at start and end


def ingest_counters(client: httpx.Client) -> tuple[int, int, int]:
    """Stored and duplicate messages so far, and the edges' outbox depth (their heartbeats)."""
    r = client.get("/api/v1/ingest")
    r.raise_for_status()
    data = r.json()
    backlog = sum(int(e.get("depth") or 0) for e in data["edges"].values())
    return int(data["stored"]), int(data["duplicates"]), backlog


def stored_in_database(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM event_messages").fetchone()
    return int(row[0]) if row else 0


def ingest_window(
    client: httpx.Client, seconds: float, during: Callable[[], None], dsn: str | None = None
) -> Window:
    """Ingest counters around `during()` (or a sleep, when it returns at once); with dsn,
    the stored count comes from the database."""
    n0, dup0, back0 = ingest_counters(client)
    if dsn:
        n0 = stored_in_database(dsn)
    t0 = time.monotonic()
    during()
    time.sleep(max(0.0, t0 + seconds - time.monotonic()))
    n1, dup1, back1 = ingest_counters(client)
    if dsn:
        n1 = stored_in_database(dsn)
    return Window((n1 - n0) / (time.monotonic() - t0), dup1 - dup0, (back0, back1))


def start(d: Deployment, replicas: int) -> ReplicaSet | None:
    """`aggregator serve`, or N ingest replicas and one API replica on d's HTTP port."""
    if not replicas:
        d.start_aggregator()
        return None
    rs = ReplicaSet(d)
    for i in range(replicas):
        rs.add_ingest(f"ingest-{i}")
    rs.add_api("api-0", port=d.http_port)
    rs.start_all()
    return rs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--edges", type=int, default=4, help="edge processes (default 4)")
    ap.add_argument("--rate", type=float, default=1000.0, help="messages/s each edge makes")
    ap.add_argument("--seconds", type=float, default=30.0, help="each measuring window")
    ap.add_argument(
        "--database-url",
        default=PG_ADMIN,
        help="a PostgreSQL server (any database on it) where a scratch database is made",
    )
    ap.add_argument("--seed-events", type=int, default=100_000)
    ap.add_argument("--ingest-replicas", type=int, default=0, help="0: one `aggregator serve`")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.database_url) as url:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        print(f"machine: {machine(dsn)}", flush=True)
        migrate(url)
        t = time.perf_counter()
        seed_events(url, args.seed_events)
        print(f"seeded {args.seed_events} events in {time.perf_counter() - t:.0f} s", flush=True)
        d = Deployment(Path(tmp), url)
        try:
            rs = start(d, args.ingest_replicas)
            client = d.client()
            counted = dsn if rs else None
            for path, params in ENDPOINTS.values():  # first-request costs out of the way
                client.get(path, params=params).raise_for_status()
            idle = measure(client, args.seconds)

            edges = []
            for i in range(args.edges):
                cfg = rs.add_edge(f"load-{i}") if rs else d.add_edge(f"load-{i}")
                # The shipped heartbeat (1 s) and a long ack timeout: slow acks under load are
                # waited for, not resent; a big outbox: the backlog is kept, never dropped.
                text = cfg.read_text().replace("ack_timeout_s: 1.0", "ack_timeout_s: 10.0")
                text = text.replace("heartbeat_s: 0.5", "heartbeat_s: 1.0")
                text = text.replace("-outbox.sqlite3\n", "-outbox.sqlite3\n  max_rows: 5000000\n")
                cfg.write_text(text + f"  max_in_flight: {IN_FLIGHT}\n")
                edges.append(
                    d.spawn(
                        "edge",
                        "loadgen",
                        "-c",
                        cfg.name,
                        "--count",
                        "100000000",
                        "--rate",
                        str(args.rate),
                        "--camera-prefix",
                        f"load{i}-cam",
                        log=f"load-{i}.log",
                    )
                )
            time.sleep(WARMUP_S)
            alone = ingest_window(client, args.seconds, lambda: None, counted)
            loaded: dict[str, list[float]] = {}
            under = ingest_window(
                client, args.seconds, lambda: loaded.update(measure(client, args.seconds)), counted
            )
            for p in edges:
                assert p.poll() is None, f"an edge exited early: see {tmp}/load-*.log"
                d.kill(p)
            idle_after = measure(client, args.seconds)
            with psycopg.connect(dsn) as conn:
                counts = conn.execute(
                    "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM event_messages)"
                ).fetchone()
        finally:
            d.stop_all()

    assert counts is not None
    topology = (
        f"{args.ingest_replicas} ingest replica(s) + 1 API replica"
        if args.ingest_replicas
        else "one `aggregator serve`"
    )
    print(f"aggregator: {topology}")
    print(
        f"{args.edges} edges (edge loadgen, {args.rate:.0f} messages/s and {IN_FLIGHT} in "
        f"flight each: {args.edges * args.rate:.0f}/s offered), {args.seconds:.0f} s windows "
        f"after a {WARMUP_S:.0f} s warm-up"
    )
    print(f"{'ingest window':<24}{'stored ev/s':>12}{'duplicates':>12}", end="")
    print(f"{'edge backlog start':>20}{'end':>8}")
    for name, w in (("ingest alone", alone), ("with the API requests", under)):
        print(f"{name:<24}{w.rate:>12.0f}{w.duplicates:>12}{w.backlog[0]:>20}{w.backlog[1]:>8}")
    print(f"ingest with / without API requests: {under.rate / alone.rate:.2f}")
    print(f"at the end: {counts[0]} events, {counts[1]} lifecycle messages in the database")
    print()
    head = f"{'endpoint':<44}{'phase':<12}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
    print(head + f"{'p95 load/idle':>15}")
    for name in ENDPOINTS:
        base95 = percentiles(idle[name])[1]
        for phase, data in (("idle", idle), ("under load", loaded), ("idle after", idle_after)):
            p50, p95, p99 = percentiles(data[name])
            ratio = f"{p95 / base95:>15.1f}" if phase == "under load" else ""
            print(
                f"{name if phase == 'idle' else '':<44}{phase:<12}{len(data[name]):>5}"
                f"{p50:>9.1f}{p95:>9.1f}{p99:>9.1f}{ratio}"
            )
    if min(len(d[n]) for d in (idle, loaded, idle_after) for n in ENDPOINTS) < 100:
        print("(p99 of fewer than 100 requests is close to their maximum)")


if __name__ == "__main__":
    main()
