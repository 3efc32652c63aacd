"""The replicated aggregator on this machine, with one command: PostgreSQL (the machine's at
127.0.0.1:5432, else a throwaway embedded one), SeaweedFS for evidence, N `aggregator
ingest` and M `aggregator api` replicas, and one edge box that lists every ingest endpoint
and generates synthetic events. Prints the URLs and the login, then runs until Ctrl-C (or
--seconds), stops everything and drops its database. --kill-every S SIGKILLs a random
replica every S seconds and restarts it, to watch delivery carry on.

    .venv/bin/python scripts/replicas.py [--ingest 3] [--api 2] [--kill-every 5]

A developer tool: it uses the test helpers (tests/), so it needs the `dev` extra.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select

from aggregator.db.models import MESSAGES
from tests.deploy import Deployment, database
from tests.replicas import ReplicaSet
from tests.seaweed import seaweedfs


def _stored(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(MESSAGES)).scalar_one())
    finally:
        engine.dispose()


def _media_config(endpoint_url: str, bucket: str) -> str:
    return (
        "media:\n  store: s3\n  s3:\n"
        f"    endpoint_url: {endpoint_url}\n    bucket: {bucket}\n"
        "    access_key_file: keys/s3.access_key\n    secret_key_file: keys/s3.secret_key\n"
    )


def run(args: argparse.Namespace, root: Path) -> None:
    with seaweedfs(root / "seaweedfs") as s3, database("postgresql", root) as url:
        s3.key_files(root / "keys")
        d = Deployment(root, url, extra_config=_media_config(s3.endpoint_url, s3.new_bucket()))
        rs = ReplicaSet(d)
        for i in range(args.ingest):
            rs.add_ingest(f"ingest-{i}")
        for i in range(args.api):
            rs.add_api(f"api-{i}", port=d.http_port if i == 0 else None)
        try:
            print(
                f"starting {args.ingest} ingest and {args.api} API replicas in {root}", flush=True
            )
            rs.start_all()
            d.client()  # makes the admin account
            rs.add_edge("box-0")
            d.spawn(
                "edge",
                "loadgen",
                "-c",
                "box-0.yaml",
                "--count",
                "100000000",
                "--rate",
                str(args.rate),
                log="box-0.log",
            )
            for r in rs.replicas:
                print(f"  {r.name:<10} {r.kind:<7} probes {r.probe_url}")
            print(f"review UI: {d.url}/ui/  (admin / {d.ADMIN_PASSWORD}); logs in {root}")
            print("Ctrl-C stops everything", flush=True)
            _watch(args, rs, url)
        finally:
            d.stop_all()


def _watch(args: argparse.Namespace, rs: ReplicaSet, url: str) -> None:
    rng = random.Random()
    start = time.monotonic()
    next_kill = start + (args.kill_every or float("inf"))
    next_report = start + 5
    try:
        while args.seconds is None or time.monotonic() - start < args.seconds:
            time.sleep(0.2)
            if time.monotonic() >= next_kill:
                victim = rng.choice(rs.replicas)
                rs.kill(victim)
                rs.start(victim, wait=False)
                print(f"killed and restarted {victim.name}", flush=True)
                next_kill += args.kill_every
            if time.monotonic() >= next_report:
                print(f"{_stored(url)} event messages stored", flush=True)
                next_report += 5
    except KeyboardInterrupt:
        print("stopping", flush=True)
    print(f"{_stored(url)} event messages stored", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ingest", type=int, default=3, help="ingest replicas (default 3)")
    ap.add_argument("--api", type=int, default=2, help="API replicas (default 2)")
    ap.add_argument("--rate", type=float, default=20.0, help="the edge's messages/s")
    ap.add_argument("--kill-every", type=float, default=0.0, help="kill a replica every S s")
    ap.add_argument("--seconds", type=float, default=None, help="stop after this long")
    args = ap.parse_args()
    if args.ingest < 1 or args.api < 1:
        ap.error("--ingest and --api need at least 1 each")
    with tempfile.TemporaryDirectory(prefix="streetwatch-replicas-") as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
