"""Does evidence upload stall the aggregator's other requests? API latency idle and while
K edges upload clips.

Against a real `aggregator serve` on a fresh SQLite database in a temp folder:
  1. idle: one logged-in client asks GET /healthz and GET /api/v1/events (first page) in
     turn, one request at a time, for --seconds; p50/p95/p99 of each;
  2. under uploads: K uploader processes, each with its own edge and upload token, PUT
     distinct clips of --clip-mb MB (an MP4 header and random bytes, a new hash each time)
     back to back, as an edge's uploader does with a backlog; the same requests meanwhile.
Prints the machine, the upload throughput and, per endpoint and phase, the percentiles and
p95 under uploads / p95 idle. The uploads are hashed and written by the aggregator: if that
work ran on its event loop, every other request would wait behind it.

    .venv/bin/python bench/bench_upload_stall.py [--edges 4] [--clip-mb 5] [--seconds 15]
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.bench_aggregator_load import measure as measure_endpoints
from bench.bench_aggregator_load import percentiles
from tests.deploy import Deployment, database

ENDPOINTS = {"GET /healthz": ("/healthz", {}), "GET /api/v1/events": ("/api/v1/events", {})}


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; "
        f"load average before the run {load}"
    )


def upload_loop(url: str, token: str, clip_bytes: int, until: float, done: mp.Queue) -> None:  # type: ignore[type-arg]
    """One edge uploading distinct clips back to back until `until` (time.time())."""
    base = b"\x00\x00\x00\x18ftypisom" + os.urandom(clip_bytes - 12 - 16)
    n = 0
    with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {token}"}) as client:
        while time.time() < until:
            body = base + os.urandom(16)  # a new file each time: hashed and written again
            r = client.put(
                f"{url}/api/v1/media/{uuid.uuid4()}",
                content=body,
                headers={
                    "Content-Type": "video/mp4",
                    "X-Event-Id": str(uuid.uuid4()),
                    "X-Media-Kind": "clip",
                    "X-Content-SHA256": hashlib.sha256(body).hexdigest(),
                    "X-Start-Ts": "0",
                    "X-Duration-S": "10",
                },
            )
            assert r.status_code == 201, f"upload: {r.status_code} {r.text[:200]}"
            n += 1
    done.put(n)


def measure(client: httpx.Client, seconds: float) -> dict[str, list[float]]:
    return measure_endpoints(client, seconds, ENDPOINTS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--edges", type=int, default=4, help="uploading edges (default 4)")
    ap.add_argument("--clip-mb", type=float, default=5.0, help="size of each clip, MB")
    ap.add_argument("--seconds", type=float, default=15.0, help="each measuring window")
    args = ap.parse_args()
    clip_bytes = int(args.clip_mb * 1024 * 1024)
    print(f"machine: {machine()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, database("sqlite", Path(tmp)) as url:
        d = Deployment(Path(tmp), url)
        try:
            d.start_aggregator()
            tokens = []
            for i in range(args.edges):
                d.add_edge(f"up-{i}")
                tokens.append((Path(tmp) / "keys" / f"up-{i}.token").read_text().strip())
            client = d.client()
            measure(client, 1.0)  # first-request costs out of the way
            idle = measure(client, args.seconds)

            ctx = mp.get_context("spawn")
            done: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
            until = time.time() + args.seconds + 2.0
            procs = [
                ctx.Process(target=upload_loop, args=(d.url, t, clip_bytes, until, done))
                for t in tokens
            ]
            for p in procs:
                p.start()
            time.sleep(2.0)  # the uploaders are under way
            t0 = time.monotonic()
            loaded = measure(client, args.seconds)
            for p in procs:
                p.join(120)
            elapsed = time.monotonic() - t0 + 2.0
            uploads = sum(done.get(timeout=10) for _ in procs)
        finally:
            d.stop_all()
    mb = uploads * clip_bytes / 2**20
    print(
        f"{args.edges} edges uploaded {uploads} clips of {args.clip_mb:g} MB "
        f"({mb / elapsed:.0f} MB/s over about {elapsed:.0f} s)"
    )
    print(f"{'endpoint':<22} {'phase':<15} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name in ENDPOINTS:
        for phase, data in (("idle", idle), ("under uploads", loaded)):
            p50, p95, p99 = percentiles(data[name])
            print(
                f"{name:<22} {phase:<15} {len(data[name]):>6} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f}"
            )
        ratio = percentiles(loaded[name])[1] / percentiles(idle[name])[1]
        print(f"{name:<22} p95 under uploads / p95 idle: {ratio:.1f}")


if __name__ == "__main__":
    main()
