"""Clips cut from the camera's own packets: remuxed, never re-encoded, from a keyframe on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import pytest

from contract.config.camera import ClipConfig, PrivacyConfig, ReconnectConfig
from edge.detectors.detections import Detections
from edge.evidence.clips import ClipRecorder
from edge.evidence.media import MediaItem
from edge.sources.packets import PacketRing
from edge.sources.pyav import PyAvSource, ReadOptions
from tests.edge.test_clips import _event


def keyframe_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [float(p.pts * p.time_base) for p in c.demux(s) if p.size and p.is_keyframe]


@pytest.mark.parametrize("name", ["bottle-detection.mp4", "one-by-one-person-detection.mp4"])
def test_clip_is_the_cameras_packets_from_the_keyframe_before_pre_roll(
    tmp_path: Path, video_path: Callable[[str], Path], name: str
) -> None:
    video = video_path(name)
    cfg = ClipConfig(pre_roll_s=3.0, post_roll_s=2.0, buffer_s=10.0)
    ready: list[MediaItem] = []
    ring = PacketRing(cfg.buffer_s)
    rec = ClipRecorder(cfg, PrivacyConfig(), ("person", "bottle"), tmp_path, ready.append, ring)
    assert rec.cutter is not None  # packets and no blur: remuxed
    start_ts, end_ts = 16.0, 20.0
    options = ReadOptions(live=False, reconnect=ReconnectConfig(), realtime=False)
    src = PyAvSource(str(video), options, packets=ring)
    started = False
    for frame in src.frames():
        events = []
        if frame.ts_s >= start_ts and not started:
            started, start_ts = True, frame.ts_s
            events = [_event("start", frame.ts_s)]
        if frame.ts_s >= end_ts and rec.cutter.jobs and rec.cutter.jobs["e-1"].end_ts is None:
            events = [_event("end", frame.ts_s)]
        rec.observe(frame, Detections.empty(), events, [])
        if frame.ts_s > end_ts + 4:
            break
    rec.close()
    clips = [m for m in ready if m.kind == "clip"]
    assert len(clips) == 1
    clip = clips[0]
    # It starts at the last keyframe at or before the pre-roll, to the millisecond.
    keys = [t for t in keyframe_times(video) if t <= start_ts - cfg.pre_roll_s + 1e-6]
    assert clip.start_ts == pytest.approx(keys[-1], abs=1e-3)
    assert clip.start_ts <= start_ts - cfg.pre_roll_s + 1e-6
    with av.open(str(clip.path)) as got, av.open(str(video)) as original:
        g, o = got.streams.video[0], original.streams.video[0]
        assert (g.width, g.height) == (o.width, o.height)  # the camera's own resolution
        frames = sum(1 for _ in got.decode(g))
        fps = float(o.average_rate)
    expected = (end_ts + cfg.post_roll_s - clip.start_ts) * fps
    assert expected - 2 <= frames <= expected + fps  # every frame, at the camera's rate
    # The last few B-frames of a cut may lack the frame they refer to and not decode.
    assert clip.duration_s == pytest.approx(frames / fps, abs=0.25)
