"""An edge may report only its own cameras and events (issue 12, finding 3): a camera is bound to
the first edge that reports it, and a message about another edge's event or camera is nacked,
counted as unauthorised and changes nothing. Existing databases are upgraded with every camera
bound to the edge that reported it first."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select, text

from aggregator.db.engine import MIGRATIONS, migrate
from aggregator.db.models import EVENTS
from contract import wire
from tests.aggregator.ingest_helpers import dealer, raw_event, send_until_answered
from tests.deploy import Deployment, database

# Slow: real aggregator and edge processes.
pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def deployment(kind: str, tmp_path: Path) -> Iterator[Deployment]:
    with database(kind, tmp_path) as url:
        d = Deployment(tmp_path, url)
        try:
            yield d
        finally:
            d.stop_all()


def _event_row(url: str, event_id: str) -> dict[str, object] | None:
    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(select(EVENTS).where(EVENTS.c.event_id == event_id)).first()
    engine.dispose()
    return None if row is None else dict(row._mapping)


def _unauthorised_metric(d: Deployment) -> float:
    text = httpx.get(f"{d.url}/metrics", timeout=5).text
    return next(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "streetwatch_ingest_rejects_total" and s.labels == {"reason": "unauthorised"}
    )


def test_edge_cannot_touch_another_edges_event_or_camera(deployment: Deployment) -> None:
    d = deployment
    d.add_edge("box-a")
    d.add_edge("box-b")
    d.start_aggregator()
    a, b = dealer(d, "box-a"), dealer(d, "box-b")
    event = uuid.uuid4()
    start = raw_event(i=event.bytes, c="cam-a", p=0, v=5.0, l=["person"], ts=100.0, st=100.0)
    got = send_until_answered(a, "box-a", {1: start}, timeout_s=20)
    assert got[1].kind == wire.KIND_ACK
    own = uuid.uuid4()
    attempts = {
        # box-b closes box-a's event with a forged value and labels.
        1: raw_event(i=event.bytes, c="cam-a", p=2, v=42.0, l=["forged"], ts=200.0, st=100.0),
        # The same event said to be on box-b's own camera: still box-a's event.
        2: raw_event(i=event.bytes, c="cam-b", p=1, v=42.0, ts=150.0, st=100.0),
        # A new event on box-a's camera.
        3: raw_event(c="cam-a", p=0),
        # Its own event on its own camera: fine, and the camera is box-b's from now on.
        4: raw_event(i=own.bytes, c="cam-b", p=0),
    }
    got = send_until_answered(b, "box-b", attempts, timeout_s=20)
    assert {s: e.kind for s, e in got.items()} == {
        1: wire.KIND_NACK,
        2: wire.KIND_NACK,
        3: wire.KIND_NACK,
        4: wire.KIND_ACK,
    }
    assert f"event {event} belongs to another edge" in got[1].payload.decode()
    assert f"event {event} belongs to another edge" in got[2].payload.decode()
    assert "camera 'cam-a' belongs to another edge" in got[3].payload.decode()

    row = _event_row(d.db_url, str(event))
    assert row is not None
    assert (row["edge_id"], row["status"], row["value"], row["labels"]) == (
        "box-a",
        "open",
        5.0,
        ["person"],
    )
    assert row["n_messages"] == 1
    assert not row["has_end"]
    own_row = _event_row(d.db_url, str(own))
    assert own_row is not None
    assert own_row["edge_id"] == "box-b"

    # box-a now cannot use box-b's camera either.
    got = send_until_answered(a, "box-a", {2: raw_event(c="cam-b")}, timeout_s=20)
    assert got[2].kind == wire.KIND_NACK
    assert "camera 'cam-b' belongs to another edge" in got[2].payload.decode()
    a.close(0)
    b.close(0)

    assert int(d.ingest_status()["unauthorised"]) == 4  # type: ignore[call-overload]
    assert _unauthorised_metric(d) == 4


def test_upgrade_binds_cameras_to_the_edge_that_reported_them_first(
    kind: str, tmp_path: Path
) -> None:
    with database(kind, tmp_path) as url:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        command.upgrade(cfg, "0005")  # a database from before camera binding
        engine = create_engine(url)
        rows = [
            ("cam-1", "box-a", 10.0),
            ("cam-1", "box-b", 20.0),  # reported later by another edge: box-a keeps it
            ("cam-2", "box-b", 5.0),
            ("cam-3", "box-c", 7.0),
            ("cam-3", "box-c", 7.0),
        ]
        with engine.begin() as conn:
            for camera, edge, at in rows:
                conn.execute(
                    EVENTS.insert().values(
                        event_id=str(uuid.uuid4()), edge_id=edge, camera=camera, zone="z",
                        rule="r", type="crowding", status="open", started_ts=at, last_ts=at,
                        value=1.0, unit="persons", severity="low", boxes=[], labels=[],
                        has_start=True, has_end=False, n_messages=1, received_at=at,
                        updated_at=at,
                    )
                )  # fmt: skip
        migrate(url)  # what `aggregator serve` does on start
        with engine.connect() as conn:
            rows_now = conn.execute(text("SELECT camera_id, edge_id FROM camera_edges")).all()
            bound = {str(c): str(e) for c, e in rows_now}
        engine.dispose()
    assert bound == {"cam-1": "box-a", "cam-2": "box-b", "cam-3": "box-c"}
