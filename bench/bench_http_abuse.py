"""HTTP abuse against a real `aggregator serve` (SQLite, loopback) with its default limits
(but http.upload_timeout_s: 30), while one logged-in user keeps asking for the review queue
(GET /api/v1/events, 50 rows of --seed-events). Phases, each --seconds long:
  1. idle: the user alone;
  2. requests: rounds of every case of tests/system/httpabuse.py (oversized, malformed and
     slow requests to every route, anonymous, logged in and with an edge's upload token),
     --workers at a time, plus --slowloris connections held open a byte at a time and
     re-opened as the server cuts them;
  3. logins: --login-clients wrong passwords at once, each from its own loopback address (so
     the per-address delays do not apply and only the password-check slots bound them).
Prints, per phase, the user's p50/p95/p99 and max, the server's peak RSS over its baseline,
and for phase 2 the answers by kind of case, the slowest, and any that were not a 4xx.

    .venv/bin/python bench/bench_http_abuse.py [--seconds 30] [--workers 8] [--slowloris 200]
        [--login-clients 16] [--seed-events 5000] [--login-concurrency 2]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from aggregator.db.engine import make_engine, migrate
from aggregator.store import EventStore, Received
from contract import wire
from edge.tools.loadgen import message
from tests.deploy import Deployment
from tests.system.httpabuse import (
    Limits,
    MemoryWatch,
    Outcome,
    Victim,
    by_kind,
    cases,
    percentile_ms,
    refusals,
    routes,
    run,
)
from tests.system.rawhttp import head, trickle

SLOW_DEADLINE_S = 45.0  # the default body timeout is 30 s, the head timeout 10 s
#: Instead of the default 600 s (a 50 MB clip over a slow uplink), so a round ends sooner.
UPLOAD_TIMEOUT_S = 30


def seed(db_url: str, n: int) -> None:
    migrate(db_url)
    engine = make_engine(db_url)
    store = EventStore(engine)
    batch = [Received("box", i + 1, wire.decode_event(message("box", i)[0])) for i in range(n)]
    for start in range(0, n, 500):
        store.ingest(batch[start : start + 500])
    engine.dispose()


def start(root: Path, seed_events: int, login_concurrency: int) -> tuple[Deployment, int, str, str]:
    d = Deployment(root, f"sqlite:///{root / 'aggregator.sqlite3'}")
    d.add_edge("box")
    with (root / "aggregator.yaml").open("a") as f:  # the defaults but for slow uploads
        f.write(f"  upload_timeout_s: {UPLOAD_TIMEOUT_S}\n")
        f.write(f"  login_concurrency: {login_concurrency}\n")
    seed(d.db_url, seed_events)
    pid = d.start_aggregator().pid
    session = str(d.client().headers["Authorization"]).removeprefix("Bearer ")
    return d, pid, session, (root / "keys" / "box.token").read_text().strip()


def phase(
    name: str, d: Deployment, pid: int, session: str, seconds: float, load: Callable[[], None]
) -> None:
    """Run ``load`` (which returns when its time is up) under a timed user; print figures."""
    with Victim(d.url, session) as victim, MemoryWatch(pid) as memory:
        baseline_kb = memory.peak_kb
        load() if seconds > 0 else None
    lat = victim.latencies_s
    print(
        f"{name:<10} user p50 {percentile_ms(lat, 50):6.1f} ms"
        f"  p95 {percentile_ms(lat, 95):6.1f} ms  p99 {percentile_ms(lat, 99):6.1f} ms"
        f"  max {1000 * max(lat):6.1f} ms  ({len(lat)} "
        f"requests, {len(victim.failures)} failed)  RSS {baseline_kb / 1024:.0f} MiB, peak "
        f"{(memory.peak_kb - baseline_kb) / 1024:+.1f} MiB",
        flush=True,
    )


def slowloris(port: int, connections: int, until: float) -> Callable[[], None]:
    """Hold ``connections`` slow request heads open until ``until``, re-opening each as the
    server cuts it; counts how it was cut."""
    cut: dict[str, int] = {}
    lock = threading.Lock()
    data = head("GET", "/api/v1/events", {"X-Padding": "p" * 4000})

    def one() -> None:
        while time.monotonic() < until:
            answer = trickle(port, data, every_s=1.0, deadline_s=max(0.1, until - time.monotonic()))
            key = str(answer.status) if answer.status else "open" if not answer.closed else "closed"
            with lock:
                cut[key] = cut.get(key, 0) + 1

    def hold() -> None:
        with concurrent.futures.ThreadPoolExecutor(connections) as pool:
            for _ in range(connections):
                pool.submit(one)
        print(f"  slowloris: {connections} connections; ended as {cut}", flush=True)

    return hold


def abuse(d: Deployment, session: str, edge: str, args: argparse.Namespace) -> Callable[[], None]:
    def load() -> None:
        until = time.monotonic() + args.seconds
        holder = threading.Thread(target=slowloris(d.http_port, args.slowloris, until))
        holder.start()
        todo = cases(
            {"anonymous": "", "user": session, "edge": edge},
            Limits(1024 * 1024, 50 * 1024 * 1024, SLOW_DEADLINE_S),
        )
        slow: list[Outcome] = []
        slow_runner = threading.Thread(
            target=lambda: slow.extend(run(d.http_port, [c for c in todo if c.slow]))
        )
        slow_runner.start()
        fast = [c for c in todo if not c.slow]
        outcomes: list[Outcome] = []
        rounds = 0
        while time.monotonic() < until or rounds == 0:
            outcomes += run(d.http_port, fast, workers=args.workers)
            rounds += 1
        holder.join()
        slow_runner.join()
        outcomes += slow
        print(
            f"  {len(outcomes)} abusive requests ({rounds} rounds of {len(fast)} and one of "
            f"{len(todo) - len(fast)} slow ones, over {len(routes())} routes)",
            flush=True,
        )
        for kind, n, statuses, slowest_s in by_kind(outcomes):
            print(f"    {kind:<26} {n:>6}  slowest {slowest_s:6.2f} s  {statuses}", flush=True)
        bad = refusals(outcomes)
        print(f"  not a 4xx: {len(bad)}", flush=True)
        for o in bad[:10]:
            print(f"    {o}", flush=True)

    return load


def logins(d: Deployment, clients: int, seconds: float) -> Callable[[], None]:
    def one(i: int, until: float, statuses: dict[int, int], lock: threading.Lock) -> None:
        transport = httpx.HTTPTransport(local_address=f"127.0.3.{i + 1}")
        with httpx.Client(base_url=d.url, transport=transport, timeout=60) as c:
            n = 0
            while time.monotonic() < until:
                n += 1
                r = c.post("/api/v1/auth/login", json={"username": f"u{i}-{n}", "password": "x"})
                with lock:
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    def load() -> None:
        until = time.monotonic() + seconds
        statuses: dict[int, int] = {}
        lock = threading.Lock()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            for i in range(clients):
                pool.submit(one, i, until, statuses, lock)
        print(f"  {clients} clients, wrong passwords: {statuses}", flush=True)

    return load


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--slowloris", type=int, default=200)
    p.add_argument("--login-clients", type=int, default=16)
    p.add_argument("--seed-events", type=int, default=5000)
    p.add_argument("--login-concurrency", type=int, default=2, help="http.login_concurrency")
    args = p.parse_args()
    print(
        f"machine: {platform.processor() or 'unknown CPU'}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="sw-abuse-") as tmp:
        d, pid, session, edge = start(Path(tmp), args.seed_events, args.login_concurrency)
        try:
            phase("idle", d, pid, session, args.seconds, lambda: time.sleep(args.seconds))
            phase("requests", d, pid, session, args.seconds, abuse(d, session, edge, args))
            phase(
                "logins", d, pid, session, args.seconds, logins(d, args.login_clients, args.seconds)
            )
            ok = httpx.get(f"{d.url}/readyz", timeout=10).status_code == 200
            log = (d.root / "aggregator.log").read_text()
            print(f"server ready after: {ok}; tracebacks in its log: {log.count('Traceback')}")
            if "Traceback" in log:
                print(log[log.index("Traceback") - 200 :][:4000])
        finally:
            d.stop_all()


if __name__ == "__main__":
    main()
