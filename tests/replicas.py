"""A replicated aggregator in a temp folder: N ingest and M API processes on one PostgreSQL,
and edges that list every ingest endpoint. Used by tests/system/test_replicas.py and
bench/bench_replicas.py."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from edge.delivery.outbox import Outbox
from tests.deploy import Deployment, free_port


@dataclass
class Replica:
    kind: str  # ingest | api | serve
    name: str
    args: tuple[str, ...]
    probe_url: str  # its /readyz
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0


@dataclass
class ReplicaSet:
    """Ingest and API replicas of one Deployment (its database, keys and aggregator.yaml)."""

    d: Deployment
    replicas: list[Replica] = field(default_factory=list)

    def add_ingest(self, name: str) -> Replica:
        zmq_port, health_port = free_port(), free_port()
        args = (
            "ingest",
            "-c",
            "aggregator.yaml",
            "--replica-id",
            name,
            "--bind",
            f"tcp://127.0.0.1:{zmq_port}",
            "--health-port",
            str(health_port),
        )
        r = Replica("ingest", name, args, f"http://127.0.0.1:{health_port}/readyz")
        self.replicas.append(r)
        return r

    def add_api(self, name: str, port: int | None = None) -> Replica:
        port = port or free_port()
        args = ("api", "-c", "aggregator.yaml", "--replica-id", name, "--port", str(port))
        r = Replica("api", name, args, f"http://127.0.0.1:{port}/readyz")
        self.replicas.append(r)
        return r

    def add_serve(self, name: str, port: int) -> Replica:
        """`aggregator serve` (API and ingest in one) with aggregator.yaml's bind and port."""
        args = ("serve", "-c", "aggregator.yaml", "--replica-id", name)
        r = Replica("serve", name, args, f"http://127.0.0.1:{port}/readyz")
        self.replicas.append(r)
        return r

    @property
    def endpoints(self) -> list[str]:
        return [r.args[r.args.index("--bind") + 1] for r in self.replicas if r.kind == "ingest"]

    def start(self, r: Replica, wait: bool = True) -> None:
        r.proc = self.d.spawn("aggregator", "--log-level", "warning", *r.args, log=f"{r.name}.log")
        r.starts += 1
        if wait:
            self.wait_ready(r)

    def start_all(self) -> None:
        for r in self.replicas:
            self.start(r, wait=False)
        for r in self.replicas:
            self.wait_ready(r)

    def wait_ready(self, r: Replica, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert r.proc is not None
            assert r.proc.poll() is None, self.log(r)
            try:
                if httpx.get(r.probe_url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"replica {r.name} did not become ready:\n{self.log(r)}")

    def kill(self, r: Replica) -> None:
        assert r.proc is not None
        self.d.kill(r.proc)

    def log(self, r: Replica) -> str:
        return (self.d.root / f"{r.name}.log").read_text(errors="replace")[-3000:]

    def add_edge(self, name: str) -> Path:
        """An edge that lists every ingest endpoint of the set (instead of one endpoint)."""
        cfg = self.d.add_edge(name, register=False)
        listed = "".join(f"\n    - {e}" for e in self.endpoints)
        body = cfg.read_text()
        start = body.index("  endpoint: ")
        end = body.index("\n", start)
        cfg.write_text(body[:start] + f"  endpoints:{listed}" + body[end:])
        self.d.run("aggregator", "edges", "add", "-c", "aggregator.yaml", name, f"keys/{name}.key")
        return cfg


def stored_per_edge(db_url: str) -> dict[str, tuple[int, int, int]]:
    """Per edge: message rows, distinct seqs, and the messages merged into its events."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT m.edge_id, m.n, m.distinct_seq, COALESCE(e.merged, 0) FROM "
                    "(SELECT edge_id, COUNT(*) AS n, COUNT(DISTINCT seq) AS distinct_seq "
                    " FROM event_messages GROUP BY edge_id) m LEFT JOIN "
                    "(SELECT edge_id, SUM(n_messages) AS merged FROM events GROUP BY edge_id) e "
                    "ON e.edge_id = m.edge_id"
                )
            ).all()
    finally:
        engine.dispose()
    return {str(e): (int(n), int(s), int(m)) for e, n, s, m in rows}


def outbox_counts(path: Path) -> tuple[int, int]:
    """Messages waiting and dead-lettered in an edge's outbox."""
    box = Outbox(path)
    try:
        return box.depth(), box.dead_count()
    finally:
        box.close()
