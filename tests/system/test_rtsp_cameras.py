"""Acceptance: `edge run` on real RTSP cameras served by GStreamer's RTSP server.

One camera has a low-resolution detect substream and a full-resolution record main stream
(`roles`); its events reach the aggregator with clips remuxed from the main stream's own
packets. Another camera, on a second server, is lost when that server stops and recovers
when it comes back: `camera_offline` start and end, while the first camera is untouched.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
import yaml

from tests.conftest import REPO
from tests.deploy import Deployment, free_port
from tests.rtsphelpers import RtspServer, make_camera_streams
from tests.system.test_worker import metric, scrape, wait_for

# Slow: two RTSP servers, a real box and a real aggregator for about a minute.
pytestmark = pytest.mark.slow

SAMPLES = REPO / "sample_videos"
MAIN_WIDTH_PX, SUB_WIDTH_PX = 1280, 416
GOP_FRAMES = 10  # a keyframe a second at the clip's 10 fps


@pytest.fixture
def streams(generated_clips: Path, tmp_path: Path) -> dict[str, Path]:
    main, sub = make_camera_streams(
        generated_clips / "parking.mp4",
        tmp_path / "kerb",
        main_width_px=MAIN_WIDTH_PX,
        sub_width_px=SUB_WIDTH_PX,
        gop_frames=GOP_FRAMES,
    )
    square, _ = make_camera_streams(
        generated_clips / "crowding.mp4", tmp_path / "square", main_width_px=640, gop_frames=10
    )
    return {"main": main, "sub": sub, "square": square}


@pytest.fixture
def servers(streams: dict[str, Path], tmp_path: Path) -> Iterator[tuple[RtspServer, RtspServer]]:
    with (
        RtspServer({"main": streams["main"], "sub": streams["sub"]}) as kerb,
        RtspServer({"square": streams["square"]}, log_path=tmp_path / "square.log") as square,
    ):
        yield kerb, square


def box_config(d: Deployment, kerb: RtspServer, square: RtspServer, port: int) -> Path:
    cfg = d.add_edge("box-rtsp")
    reconnect = {"initial_delay_s": 0.5, "max_delay_s": 1.0, "read_timeout_s": 2.0}
    doc = yaml.safe_load(cfg.read_text())
    doc["http"] = {"host": "127.0.0.1", "port": port}
    doc["cameras"] = [
        {
            "config": str(SAMPLES / "parking.camera.yaml"),
            "source": {
                "uri": kerb.url("sub"),
                "roles": ["detect"],
                "inputs": [{"uri": kerb.url("main"), "roles": ["record"]}],
                "reconnect": reconnect,
            },
        },
        {
            "config": str(SAMPLES / "crowding.camera.yaml"),
            "source": {"uri": square.url("square"), "reconnect": reconnect},
        },
    ]
    cfg.write_text(yaml.safe_dump(doc))
    return cfg


def test_rtsp_cameras_substream_remuxed_clips_and_a_lost_server(
    deployment: Deployment, servers: tuple[RtspServer, RtspServer], tmp_path: Path
) -> None:
    kerb, square = servers
    d = deployment
    d.start_aggregator()
    port = free_port()
    cfg = box_config(d, kerb, square, port)
    d.spawn("edge", "--log-level", "info", "run", "-c", str(cfg), log="edge.log")
    url = f"http://127.0.0.1:{port}"
    client = d.client()

    def events(**params: str) -> list[dict[str, Any]]:
        r = client.get("/api/v1/events", params={"limit": "100", **params})
        r.raise_for_status()
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    up = "streetwatch_edge_camera_up"
    wait_for(
        lambda: all(
            metric(scrape(url), up, camera=c) == 1 for c in ("sample-kerb", "sample-square")
        ),
        60,
        "both RTSP cameras online",
    )

    # The square's server goes away and comes back; the kerb camera must not notice.
    before, before_mono_s = scrape(url), time.monotonic()
    square.stop()
    wait_for(lambda: events(type="camera_offline", camera="sample-square"), 30, "offline start")
    time.sleep(2.0)
    square.start()
    closed = wait_for(
        lambda: [
            e
            for e in events(type="camera_offline", camera="sample-square")
            if e["status"] == "closed"
        ],
        60,
        "the closed camera_offline event of sample-square",
    )
    assert len(closed) == 1
    assert closed[0]["ended_ts"] > closed[0]["started_ts"]
    after, wall_s = scrape(url), time.monotonic() - before_mono_s
    assert metric(after, up, camera="sample-square") == 1  # recovered
    assert not events(type="camera_offline", camera="sample-kerb")
    reconnects = "streetwatch_edge_camera_reconnects_total"
    assert metric(after, reconnects, camera="sample-kerb") == metric(
        before, reconnects, camera="sample-kerb"
    )
    processed = "streetwatch_edge_frames_processed_total"
    kerb_frames = metric(after, processed, camera="sample-kerb") - metric(
        before, processed, camera="sample-kerb"
    )
    # It kept detecting throughout (5 fps due; a loaded test machine may drop a few).
    assert kerb_frames >= 3.0 * wall_s, (kerb_frames, wall_s)

    # The parked car: an event detected on the substream, its clip from the main stream.
    parked = wait_for(
        lambda: [
            e
            for e in events(type="illegal_parking", camera="sample-kerb")
            if e["clip_status"] == "available"
        ],
        90,
        "an illegal_parking event with its clip",
    )
    ev = parked[0]
    body = client.get(f"/api/v1/media/{ev['clip_id']}").content
    path = tmp_path / "clip.mp4"
    path.write_bytes(body)
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.width == MAIN_WIDTH_PX  # the record stream's resolution
        frames = [f.time for f in c.decode(stream)]
    assert frames[0] == 0.0
    assert len(frames) >= 10 * 5  # at least the pre-roll at the camera's 10 fps
    start_ts, clip_start_ts = clip_times(d, ev)
    # From the keyframe at or before the pre-roll (5 s): a keyframe comes every second.
    assert start_ts - 5.0 - 1.0 - 0.05 <= clip_start_ts <= start_ts - 5.0


def clip_times(d: Deployment, ev: dict[str, Any]) -> tuple[float, float]:
    """The event's start message time and its clip's start, from the aggregator's database."""
    from sqlalchemy import create_engine, select

    from aggregator.db.models import MEDIA, MESSAGES

    engine = create_engine(d.db_url)
    try:
        with engine.connect() as conn:
            start_ts = conn.execute(
                select(MESSAGES.c.ts).where(
                    MESSAGES.c.event_id == ev["event_id"], MESSAGES.c.phase == "start"
                )
            ).scalar_one()
            clip_start_ts = conn.execute(
                select(MEDIA.c.start_ts).where(MEDIA.c.media_id == ev["clip_id"])
            ).scalar_one()
    finally:
        engine.dispose()
    return float(start_ts), float(clip_start_ts)
