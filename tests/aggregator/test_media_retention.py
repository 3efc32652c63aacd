"""Retention that one edge cannot push around: a legal hold on the evidence of confirmed
events and open cases, per-edge quotas, and eviction taken from the edge holding the most."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from aggregator.db.models import MEDIA
from tests.aggregator.mediahelpers import KB4, World
from tests.deploy import database


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same rules on both databases (the hold and the sums are SQL)."""
    with database(request.param, tmp_path) as url:
        yield url


def test_case_evidence_outlives_age_and_another_edges_junk(tmp_path: Path, db: str) -> None:
    w = World(tmp_path, db, max_total_bytes=5 * KB4, max_age_days=1)
    w.edge("box-a")
    w.edge("box-b")
    case_event = w.event("box-a")
    case_media = w.stored("box-a", case_event, KB4)  # the oldest file of all
    w.review(case_event, "confirm")  # now evidence of an open case
    with w.engine.begin() as conn:  # and past the age limit
        conn.execute(
            update(MEDIA)
            .where(MEDIA.c.media_id == case_media)
            .values(received_at=time.time() - 10 * 86400)
        )
    junk = [w.stored("box-b", w.event("box-b"), KB4) for _ in range(8)]
    w.media.prune()
    assert w.present(case_media)  # held: neither age nor another edge's junk evicts it
    assert w.total() <= 5 * KB4
    assert sum(w.present(m) for m in junk) == 4


def test_size_retention_takes_from_the_edge_holding_the_most(tmp_path: Path, db: str) -> None:
    w = World(tmp_path, db, max_total_bytes=5 * KB4)
    w.edge("box-a")
    w.edge("box-b")
    small = [w.stored("box-a", w.event("box-a"), KB4) for _ in range(2)]  # oldest
    flood = [w.stored("box-b", w.event("box-b"), KB4) for _ in range(5)]
    w.media.prune()
    assert all(w.present(m) for m in small)
    assert [w.present(m) for m in flood] == [False, False, True, True, True]


def test_per_edge_quota_refuses_with_507_then_makes_room_from_dismissed(
    tmp_path: Path, db: str
) -> None:
    w = World(tmp_path, db, per_edge_max_bytes=2 * KB4 + 100)
    w.edge("box-a")
    w.edge("box-b")
    first_event = w.event("box-b")
    first = w.stored("box-b", first_event, KB4)
    w.stored("box-b", w.event("box-b"), KB4)
    third_event = w.event("box-b")
    files_before = len(list((tmp_path / "media").rglob("*.jpg")))
    r = w.upload("box-b", third_event, KB4)
    assert r.status_code == 507, r.text
    assert "box-b" in r.json()["detail"]
    assert "media.per_edge_max_bytes" in r.json()["detail"]
    assert len(list((tmp_path / "media").rglob("*.jpg"))) == files_before
    assert not [p for p in (tmp_path / "media").rglob("*") if p.is_file() and ".part" in p.name]
    # Another edge is not affected by box-b's quota.
    w.stored("box-a", w.event("box-a"), KB4)
    # Dismissed evidence of the same edge makes room; nothing unreviewed was touched.
    w.review(first_event, "dismiss")
    assert w.upload("box-b", third_event, KB4).status_code == 201
    assert not w.present(first)
    status = w.client.get("/api/v1/ingest", headers=w.session).json()["media"]
    assert status["refused_uploads"]["edge_quota"] == 1
    assert status["edges"]["box-b"]["bytes"] == 2 * KB4


def test_store_full_of_held_evidence_is_refused_and_reported(tmp_path: Path, db: str) -> None:
    w = World(tmp_path, db, max_total_bytes=3 * KB4)
    w.edge("box-a")
    w.edge("box-b")
    for _ in range(2):
        ev = w.event("box-a")
        w.stored("box-a", ev, KB4)
        w.review(ev, "confirm")
    status = w.client.get("/api/v1/ingest", headers=w.session).json()["media"]
    assert status["full_of_held"] is False
    r = w.upload("box-b", w.event("box-b"), 2 * KB4)
    assert r.status_code == 507, r.text
    assert "legal hold" in r.json()["detail"]
    status = w.client.get("/api/v1/ingest", headers=w.session).json()["media"]
    assert status["full_of_held"] is True
    assert status["held_bytes"] == 2 * KB4
    assert status["max_total_bytes"] == 3 * KB4
    assert status["refused_uploads"]["full_of_held"] == 1
    metrics = w.client.get("/metrics").text
    assert "streetwatch_media_full_of_held 1.0" in metrics
    assert 'streetwatch_media_uploads_refused_total{reason="full_of_held"} 1.0' in metrics
    assert f'streetwatch_media_bytes{{state="held"}} {float(2 * KB4)}' in metrics
    # A small upload that fits is taken, and the state clears.
    w.stored("box-b", w.event("box-b"), KB4 // 2)
    assert (
        w.client.get("/api/v1/ingest", headers=w.session).json()["media"]["full_of_held"] is False
    )


def test_evidence_of_an_emergency_is_kept_as_long_as_its_mode_says(tmp_path: Path, db: str) -> None:
    w = World(tmp_path, db, max_age_days=1)
    w.media.max_age_days_by_mode = {"emergency": 365.0}
    w.edge("box-a")
    daily = w.stored("box-a", w.event("box-a"), KB4)
    flood = w.stored("box-a", w.event("box-a", mode="emergency"), KB4)
    with w.engine.begin() as conn:  # both past the ordinary age limit, within the mode's
        conn.execute(update(MEDIA).values(received_at=time.time() - 30 * 86400))
    w.media.prune()
    assert not w.present(daily)
    assert w.present(flood)
    with w.engine.begin() as conn:  # and past the mode's too
        conn.execute(update(MEDIA).values(received_at=time.time() - 400 * 86400))
    w.media.prune()
    assert not w.present(flood)
