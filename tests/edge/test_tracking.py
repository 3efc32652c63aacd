"""Tracking: scripted sequences for the mechanics, the real video for the acceptance figures."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from contract.config.camera import TrackingConfig
from edge.detectors.detections import Detections
from edge.pipeline.tracking import Tracker
from tests.conftest import REPO, run_edge

FPS = 10.0


def walker(t_s: float, x0: float = 50.0, speed_px_s: float = 40.0) -> list[float]:
    x = x0 + speed_px_s * t_s
    return [x, 100.0, x + 40.0, 220.0]


def step(tracker: Tracker, t_s: float, boxes: list[list[float]]) -> Detections:
    det = (
        Detections.from_arrays(boxes, [0.9] * len(boxes), [0] * len(boxes))
        if boxes
        else Detections.empty()
    )
    return tracker.update(det, t_s)


def test_id_survives_missed_detections() -> None:
    tr = Tracker(TrackingConfig(lost_track_s=1.0), FPS)
    ids = set()
    for i in range(60):
        t = i / FPS
        missed = 20 <= i < 27  # 0.7 s with no detection
        out = step(tr, t, [] if missed else [walker(t)])
        ids.update(out.tracker_id.tolist())
    assert len(ids) == 1


def test_two_walkers_crossing_keep_their_ids() -> None:
    tr = Tracker(TrackingConfig(), FPS)
    seen: dict[int, list[float]] = {}
    for i in range(50):
        t = i / FPS
        a = walker(t, x0=20, speed_px_s=60)
        b = walker(t, x0=320, speed_px_s=-60)
        b[1], b[3] = 140.0, 260.0  # the other one walks a little lower in the frame
        out = step(tr, t, [a, b])
        for tid, box in zip(out.tracker_id.tolist(), out.xyxy.tolist(), strict=True):
            seen.setdefault(tid, []).append(box[1])
    assert len(seen) == 2
    # Each id stays on one walker: its top edge never jumps between 100 and 140.
    for tops in seen.values():
        assert max(tops) - min(tops) < 20


def test_retired_tracks_free_their_state() -> None:
    tr = Tracker(TrackingConfig(lost_track_s=0.5), FPS)
    for i in range(20):
        step(tr, i / FPS, [walker(i / FPS), walker(i / FPS, x0=400)])
    assert tr.live_track_count == 2
    for i in range(20, 40):
        step(tr, i / FPS, [])
    assert tr.live_track_count == 0


@pytest.mark.slow  # a whole video through the real model
def test_person_tracks_on_one_by_one_video(
    tmp_path: Path, video_path: Callable[[str], Path]
) -> None:
    """Acceptance: tracks vs. the people counted by watching the video."""
    truth = yaml.safe_load(
        (REPO / "sample_videos" / "one-by-one-person-detection.truth.yaml").read_text()
    )
    out = tmp_path / "tracks.jsonl"
    res = run_edge(
        "replay",
        str(video_path("one-by-one-person-detection.mp4")),
        "--config",
        str(REPO / "sample_videos" / "one-by-one-person-detection.camera.yaml"),
        "--fast",
        "--quiet",
        "--tracks-out",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    spans: dict[int, list[float]] = {}
    for line in out.read_text().splitlines():
        rec = json.loads(line)
        for t in rec["tracks"]:
            if t["label"] == "person":
                s = spans.setdefault(t["track_id"], [rec["ts_s"], rec["ts_s"]])
                s[1] = rec["ts_s"]
    lasting = {k: v for k, v in spans.items() if v[1] - v[0] > 1.0}
    people = truth["people"]
    assert abs(len(lasting) - len(people)) <= 0.3 * len(people), (
        f"{len(lasting)} tracks for {len(people)} people"
    )

    covered = 0
    for p in people:
        visible = p["exit_s"] - p["enter_s"]
        best = max(
            (min(p["exit_s"], e) - max(p["enter_s"], s)) / visible for s, e in lasting.values()
        )
        covered += best >= 0.8
    assert covered >= 0.8 * len(people), f"only {covered} of {len(people)} people held by one track"
