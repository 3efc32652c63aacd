"""One camera chain: `edge replay`, `edge eval` and the worker's detect stage (two cameras
sharing one detector session, batched) make the same events for the same sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge.camera.chain import CameraChain, EventSink
from edge.camera.detectors import shared_detectors
from edge.config import load_camera_config
from edge.detectors.catalog import load_manifest
from edge.rules.events import Event
from edge.sources import open_source
from edge.worker.stage import detect_group
from tests.conftest import REPO, run_edge

# Slow: whole sample videos through replay, eval and the worker stage.
pytestmark = pytest.mark.slow

SAMPLES = REPO / "sample_videos"


def _normalised(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Event messages with their random ids replaced by the incident's order of appearance."""
    order: dict[str, int] = {}
    out = []
    for rec in records:
        rec = dict(rec)
        rec["event_id"] = order.setdefault(rec["event_id"], len(order))
        out.append(rec)
    return out


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _worker_stage_events(videos: dict[str, Path]) -> dict[str, list[dict[str, Any]]]:
    """Run the cameras the way the detect stage does: per turn one frame of every camera,
    one detector call for the group, then each chain's advance; at the end finish."""
    cfgs = {name: load_camera_config(SAMPLES / f"{name}.camera.yaml") for name in videos}
    detectors = shared_detectors(list(cfgs.values()), load_manifest())
    assert len({id(d) for d in detectors}) == 1  # one session serves both cameras
    sent: dict[str, list[Event]] = {name: [] for name in videos}
    sources = {name: open_source(str(path), realtime=False) for name, path in videos.items()}
    chains = {
        name: CameraChain(cfg, det, fps=sources[name].fps, sinks=[EventSink(sent[name].extend)])
        for (name, cfg), det in zip(cfgs.items(), detectors, strict=True)
    }
    # The rule engine's zone objects are the chain's: each polygon is rasterised once.
    for chain in chains.values():
        assert [id(z) for z in chain.zones] == [id(z) for z, _ in chain.rules.zones]
    frames = {name: iter(src.frames()) for name, src in sources.items()}
    while group := [
        (chains[n], f) for n, it in frames.items() if (f := next(it, None)) is not None
    ]:
        detected = detect_group(group)
        for i, (chain, frame) in enumerate(group):
            chain.advance(frame, detected.result(i)[0])
    for name, chain in chains.items():
        chain.finish()
        sources[name].close()
    return {n: [json.loads(json.dumps(e.to_dict())) for e in evs] for n, evs in sent.items()}


def test_replay_eval_and_the_worker_stage_make_the_same_events(
    generated_clips: Path, tmp_path: Path
) -> None:
    video = generated_clips / "crowding.mp4"
    config = SAMPLES / "crowding.camera.yaml"
    replayed, evaluated = tmp_path / "replay.jsonl", tmp_path / "eval.jsonl"
    res = run_edge(
        "replay", str(video), "-c", str(config), "--fast", "-q", "--events-out", str(replayed)
    )
    assert res.returncode == 0, res.stderr
    res = run_edge(
        "eval",
        str(video),
        "-c",
        str(config),
        "-t",
        str(SAMPLES / "crowding.truth.yaml"),
        "--json",
        "-q",
        "--events-out",
        str(evaluated),
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["recall"] == 1.0

    staged = _worker_stage_events({"crowding": video, "parking": generated_clips / "parking.mp4"})

    reference = _normalised(_jsonl(replayed))
    # One incident: the crowd (an update only if the gate let a higher count be seen).
    phases = [r["phase"] for r in reference]
    assert (phases[0], phases[-1], len(phases) - phases.count("update")) == ("start", "end", 2)
    assert _normalised(_jsonl(evaluated)) == reference
    assert _normalised(staged["crowding"]) == reference
    # The other camera of the batch found its own incident, unmixed with the first's.
    assert {e["camera"] for e in staged["parking"]} == {"sample-kerb"}
    assert [e["phase"] for e in staged["parking"]] == ["start", "update", "end"]
