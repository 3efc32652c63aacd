"""Ingest fuzzing (issue 12, standing test): --count mutated and random messages through a real
`aggregator serve` over CurveZMQ, from an allowed edge's key (tests/aggregator/fuzzing.py:
frame counts, frame and payload lengths, msgpack types, boundary numbers, NUL and other
control characters, huge sequence numbers, other edges' ids and cameras, and now and then a
frame over the largest legal one, which makes the aggregator drop the peer).

Meanwhile two well-behaved edges deliver: `edge loadgen` (a real outbox and publisher,
--good-rate messages/s) and a probe (50 messages/s) that times every ack. Prints the fuzz rate
and duration, the probe's ack latency (p50, p99, max), what the good edges sent and what was
stored, the aggregator's RSS before and after and its peak, and whether it survived; exits 1
when a criterion fails (every ack seen, nothing lost, p99 under 1 s, no crash, an ack always
means stored).

    .venv/bin/python bench/bench_ingest_fuzz.py [--count 1000000] [--database sqlite]
        [--max-seconds 1500] [--good-rate 100] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.aggregator.fuzz_run import FuzzReport, run_fuzz
from tests.deploy import Deployment, database


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()[0]
    return f"{cpu}, {os.cpu_count()} cores, load average {load:.1f} at start"


def criteria(r: FuzzReport) -> dict[str, bool]:
    return {
        "aggregator alive": r.aggregator_alive,
        "fuzzer ran to the end": not r.fuzz_error,
        "good edge: every message acked and stored": (
            r.good_stored,
            r.good_left,
            r.good_dead_letters,
        )
        == (r.good_sent, 0, 0),
        "probe: every message acked and stored": not r.probe_nacked
        and r.probe_unanswered == 0
        and r.probe_acked == r.probe_stored == r.probe_sent,
        "probe ack p99 under 1 s": r.ack_p99_s < 1.0,
        "fuzz: every ack stored": r.fuzz_acked_not_stored == 0,
        "no database errors": r.ingest.get("db_errors") == 0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", type=int, default=1_000_000, help="fuzzed messages to send")
    ap.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--max-seconds", type=float, default=1500.0, help="stop fuzzing after this")
    ap.add_argument("--good-rate", type=float, default=100.0, help="edge loadgen, messages/s")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, database(args.database, Path(tmp)) as url:
        d = Deployment(Path(tmp), url)
        try:
            for name in ("good", "probe", "fuzz"):
                d.add_edge(name)
            agg = d.start_aggregator()
            r = run_fuzz(d, agg, args.count, args.max_seconds, args.good_rate, args.seed)
        finally:
            d.stop_all()
    total = r.fuzz_total
    print(f"database: {args.database}")
    print(
        f"fuzz: {total} messages sent in {r.duration_s:.1f} s ({total / r.duration_s:.0f}/s); "
        f"the aggregator received {r.received_during} messages of all edges meanwhile "
        f"({r.received_during / r.duration_s:.0f}/s; the rest went with the {r.fuzz_disconnects}"
        " connections it dropped)"
    )
    if r.fuzz_error:
        print(f"fuzzer error: {r.fuzz_error}")
    print(f"fuzz by kind: {dict(sorted(r.fuzz_sent.items()))}")
    print(
        f"fuzzer connection: {r.fuzz_disconnects} drops seen, {r.fuzz_stalls} stalls (a send "
        "stuck for 5 s; the fuzzer then opened a new socket)"
    )
    print(f"replies to the fuzzer: {dict(sorted(r.fuzz_replies.items()))}")
    keys = ("stored", "duplicates", "malformed", "rejected", "oversized", "unauthorised")
    print(f"ingest counters: { {k: r.ingest.get(k) for k in keys} }")
    print(
        f"good edge (edge loadgen): {r.good_sent} sent, {r.good_stored} stored, "
        f"{r.good_left} left unacked, {r.good_dead_letters} dead letters"
    )
    print(
        f"probe: {r.probe_sent} sent, {r.probe_acked} acked, {len(r.probe_nacked)} nacked, "
        f"{r.probe_stored} stored; ack latency p50 {r.ack_p50_s * 1000:.0f} ms, "
        f"p99 {r.ack_p99_s * 1000:.0f} ms, max {r.ack_max_s * 1000:.0f} ms"
    )
    print(
        f"aggregator RSS: {r.rss_before_kib / 1024:.0f} MiB before, "
        f"{r.rss_after_kib / 1024:.0f} MiB after, peak {r.peak_rss_kib / 1024:.0f} MiB; "
        f"{'alive' if r.aggregator_alive else 'DEAD'}"
    )
    results = criteria(r)
    for name, ok in results.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if total < args.count:
        rate = total / r.duration_s
        print(
            f"stopped at --max-seconds: {total} of {args.count}; "
            f"projected {args.count / rate / 60:.0f} min for all"
        )
    sys.exit(0 if all(results.values()) else 1)


if __name__ == "__main__":
    main()
