"""Acceptance (issue 13): 3 ingest replicas, 1 API replica and PostgreSQL; 4 edges push
10,000 messages in all while a replica is SIGKILLed every 5 s and restarted (at least 10
kills). Afterwards every message is stored exactly once and nothing is dead-lettered.
bench/bench_replicas.py runs the 100-kill version."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import REPO
from tests.deploy import Deployment, database
from tests.replicas import ReplicaSet, outbox_counts, stored_per_edge

pytestmark = pytest.mark.slow

EDGES = 4
PER_EDGE = 2500
RATE_PER_S = 50.0  # each edge's messages take ~50 s: the kills happen while they flow
KILL_EVERY_S = 5.0
MIN_KILLS = 10


def _edges(rs: ReplicaSet) -> list[tuple[str, subprocess.Popen[bytes]]]:
    edges = []
    for i in range(EDGES):
        name = f"box-{i}"
        rs.add_edge(name)
        p = rs.d.spawn(
            "edge",
            "loadgen",
            "-c",
            f"{name}.yaml",
            "--count",
            str(PER_EDGE),
            "--rate",
            str(RATE_PER_S),
            "--camera-prefix",
            f"{name}-cam",
            "--exit-when-done",
            log=f"{name}.log",
        )
        edges.append((name, p))
    return edges


def test_replicas_survive_kills_exactly_once(tmp_path: Path) -> None:
    with database("postgresql", tmp_path) as url:
        d = Deployment(tmp_path, url)
        rs = ReplicaSet(d)
        for i in range(3):
            rs.add_ingest(f"ingest-{i}")
        api = rs.add_api("api-0", port=d.http_port)
        try:
            rs.start_all()
            edges = _edges(rs)
            rng = random.Random(13)
            kills: list[str] = []
            order = rs.replicas
            deadline = time.monotonic() + 100
            next_kill = time.monotonic() + KILL_EVERY_S
            while time.monotonic() < deadline:
                done = all(p.poll() is not None for _, p in edges)
                if done and len(kills) >= MIN_KILLS:
                    break
                if time.monotonic() >= next_kill:
                    # Every replica in turn, in a shuffled order each round: the API too.
                    if len(kills) % len(rs.replicas) == 0:
                        order = rng.sample(rs.replicas, len(rs.replicas))
                    victim = order[len(kills) % len(rs.replicas)]
                    rs.kill(victim)
                    kills.append(victim.name)
                    rs.start(victim, wait=False)  # restarted at once; it migrates, then binds
                    next_kill += KILL_EVERY_S
                time.sleep(0.05)
            for r in rs.replicas:
                rs.wait_ready(r)
            for name, p in edges:
                p.wait(30)
                assert p.returncode == 0, (tmp_path / f"{name}.log").read_text()[-3000:]

            assert len(kills) >= MIN_KILLS, kills
            assert set(kills) == {r.name for r in rs.replicas}, kills  # each died at least twice
            stored = stored_per_edge(url)
            # Exactly once: every seq, one row each, each merged into its event once.
            assert stored == {f"box-{i}": (PER_EDGE, PER_EDGE, PER_EDGE) for i in range(EDGES)}
            for i in range(EDGES):
                assert outbox_counts(tmp_path / f"box-{i}-outbox.sqlite3") == (0, 0)

            # The API replica shows the fleet: every ingest replica live again, every edge heard.
            status = d.client().get("/api/v1/ingest").json()
            live = {r["replica_id"] for r in status["replicas"] if r["live"]}
            assert {"ingest-0", "ingest-1", "ingest-2", "api-0"} <= live, status["replicas"]
            assert status["scope"] == "fleet"
            assert status["running"] is True
            assert set(status["edges"]) == {f"box-{i}" for i in range(EDGES)}
            # Each ingest replica answers its own probes and metrics.
            for r in rs.replicas:
                if r.kind == "ingest":
                    metrics = httpx.get(r.probe_url.replace("/readyz", "/metrics"), timeout=5)
                    assert "streetwatch_ingest_messages" in metrics.text
            print(f"kills: {len(kills)} ({', '.join(kills)}); api starts {api.starts}")
        finally:
            d.stop_all()


@pytest.mark.parametrize("kind", ["ingest", "api", "serve"])
def test_sigterm_stops_a_replica_in_order(tmp_path: Path, kind: str) -> None:
    """SIGTERM ends a replica cleanly: exit 0, and its row leaves the replicas list (uvicorn
    raises the signal again after serving; the process must still reach its orderly stop,
    which once died on the ingest thread's join)."""
    with database("postgresql", tmp_path) as url:
        d = Deployment(tmp_path, url)
        rs = ReplicaSet(d)
        if kind == "serve":
            r = rs.add_serve("one", d.http_port)
        else:
            r = rs.add_ingest("one") if kind == "ingest" else rs.add_api("one")
        try:
            rs.start(r)
            assert "one" in _replica_ids(url)
            assert r.proc is not None
            r.proc.send_signal(signal.SIGTERM)
            assert r.proc.wait(15) == 0, rs.log(r)
            assert "one" not in _replica_ids(url)
        finally:
            d.stop_all()


def _replica_ids(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("SELECT replica_id FROM replicas")).scalars())
    finally:
        engine.dispose()


def test_local_replicated_setup_runs_with_one_command() -> None:
    """README's one command for the replicated set-up: it starts, stores events through a
    replica kill, and stops whole (exit 0) when its time is up."""
    script = REPO / "scripts" / "replicas.py"
    options = ("--ingest", "2", "--api", "1", "--kill-every", "4", "--seconds", "9")
    res = subprocess.run(
        [sys.executable, str(script), *options],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "review UI: http://127.0.0.1:" in res.stdout
    assert "killed and restarted" in res.stdout
    stored = [int(ln.split()[0]) for ln in res.stdout.splitlines() if ln.endswith("stored")]
    assert stored, res.stdout
    assert stored[-1] > 50, res.stdout
