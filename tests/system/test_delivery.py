"""Acceptance: events reach the aggregator exactly once through SIGKILLs on either side,
on SQLite and PostgreSQL, between real processes over real ZeroMQ sockets."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from aggregator.db.models import EventMessageRow, EventRow
from edge.tools.loadgen import NAMESPACE
from tests.deploy import Deployment, database

# Slow: real edge and aggregator processes, killed and restarted.
pytestmark = pytest.mark.slow

COUNT = 5001  # 1667 incidents x (start, update, end)


@pytest.fixture(params=["sqlite", "postgresql"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    with database(request.param, tmp_path) as url:
        d = Deployment(tmp_path, url)
        try:
            yield d
        finally:
            d.stop_all()


def _check_exactly_once(d: Deployment, edge: str, count: int) -> None:
    engine = create_engine(d.db_url)
    incidents = count // 3
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(EventMessageRow)).scalar_one() == count
        rows = conn.execute(
            select(
                EventRow.event_id,
                EventRow.has_start,
                EventRow.has_end,
                EventRow.n_messages,
                EventRow.status,
            )
        ).all()
    engine.dispose()
    expected = {str(uuid.uuid5(NAMESPACE, f"{edge}/{i}")) for i in range(incidents)}
    assert {r.event_id for r in rows} == expected
    assert all(
        r.has_start and r.has_end and r.n_messages == 3 and r.status == "closed" for r in rows
    )


def _wait(p: object, timeout_s: float) -> None:
    p.wait(timeout_s)  # type: ignore[attr-defined]
    assert p.returncode == 0  # type: ignore[attr-defined]


def test_aggregator_killed_five_times(deployment: Deployment) -> None:
    d = deployment
    cfg = d.add_edge("box-a")
    agg = d.start_aggregator()
    edge = d.spawn(
        "edge",
        "loadgen",
        "-c",
        cfg.name,
        "--count",
        str(COUNT),
        "--rate",
        "500",
        "--exit-when-done",
        log="edge.log",
    )
    for _ in range(5):
        time.sleep(1.5)
        d.kill(agg)
        time.sleep(0.3)
        agg = d.start_aggregator()
    _wait(edge, 180)
    _check_exactly_once(d, "box-a", COUNT)
    status = d.ingest_status()
    assert status["running"] is True


def test_edge_killed_mid_stream(deployment: Deployment) -> None:
    d = deployment
    cfg = d.add_edge("box-b")
    d.start_aggregator()
    args = ("loadgen", "-c", cfg.name, "--count", str(COUNT), "--rate", "700", "--exit-when-done")
    edge = d.spawn("edge", *args, log="edge.log")
    for _ in range(3):
        time.sleep(1.5)
        d.kill(edge)
        edge = d.spawn("edge", *args, log="edge.log")
    _wait(edge, 180)
    _check_exactly_once(d, "box-b", COUNT)
