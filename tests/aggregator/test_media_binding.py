"""Evidence is bound to the edge that uploads it: no edge may attach files to another edge's
event, or take over another edge's upload."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select

from aggregator.db.models import MEDIA
from tests.aggregator.mediahelpers import KB4, World


def _files(tmp: Path) -> int:
    return sum(1 for p in (tmp / "media").rglob("*") if p.is_file())


def test_evidence_for_another_edges_event_is_refused_403(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.edge("box-a")
    w.edge("box-b")
    a_event = w.event("box-a")
    r = w.upload("box-b", a_event, KB4)
    assert r.status_code == 403, r.text
    assert f"event {a_event} belongs to another edge" in r.json()["detail"]
    assert _files(tmp_path) == 0
    assert w.upload("box-a", a_event, KB4).status_code == 201  # its own edge may


def test_evidence_of_an_unknown_event_binds_the_event_to_its_uploader(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.edge("box-a")
    w.edge("box-b")
    not_yet_known = str(uuid.uuid4())
    media_id = str(uuid.uuid4())
    assert w.upload("box-a", not_yet_known, KB4, media_id).status_code == 201
    with w.engine.connect() as conn:
        assert conn.execute(select(MEDIA.c.edge_id)).scalars().all() == ["box-a"]
    r = w.upload("box-b", not_yet_known, KB4)
    assert r.status_code == 403, r.text
    assert f"event {not_yet_known} has evidence from another edge" in r.json()["detail"]
    # Nor can box-b answer for box-a's upload (same media id).
    r = w.upload("box-b", str(uuid.uuid4()), KB4, media_id)
    assert r.status_code == 403, r.text
    assert f"media {media_id} was uploaded by another edge" in r.json()["detail"]
    assert _files(tmp_path) == 1
