"""Ring buffer, privacy blur and the clip recorder on real frames."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from contract.config.camera import ClipConfig, PrivacyConfig
from edge.detectors.detections import Detections
from edge.evidence.clips import ClipRecorder
from edge.evidence.media import MediaItem
from edge.evidence.privacy import blur_boxes
from edge.evidence.ringbuffer import FrameRing
from edge.rules.events import Event
from edge.sources import open_source
from edge.sources.base import Frame


def test_ring_keeps_seconds_at_fps_and_bounded_bytes(video_path: Callable[[str], Path]) -> None:
    ring = FrameRing(seconds=4.0, fps=10.0, width_px=320, jpeg_quality=80)
    with open_source(str(video_path("bottle-detection.mp4")), realtime=False) as src:
        sizes = []
        for f in src.frames():
            ring.push(f.ts_s, f.image_bgr)
            sizes.append(ring.bytes)
            if f.ts_s > 12:
                break
    assert 40 <= len(ring) <= 41  # 4 s at 10 fps, from a 30 fps video
    assert ring.since(12.0 - 1.0)[0].ts_s >= 11.0
    assert max(sizes[-100:]) < 1.2 * min(sizes[-100:])  # steady: memory does not grow
    frame = cv2.imdecode(np.frombuffer(ring.since(0)[0].jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert frame.shape == (180, 320, 3)


def test_blur_hides_the_upper_body_only(image_path: Callable[[str], Path]) -> None:
    image = cv2.imread(str(image_path("000000001000.jpg")))
    box = np.asarray([[262, 91, 357, 423]], np.float32)  # a person (hand-checked in detect tests)
    out = blur_boxes(image, box, upper_fraction=0.5)

    def sharpness(img: np.ndarray, y0: int, y1: int) -> float:
        return float(
            cv2.Laplacian(cv2.cvtColor(img[y0:y1, 262:357], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
        )

    assert sharpness(out, 91, 250) < 0.1 * sharpness(image, 91, 250)  # head: unrecognisable
    assert sharpness(out, 270, 423) == pytest.approx(
        sharpness(image, 270, 423)
    )  # legs: as they were
    assert np.array_equal(out[:, :250], image[:, :250])  # elsewhere untouched


def _event(phase: str, ts: float) -> Event:
    return Event(
        "e-1",
        "litter",
        phase,
        "cam",
        "zone",
        "litter",
        ts,
        ts - 1,
        1.0,
        "s",
        "low",  # type: ignore[arg-type]
        boxes=((400.0, 150.0, 500.0, 300.0),),
        labels=("bottle",),
    )


@pytest.mark.parametrize("blur", [False, True])
def test_recorder_writes_clip_with_pre_roll_and_snapshot(
    tmp_path: Path, video_path: Callable[[str], Path], blur: bool
) -> None:
    ready: list[MediaItem] = []
    rec = ClipRecorder(
        ClipConfig(pre_roll_s=3, post_roll_s=1, fps=10),
        PrivacyConfig(blur_people=blur),
        ("person", "bottle"),
        tmp_path,
        ready.append,
    )
    people = Detections.from_arrays([[0, 0, 200, 360]], [0.9], [0], [1])
    original = None
    with open_source(str(video_path("bottle-detection.mp4")), realtime=False) as src:
        for f in src.frames():
            if f.index == 300:
                original = f.image_bgr.copy()
            events = [_event("start", f.ts_s)] if f.index == 300 else []
            events += [_event("end", f.ts_s)] if f.index == 450 else []
            out = rec.observe(Frame(f.image_bgr, f.ts_s, f.index), people, events, [])
            if events:
                assert out[0].clip_id
                assert out[0].snapshot_id
            if f.index > 520:
                break
    rec.close()
    clip = next(m for m in ready if m.kind == "clip")
    snap = next(m for m in ready if m.kind == "snapshot")
    start = 300 / src.fps
    assert clip.start_ts == pytest.approx(start - 3, abs=0.11)
    expected = (450 / src.fps + 1) - (start - 3)
    with av.open(str(clip.path)) as c:
        times = [fr.time for fr in c.decode(c.streams.video[0])]
    assert times[-1] + 0.1 == pytest.approx(expected, abs=0.25)
    assert clip.duration_s == pytest.approx(expected, abs=0.25)
    shot = cv2.imread(str(snap.path))
    assert original is not None
    assert shot.shape == original.shape
    # The dark frame edge at the left lies in the upper half of the "person" box.
    diff = np.abs(shot[30:170, 0:40].astype(int) - original[30:170, 0:40].astype(int)).mean()
    assert (diff > 6) == blur, diff
    outside = np.abs(
        shot[200:300, 250:380].astype(int) - original[200:300, 250:380].astype(int)
    ).mean()
    assert outside < 3  # elsewhere the snapshot is the frame


def test_close_past_its_deadline_ends_clips_with_what_they_have(
    tmp_path: Path, video_path: Callable[[str], Path]
) -> None:
    """Stopping a box never waits on an encoding backlog: past the deadline, queued frames are
    skipped, and the clip is still a whole, playable file whose duration is what it holds."""
    ready: list[MediaItem] = []
    rec = ClipRecorder(
        ClipConfig(pre_roll_s=3, post_roll_s=1, fps=10, queue_frames=2000),
        PrivacyConfig(),
        ("person", "bottle"),
        tmp_path,
        ready.append,
    )
    people = Detections.from_arrays([[0, 0, 200, 360]], [0.9], [0], [1])
    with open_source(str(video_path("bottle-detection.mp4")), realtime=False) as src:
        for f in src.frames():
            events = [_event("start", f.ts_s)] if f.index == 100 else []
            rec.observe(Frame(f.image_bgr, f.ts_s, f.index), people, events, [])
            if f.index == 250:
                # The stop's deadline passes while frames are still queued (as when encoding
                # fell behind): the encoder takes no more of them.
                rec.encoder.deadline_mono_s = 0.0
            if f.index > 400:  # the incident is still open: its clip is still recording
                break
    rec.close(deadline_mono_s=0.0)  # long past
    clip = next(m for m in ready if m.kind == "clip")
    with av.open(str(clip.path)) as c:
        times = [fr.time for fr in c.decode(c.streams.video[0])]
    assert rec.encoder.skipped_frames >= 40  # frames 251..400 sampled at 10 of 30 fps
    assert len(times) == rec.encoder.encoded_frames
    assert clip.duration_s == pytest.approx(times[-1] + 0.1, abs=0.15)
