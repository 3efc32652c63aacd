"""Acceptance, evidence in object storage: clips queued on an edge reach a real aggregator
process whose evidence store is a SeaweedFS bucket (media.store: s3), through SIGKILLs of
the aggregator during the uploads. Each lands in the bucket exactly once and byte-identical,
is served back whole and by range, plays in headless Chromium, and retention
(`aggregator media prune`) removes the objects of what it removes."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, update

from aggregator.db.models import MEDIA
from aggregator.media_upload import content_key
from edge.delivery.outbox import Outbox
from edge.evidence.media import MediaItem
from tests.apihelpers import CHROMIUM_ARGS
from tests.deploy import Deployment, database
from tests.seaweed import S3Server, seaweedfs
from tests.system.evidencehelpers import video_state
from tests.system.test_evidence_delivery import _clip

# Slow: SeaweedFS, aggregator and edge processes, killed and restarted, and a browser.
pytestmark = pytest.mark.slow

N_CLIPS = 12
MAX_KILLS = 3


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[S3Server]:
    with seaweedfs(tmp_path / "seaweedfs") as server:
        yield server


@pytest.fixture
def bucketed(tmp_path: Path, s3: S3Server) -> Iterator[tuple[Deployment, str]]:
    """A deployment whose evidence goes to a fresh bucket (proxied downloads, the default)."""
    root = tmp_path / "site"
    root.mkdir()
    bucket = s3.new_bucket()
    s3.key_files(root / "keys")
    media = (
        "media:\n  store: s3\n  s3:\n"
        f"    endpoint_url: {s3.endpoint_url}\n    bucket: {bucket}\n"
        "    access_key_file: keys/s3.access_key\n    secret_key_file: keys/s3.secret_key\n"
    )
    with database("sqlite", root) as url:
        d = Deployment(root, url, extra_config=media)
        try:
            yield d, bucket
        finally:
            d.stop_all()


def _queue_clips(d: Deployment, edge: str) -> dict[str, str]:
    """N_CLIPS distinct H.264 clips in the edge's outbox: media id -> sha256."""
    folder = d.root / "edge-media"
    folder.mkdir(exist_ok=True)
    box = Outbox(d.root / f"{edge}-outbox.sqlite3")
    hashes = {}
    for i in range(N_CLIPS):
        mid = str(uuid.uuid4())
        path = folder / f"{mid}.mp4"
        _clip(path, 100 + i)
        hashes[mid] = hashlib.sha256(path.read_bytes()).hexdigest()
        size = path.stat().st_size
        item = MediaItem(
            mid, str(uuid.uuid4()), "clip", path, hashes[mid], size, "video/mp4", float(i), 2.0
        )
        box.put_media(item)
    box.close()
    return hashes


def _depth(d: Deployment, edge: str) -> int:
    box = Outbox(d.root / f"{edge}-outbox.sqlite3")
    try:
        return box.media_depth()
    finally:
        box.close()


def _upload_through_kills(d: Deployment, edge: str) -> int:
    """Start the aggregator and the edge's publisher; SIGKILL the aggregator while clips are
    still queued (up to MAX_KILLS times); wait until the queue is empty. How many kills."""
    cfg = d.add_edge(edge)
    agg = d.start_aggregator()
    d.spawn("edge", "publish", "-c", cfg.name, log="edge.log")
    kills = 0
    start = _depth(d, edge)
    while kills < MAX_KILLS and _depth(d, edge) > 1:
        # Killed once the publisher is on its way (some sent since the last start).
        deadline = time.monotonic() + 20
        while _depth(d, edge) >= start and time.monotonic() < deadline:
            time.sleep(0.05)
        d.kill(agg)
        kills += 1
        start = _depth(d, edge)
        agg = d.start_aggregator()
    deadline = time.monotonic() + 120
    while _depth(d, edge) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _depth(d, edge) == 0, (d.root / "edge.log").read_text()[-3000:]
    return kills


def test_evidence_lands_in_the_bucket_once_plays_and_is_pruned(
    bucketed: tuple[Deployment, str], s3: S3Server, tmp_path: Path, chromium: str
) -> None:
    d, bucket = bucketed
    hashes = _queue_clips(d, "box-s3")
    # The edge does not delete a clip until the aggregator answered 2xx for it.
    assert _upload_through_kills(d, "box-s3") >= 2
    engine = create_engine(d.db_url)
    with engine.connect() as conn:
        rows = {r.media_id: r.sha256 for r in conn.execute(select(MEDIA))}
    assert rows == hashes  # every clip exactly once, with its content
    objects = s3.objects(bucket)
    assert {k: hashlib.sha256(v).hexdigest() for k, v in objects.items()} == {
        content_key(h, "video/mp4"): h for h in hashes.values()
    }  # exactly one object per clip, byte-identical, nothing else
    client = d.client()
    for mid, digest in hashes.items():
        body = client.get(f"/api/v1/media/{mid}").content
        assert hashlib.sha256(body).hexdigest() == digest
    first = next(iter(hashes))
    whole = objects[content_key(hashes[first], "video/mp4")]
    part = client.get(f"/api/v1/media/{first}", headers={"Range": "bytes=1000-4999"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 1000-4999/{len(whole)}"
    assert part.content == whole[1000:5000]
    assert (
        client.get(f"/api/v1/media/{first}", headers={"Range": "bytes=99999999-"}).status_code
        == 416
    )

    _plays_in_chromium(d, chromium, list(hashes)[:2])

    # Retention: all but one clip past media.max_age_days (90 by default).
    keep = list(hashes)[-1]
    with engine.begin() as conn:
        conn.execute(
            update(MEDIA)
            .where(MEDIA.c.media_id != keep)
            .values(received_at=time.time() - 100 * 86400)
        )
    engine.dispose()
    out = d.run("aggregator", "--log-level", "warning", "media", "prune", "-c", "aggregator.yaml")
    assert f"removed {N_CLIPS - 1} evidence files" in out.stdout, out.stdout
    assert list(s3.objects(bucket)) == [content_key(hashes[keep], "video/mp4")]
    assert client.get(f"/api/v1/media/{first}").status_code == 404
    assert client.get(f"/api/v1/media/{keep}").status_code == 200


def _plays_in_chromium(d: Deployment, chromium: str, media_ids: list[str]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context()
        token = d.client().headers["Authorization"].removeprefix("Bearer ")
        context.add_cookies([{"name": "sw_session", "value": token, "url": d.url}])
        page = context.new_page()
        page.goto(f"{d.url}/healthz")  # same origin as the media
        for mid in media_ids:
            state = video_state(page, f"/api/v1/media/{mid}")
            assert state[0] >= 3  # HAVE_FUTURE_DATA: playable
            assert abs(state[1] - 2.0) <= 0.5  # 20 frames at 10 fps
        browser.close()
