"""An edge at its evidence quota is refused with 507 and loses nothing: it keeps the files,
retries, and delivers them once there is room (here: the operator raises the quota)."""

from __future__ import annotations

import time

import pytest
import yaml
from sqlalchemy import create_engine, select

from aggregator.db.models import MEDIA
from tests.deploy import Deployment
from tests.system.evidencehelpers import N_FILES, outbox_state, queue_snapshots, wait

# Slow: real edges uploading to a real aggregator.
pytestmark = pytest.mark.slow

FITS = 2  # files within the quota


@pytest.mark.slow
def test_edge_over_its_quota_keeps_its_evidence_until_there_is_room(
    deployment: Deployment,
) -> None:
    d = deployment
    cfg = d.add_edge("box-q")
    outbox = d.root / "box-q-outbox.sqlite3"
    hashes = queue_snapshots(outbox, d.root / "box-q-media")
    sizes = sorted((d.root / "box-q-media" / f"{m}.jpg").stat().st_size for m in hashes)
    config = d.root / "aggregator.yaml"
    data = yaml.safe_load(config.read_text())
    data["media"] = {"per_edge_max_bytes": sum(sizes[:FITS]) + sizes[FITS] // 2}
    config.write_text(yaml.safe_dump(data))
    agg = d.start_aggregator()
    d.spawn("edge", "publish", "-c", cfg.name, log="edge.log")

    def refused_twice() -> bool:
        depth, _, status = outbox_state(outbox)
        return depth < N_FILES and int(status.get("failures", 0)) >= 2

    wait("uploads refused for the quota", refused_twice)
    depth, dead, status = outbox_state(outbox)
    assert dead == 0  # kept, not dropped
    assert depth >= N_FILES - FITS
    assert str(status["last_error"]).startswith("507")
    assert "media.per_edge_max_bytes" in str(status["last_error"])

    data["media"] = {"per_edge_max_bytes": 10 * sum(sizes)}
    config.write_text(yaml.safe_dump(data))
    d.kill(agg)
    time.sleep(0.2)
    d.start_aggregator()
    wait("the outbox to drain", lambda: outbox_state(outbox)[0] == 0)
    assert outbox_state(outbox)[1] == 0
    engine = create_engine(d.db_url)
    with engine.connect() as conn:
        assert dict(conn.execute(select(MEDIA.c.media_id, MEDIA.c.sha256)).all()) == hashes
    engine.dispose()
