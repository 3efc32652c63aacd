"""`edge run`: several cameras in one process, a camera that fails and comes back, a real
aggregator receiving what the rules and the camera health produce, metrics and probes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO
from tests.deploy import Deployment, free_port

# Slow: `edge run` with real cameras and a real aggregator.
pytestmark = pytest.mark.slow

SAMPLES = REPO / "sample_videos"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def metric(m: dict[Any, float], name: str, **labels: str) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            got = check()
        except httpx.HTTPError:
            got = None
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def add_cameras(cfg: Path, cameras: list[dict[str, Any]], port: int) -> None:
    doc = yaml.safe_load(cfg.read_text())
    doc["cameras"] = cameras
    doc["http"] = {"host": "127.0.0.1", "port": port}
    cfg.write_text(yaml.safe_dump(doc))


def test_cameras_fail_alone_come_back_and_operators_see_it(
    deployment: Deployment, generated_clips: Path, tmp_path: Path
) -> None:
    deployment.start_aggregator()
    cfg = deployment.add_edge("box-run")
    late = tmp_path / "late" / "parking.mp4"  # appears only after the worker started
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 5000)
    corrupt_cfg = tmp_path / "corrupt.camera.yaml"
    corrupt_cfg.write_text("id: broken-cam\ndetection: {classes: [person]}\n")
    port = free_port()
    add_cameras(
        cfg,
        [
            {
                "config": str(SAMPLES / "crowding.camera.yaml"),
                "source": {"uri": str(generated_clips / "crowding.mp4"), "loop": True},
            },
            {
                "config": str(SAMPLES / "parking.camera.yaml"),
                "source": {
                    "uri": str(late),
                    "loop": True,
                    "reconnect": {"initial_delay_s": 0.5, "max_delay_s": 1.0},
                },
            },
            {
                "config": str(corrupt_cfg),
                "source": {"uri": str(corrupt), "reconnect": {"initial_delay_s": 0.5}},
            },
        ],
        port,
    )
    edge = deployment.spawn("edge", "--log-level", "info", "run", "-c", str(cfg), log="edge.log")
    url = f"http://127.0.0.1:{port}"
    log = deployment.root / "edge.log"
    try:
        wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, 60, "edge /readyz")
        ready = httpx.get(f"{url}/readyz").json()
        assert ready["cameras"]["sample-square"] == "online"
        assert ready["cameras"]["sample-kerb"] == "offline"
        assert ready["cameras"]["broken-cam"] == "offline"
        assert httpx.get(f"{url}/healthz").status_code == 200

        # The missing camera comes back: its source appears.
        late.parent.mkdir()
        shutil.copy(generated_clips / "parking.mp4", late)
        wait_for(
            lambda: metric(scrape(url), "streetwatch_edge_camera_up", camera="sample-kerb") == 1,
            30,
            "camera sample-kerb back online",
        )
        client = deployment.client()

        def events(**params: str) -> list[dict[str, Any]]:
            r = client.get("/api/v1/events", params={"limit": "100", **params})
            r.raise_for_status()
            items: list[dict[str, Any]] = r.json()["items"]
            return items

        # Operators see each camera's outage: the one that came back is closed.
        offline = wait_for(
            lambda: [
                e
                for e in events(type="camera_offline", camera="sample-kerb")
                if e["status"] == "closed"
            ],
            30,
            "the closed camera_offline event of sample-kerb",
        )
        assert offline[0]["ended_ts"] > offline[0]["started_ts"]
        broken = wait_for(
            lambda: events(type="camera_offline", camera="broken-cam"),
            30,
            "the camera_offline event of broken-cam",
        )
        assert broken[0]["status"] == "open"
        assert len(broken) == 1  # retries of a camera still down are one incident
        # The healthy camera kept working throughout: its crowd is reported.
        wait_for(lambda: events(type="crowding", camera="sample-square"), 60, "a crowding event")

        m = scrape(url)
        assert metric(m, "streetwatch_edge_camera_up", camera="broken-cam") == 0
        assert metric(m, "streetwatch_edge_camera_reconnects_total", camera="broken-cam") >= 2
        assert metric(m, "streetwatch_edge_frames_processed_total", camera="sample-square") > 20
        assert metric(m, "streetwatch_edge_frames_processed_total", camera="broken-cam") == 0
        assert metric(m, "streetwatch_edge_events_total", camera="sample-kerb",
                      type="camera_offline", phase="end") == 1  # fmt: skip
    finally:
        edge.send_signal(signal.SIGTERM)
        code = edge.wait(60)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text
    assert "broken-cam offline" in text
    assert "corrupt.mp4" in text


def test_run_config_errors_name_the_problem(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.yaml"
    base = (
        "edge_id: box-x\naggregator:\n  endpoint: tcp://127.0.0.1:1\n"
        "  server_public_key: a.key\n  secret_key: b.key_secret\n"
    )
    cases = {
        "": "lists no cameras",
        f"cameras:\n  - config: {SAMPLES / 'crowding.camera.yaml'}\n": "has no source",
        (
            f"cameras:\n  - config: {SAMPLES / 'crowding.camera.yaml'}\n    source: {{uri: a.mp4}}\n"
            f"  - config: {SAMPLES / 'crowding.camera.yaml'}\n    source: {{uri: b.mp4}}\n"
        ): "camera ids must be unique",
        "cameras:\n  - config: nowhere.yaml\n    detect_fps: 0\n": "detect_fps",
    }
    for extra, message in cases.items():
        cfg.write_text(base + extra)
        res = subprocess.run(
            [sys.executable, "-m", "edge.cli", "run", "-c", str(cfg)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 1, res.stderr
        assert message in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
