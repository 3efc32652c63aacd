"""Acceptance: queued clips (remuxed from a camera's packets, as boxes cut them) arrive
exactly once and byte-identical through SIGKILLs of the aggregator (during uploads) and of
the edge, so across retries of their uploads; bad uploads are refused with a clear 4xx."""

from __future__ import annotations

import hashlib
import time
import uuid
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from sqlalchemy import create_engine, func, select, text

from aggregator.db.models import MEDIA
from contract.config.camera import ReconnectConfig
from edge.delivery.outbox import Outbox
from edge.evidence.media import MediaItem
from edge.evidence.remux import RemuxJob, RemuxWriter
from edge.paths import assets_dir
from edge.sources.packets import PacketRing
from edge.sources.pyav import PyAvSource, ReadOptions
from tests.deploy import Deployment

# Slow: real edge and aggregator processes, killed and restarted.
pytestmark = pytest.mark.slow

N_CLIPS = 40
CAMERA_VIDEO = "one-by-one-person-detection.mp4"


def _clip(path: Path, seed: int) -> None:
    """A real, distinct H.264 MP4 (noise frames, so each is a few hundred KB)."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "20"}
        for i in range(20):
            f = av.VideoFrame.from_ndarray(
                rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), format="bgr24"
            )
            f.pts, f.time_base = i, Fraction(1, 10)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def _remuxed_clips(media_dir: Path, n: int) -> list[MediaItem]:
    """Clips as a camera's box cuts them: the camera's packets remuxed (edge/evidence/remux.py),
    here of a real video's packets, each a different length (so each is distinct)."""
    ring = PacketRing(1e9)
    options = ReadOptions(live=False, reconnect=ReconnectConfig(), realtime=False, decode=False)
    for _ in PyAvSource(
        str(assets_dir() / "videos" / CAMERA_VIDEO), options, packets=ring
    ).frames():
        pass
    ready: list[MediaItem] = []
    writer = RemuxWriter(ready.append)
    packets = ring.since(0.0)
    for i in range(n):
        job = RemuxJob(str(uuid.uuid4()), str(uuid.uuid4()), media_dir / f"{i}.mp4", 0.0)
        writer.put(job, [p for p in packets if p.pts_s <= 2.0 + 0.5 * i])
        writer.put(job, None)
    writer.stop()
    assert len(ready) == n
    return ready


def _queue_clips(d: Deployment, edge: str) -> dict[str, str]:
    media_dir = d.root / "edge-media"
    media_dir.mkdir(exist_ok=True)
    box = Outbox(d.root / f"{edge}-outbox.sqlite3")
    hashes = {}
    for item in _remuxed_clips(media_dir, N_CLIPS):
        digest = hashlib.sha256(item.path.read_bytes()).hexdigest()
        assert digest == item.sha256
        hashes[item.media_id] = digest
        box.put_media(item)
    box.close()
    return hashes


def _media_depth(d: Deployment, edge: str) -> int:
    box = Outbox(d.root / f"{edge}-outbox.sqlite3")
    n = box.media_depth()
    box.close()
    return n


def _check(d: Deployment, hashes: dict[str, str]) -> None:
    engine = create_engine(d.db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(MEDIA.c.media_id, MEDIA.c.sha256)).all()
    engine.dispose()
    assert sorted(r.media_id for r in rows) == sorted(hashes)  # each exactly once
    client = d.client()
    for r in rows:
        assert r.sha256 == hashes[r.media_id]
        body = client.get(f"/api/v1/media/{r.media_id}").content
        assert hashlib.sha256(body).hexdigest() == hashes[r.media_id]  # byte-identical


def _wait_drained(d: Deployment, edge: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while _media_depth(d, edge) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _media_depth(d, edge) == 0


def test_aggregator_killed_during_uploads(deployment: Deployment) -> None:
    d = deployment
    cfg = d.add_edge("box-u")
    hashes = _queue_clips(d, "box-u")
    agg = d.start_aggregator()
    d.spawn("edge", "publish", "-c", cfg.name, log="edge.log")
    kills = 0
    while _media_depth(d, "box-u") > 5 and kills < 3:
        time.sleep(0.4)
        d.kill(agg)
        kills += 1
        time.sleep(0.5)
        agg = d.start_aggregator()
    assert kills >= 1
    _wait_drained(d, "box-u")
    _check(d, hashes)


def test_edge_killed_with_clips_queued(deployment: Deployment) -> None:
    d = deployment
    cfg = d.add_edge("box-k")
    hashes = _queue_clips(d, "box-k")
    d.start_aggregator()
    for _ in range(3):
        before = _media_depth(d, "box-k")
        edge = d.spawn("edge", "publish", "-c", cfg.name, log="edge.log")
        # Killed as soon as it has made progress (however slowly the machine starts it).
        deadline = time.monotonic() + 30
        while _media_depth(d, "box-k") >= before and time.monotonic() < deadline:
            time.sleep(0.1)
        d.kill(edge)
    assert _media_depth(d, "box-k") < N_CLIPS  # some went
    d.spawn("edge", "publish", "-c", cfg.name, log="edge.log")
    _wait_drained(d, "box-k")
    _check(d, hashes)


@pytest.fixture
def uploader(deployment: Deployment) -> tuple[Deployment, str]:
    deployment.add_edge("box-v")
    deployment.start_aggregator()
    return deployment, (deployment.root / "keys" / "box-v.token").read_text().strip()


def _put(
    d: Deployment, media_id: str, body: bytes, token: str | None, **headers: str
) -> httpx.Response:
    h = {
        "Content-Type": "video/mp4",
        "X-Event-Id": str(uuid.uuid4()),
        "X-Media-Kind": "clip",
        "X-Content-SHA256": hashlib.sha256(body).hexdigest(),
        **headers,
    }
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    return httpx.put(f"{d.url}/api/v1/media/{media_id}", content=body, headers=h, timeout=30)


def _mp4(tmp: Path) -> bytes:
    _clip(tmp / "v.mp4", 1)
    return (tmp / "v.mp4").read_bytes()


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("missing token", 401, "missing upload token"),
        ("wrong token", 401, "unknown or revoked upload token"),
        ("path traversal", 404, "Not Found"),
        ("traversal as id", 422, "UUID"),
        ("not a video", 415, "body is not an MP4 video"),
        ("unsupported type", 415, "unsupported media type 'text/html'"),
        ("hash mismatch", 400, "content does not match X-Content-SHA256"),
        ("oversize", 413, "exceeds the limit"),
    ],
)
def test_bad_uploads_are_refused_with_a_clear_4xx(
    uploader: tuple[Deployment, str], tmp_path: Path, case: str, status: int, message: str
) -> None:
    d, token = uploader
    good = _mp4(tmp_path)
    mid = str(uuid.uuid4())
    if case == "missing token":
        r = _put(d, mid, good, None)
    elif case == "wrong token":
        r = _put(d, mid, good, "not-the-token")
    elif case == "path traversal":
        # A small body: a route that does not exist takes no more than the JSON body limit.
        r = httpx.put(
            f"{d.url}/api/v1/media/../../etc/passwd",
            content=good[:1024],
            headers={"Authorization": f"Bearer {token}"},
        )
    elif case == "traversal as id":
        r = _put(d, "..%5C..%5Cetc%5Cpasswd", good, token)
    elif case == "not a video":
        r = _put(d, mid, b"<html>hello</html>" * 10, token)
    elif case == "unsupported type":
        r = _put(d, mid, good, token, **{"Content-Type": "text/html"})
    elif case == "hash mismatch":
        r = _put(d, mid, good, token, **{"X-Content-SHA256": "0" * 64})
    else:
        r = _put(d, mid, good + b"\0" * (51 * 1024 * 1024), token)
    assert r.status_code == status, r.text
    assert message in r.text
    if status != 404:
        assert not list((d.root / "media").rglob("*.mp4"))  # nothing was stored


def test_same_upload_twice_is_stored_once(uploader: tuple[Deployment, str], tmp_path: Path) -> None:
    d, token = uploader
    body = _mp4(tmp_path)
    mid = str(uuid.uuid4())
    assert _put(d, mid, body, token).status_code == 201
    assert _put(d, mid, body, token).status_code == 200
    assert _put(d, str(uuid.uuid4()), body, token).status_code == 201  # same bytes, new id
    assert len(list((d.root / "media").rglob("*.mp4"))) == 1  # content-addressed: one file


def _stored_files(d: Deployment) -> list[Path]:
    """Every file under the media folder, finished or temporary."""
    return [p for p in (d.root / "media").rglob("*") if p.is_file()]


def _media_rows(d: Deployment) -> int:
    engine = create_engine(d.db_url)
    with engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(MEDIA)).scalar_one())
    engine.dispose()
    return n


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_non_finite_start_is_refused_422_and_leaves_nothing(
    uploader: tuple[Deployment, str], tmp_path: Path, value: str
) -> None:
    d, token = uploader
    r = _put(d, str(uuid.uuid4()), _mp4(tmp_path), token, **{"X-Start-Ts": value})
    assert r.status_code == 422, r.text
    assert "X-Start-Ts must be a finite number" in r.text
    assert _stored_files(d) == []
    assert _media_rows(d) == 0


def test_a_failed_row_leaves_no_file_and_the_upload_can_be_sent_again(
    uploader: tuple[Deployment, str], tmp_path: Path
) -> None:
    d, token = uploader
    engine = create_engine(d.db_url)
    with engine.begin() as conn:  # the database refuses every new media row
        conn.execute(
            text(
                "CREATE TRIGGER refuse_media BEFORE INSERT ON media "
                "BEGIN SELECT RAISE(ABORT, 'media rows refused by the test'); END"
            )
        )
    body, mid = _mp4(tmp_path), str(uuid.uuid4())
    r = _put(d, mid, body, token)
    assert r.status_code == 503, r.text  # the edge keeps the file and sends it again
    assert f"media {mid}" in r.text
    assert _stored_files(d) == []  # no file without its row, not even a temporary one
    with engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse_media"))
    engine.dispose()
    assert _put(d, mid, body, token).status_code == 201
    assert len(_stored_files(d)) == 1
    assert _media_rows(d) == 1
