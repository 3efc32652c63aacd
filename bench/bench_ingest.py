"""Aggregator ingest: events/s into SQLite and PostgreSQL, end-to-end latency, message size.

Store-only, before and after issue 13's fast path, in one run: the same pre-decoded messages
(timestamps of today, so that PostgreSQL files them in a partition) written straight through
EventStore.ingest in batches of 500 by one process, events/s: the baseline is
bench/legacy_store.py (the store before the fast path) on the schema before partitions
(0007) and on today's (0008), the fast path is aggregator/store.py on today's. Each figure
is the median of --rounds fresh databases, the implementations taking turns, since other
work on a shared 2-core machine moves single figures by tens of percent. --profile adds a
cProfile of one fast-path run: where the time goes, in the database (waiting on the
server) and in Python. --variants adds other ways to write a batch (bench/bulk_variants.py):
multi-row VALUES statements, the messages as one JSON document, or as bare payloads.

Then, unless --store-only, for each database in one run on this machine:
  * store-only baseline: the same messages written straight through EventStore.ingest in
    batches (no ZeroMQ, no edge), events/s;
  * end to end: an edge outbox pre-filled with N messages is drained by `edge publish` to a
    real `aggregator serve` over CurveZMQ; events/s from first to last commit, and the ratio
    to the baseline;
  * latency: a paced stream (200 messages/s) from `edge loadgen`; p50/p95 of commit time
    minus the edge's creation time of each message.
Plus the median size of a message on the wire (all frames, before encryption).

    .venv/bin/python bench/bench_ingest.py [--count 20001] [--rounds 3] [--store-only]
        [--profile] [--variants]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pstats
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, func, select

from aggregator.db import bulk
from aggregator.db.engine import MIGRATIONS, make_engine, migrate
from aggregator.db.models import EventMessageRow
from aggregator.db.partitions import ensure_partitions
from aggregator.store import EventStore, Received
from bench.bulk_variants import JsonStore, PayloadStore, ValuesStore
from bench.legacy_store import EventStore as LegacyStore
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


BATCH = 500
COPY_INSERT = bulk.copy_insert
#: name: (store class, schema revision)
IMPLEMENTATIONS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "baseline: legacy_store, schema 0007": (LegacyStore, "0007"),
    "baseline: legacy_store, schema 0008": (LegacyStore, "head"),
    "fast path: store, schema 0008": (EventStore, "head"),
}
#: --variants: other ways to write a batch, measured against the shipped one.
VARIANTS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "variant: multi-row VALUES, schema 0008": (ValuesStore, "head"),
    "variant: messages as one JSON document, 0008": (JsonStore, "head"),
    "variant: messages as payloads, schema 0008": (PayloadStore, "head"),
}


def recent_batches(count: int) -> list[list[Received]]:
    """loadgen's messages, decoded, moved to end an hour ago, in batches of BATCH."""
    shift = time.time() - 3600 - (1000.0 + count // 3)
    out = []
    for i in range(count):
        ev = wire.decode_event(message("base", i)[0])
        ev = dataclasses.replace(ev, ts=ev.ts + shift, started_ts=ev.started_ts + shift)
        out.append(Received("base", i + 1, ev))
    return [out[i : i + BATCH] for i in range(0, count, BATCH)]


def time_statements(engine: Any, spent: dict[str, list[float]]) -> None:
    """Record into spent the seconds each statement took, by its first words (sent to the
    server and answered, as the driver sees it), the messages' COPY and INSERT included."""
    copy_insert = bulk.copy_insert

    def timed_copy(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return copy_insert(*args, **kwargs)
        finally:
            spent.setdefault("COPY+INSERT event_messages", []).append(time.perf_counter() - t0)

    bulk.copy_insert = timed_copy

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["statement_t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        table = words[2] if words[0] == "INSERT" else words[1]
        for i, word in enumerate(words[:-1]):
            if word in ("FROM", "JOIN") and words[0] == "SELECT":
                table = words[i + 1]
        what = f"{words[0]} {table}"
        spent.setdefault(what, []).append(time.perf_counter() - conn.info["statement_t0"])


def store_rate(
    kind: str,
    impl: str,
    batches: list[list[Received]],
    profile: cProfile.Profile | None = None,
    spent: dict[str, list[float]] | None = None,
) -> float:
    """events/s of one implementation into a fresh database (the first batch not timed)."""
    make, revision = {**IMPLEMENTATIONS, **VARIANTS}[impl]
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", url)
        command.upgrade(cfg, revision)
        engine = make_engine(url)
        if revision == "head":
            ensure_partitions(engine, time.time(), 7, 2)
        store = make(engine)
        store.ingest(batches[0])
        if spent is not None:
            time_statements(engine, spent)
        if profile is not None:
            profile.enable()
        t0 = time.perf_counter()
        for batch in batches[1:]:
            store.ingest(batch)
        elapsed = time.perf_counter() - t0
        if profile is not None:
            profile.disable()
        engine.dispose()
        bulk.copy_insert = COPY_INSERT  # as it was, if time_statements wrapped it
    return sum(map(len, batches[1:])) / elapsed


def store_only(count: int, rounds: int, profile: bool, variants: bool) -> None:
    batches = recent_batches(count)
    print(f"store-only, {count} messages in batches of {BATCH}, median of {rounds} rounds:")
    print(f"{'database':<12}{'implementation':<44}{'events/s':>9}   rounds")
    for kind in ("postgresql", "sqlite"):
        names = [*IMPLEMENTATIONS, *(VARIANTS if variants and kind == "postgresql" else ())]
        rates: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(rounds):
            for name in names:
                if kind == "sqlite" and name.endswith("0008") and "legacy" in name:
                    continue  # SQLite's schema is the same before and after 0008
                rates[name].append(store_rate(kind, name, batches))
        medians = {name: statistics.median(r) for name, r in rates.items() if r}
        for name, median in medians.items():
            each = " ".join(f"{r:.0f}" for r in rates[name])
            print(f"{kind:<12}{name:<44}{median:>9.0f}   {each}")
        fast = medians["fast path: store, schema 0008"]
        base = medians["baseline: legacy_store, schema 0007"]
        print(f"{kind:<12}{'fast path / baseline (0007)':<44}{fast / base:>9.2f}")
    if profile:
        where_time_goes(batches)


def where_time_goes(batches: list[list[Received]]) -> None:
    """cProfile of one fast-path run into PostgreSQL: the top entries, and the split between
    waiting on the database server (psycopg's wait) and Python."""
    spent: dict[str, list[float]] = {}
    rate = store_rate("postgresql", "fast path: store, schema 0008", batches, spent=spent)
    n = len(batches) - 1
    print(f"\none fast-path run into PostgreSQL, {rate:.0f} events/s, per batch of {BATCH}:")
    in_statements = 1000 * sum(map(sum, spent.values())) / n
    print(f"  {1000 * BATCH / rate:.1f} ms in all; {in_statements:.1f} ms in statements:")
    for what, times in sorted(spent.items(), key=lambda kv: -sum(kv[1])):
        print(f"    {what[:60]:<60}{1000 * sum(times) / n:>7.2f} ms")
    prof = cProfile.Profile()
    rate = store_rate("postgresql", "fast path: store, schema 0008", batches, prof)
    stats = pstats.Stats(prof)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in raw.values())
    wait = sum(ct for (f, _, n), (_, _, _, ct, _) in raw.items() if n == "wait" and "psycopg" in f)
    print(f"\nprofile of one fast-path run into PostgreSQL ({rate:.0f} events/s under cProfile):")
    print(f"  time in the database (psycopg waiting on the server): {wait:.2f} s of {total:.2f} s")
    print(f"  time in Python (the rest): {total - wait:.2f} s")
    stats.sort_stats("tottime").print_stats(15)


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
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--store-only", action="store_true", help="skip the end-to-end part")
    ap.add_argument("--profile", action="store_true", help="profile a fast-path run")
    ap.add_argument("--variants", action="store_true", help="also VALUES and COPY writes")
    args = ap.parse_args()
    store_only(args.count, args.rounds, args.profile, args.variants)
    if args.store_only:
        return
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
