"""Acceptance: `edge eval` with the real model on every sample that has rules and truth."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, run_edge

# Slow: whole sample videos through the real model.
pytestmark = pytest.mark.slow

SAMPLES = REPO / "sample_videos"


@pytest.mark.parametrize("motion", ["off", "on"])
@pytest.mark.parametrize(
    ("name", "video"),
    [
        ("bottle-detection", "asset:bottle-detection.mp4"),
        ("crowding", "generated:crowding.mp4"),
        ("parking", "generated:parking.mp4"),
    ],
)
def test_sample_events_match_truth(
    name: str, video: str, motion: str, video_path: Callable[[str], Path], generated_clips: Path
) -> None:
    """Motion gating keeps every sample's results while the detector runs on fewer frames."""
    kind, file = video.split(":")
    path = video_path(file) if kind == "asset" else generated_clips / file
    res = run_edge(
        "eval",
        str(path),
        "--config",
        str(SAMPLES / f"{name}.camera.yaml"),
        "--truth",
        str(SAMPLES / f"{name}.truth.yaml"),
        "--json",
        "--quiet",
        "--motion",
        motion,
    )
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["precision"] == 1.0, report
    assert report["recall"] == 1.0, report
    assert report["max_abs_start_error_s"] <= 2.0, report
    if motion == "off":
        assert report["detector_calls"] == report["frames"], report
    else:
        assert report["detector_calls"] < 0.7 * report["frames"], report


def test_eval_prints_a_readable_report(video_path: Callable[[str], Path], tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    res = run_edge(
        "eval",
        str(video_path("bottle-detection.mp4")),
        "--config",
        str(SAMPLES / "bottle-detection.camera.yaml"),
        "--truth",
        str(SAMPLES / "bottle-detection.truth.yaml"),
        "--events-out",
        str(events),
    )
    assert res.returncode == 0, res.stderr
    assert "precision 1.00  recall 1.00" in res.stdout
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    assert {"event_id", "type", "phase", "camera", "zone", "ts", "value"} <= lines[0].keys()
    by_id: dict[str, list[str]] = {}
    for ev in lines:
        by_id.setdefault(ev["event_id"], []).append(ev["phase"])
    # Every incident opens once and closes once (the last ones when the video ends).
    assert all(p[0] == "start" and p[-1] == "end" and p.count("start") == 1 for p in by_id.values())


def test_eval_with_a_wrong_truth_scores_below_one(
    video_path: Callable[[str], Path], tmp_path: Path
) -> None:
    truth = tmp_path / "t.json"
    truth.write_text(
        json.dumps(
            [
                {"type": "litter", "zone": "table", "start_s": 24.4, "end_s": None},
                {"type": "litter", "zone": "table", "start_s": 2.0, "end_s": 5.0},
            ]
        )
    )
    res = run_edge(
        "eval",
        str(video_path("bottle-detection.mp4")),
        "--config",
        str(SAMPLES / "bottle-detection.camera.yaml"),
        "--truth",
        str(truth),
        "--json",
        "-q",
    )
    report = json.loads(res.stdout)
    assert report["recall"] == 0.5
    assert report["precision"] == 0.25
    assert len(report["false_positives"]) == 3
