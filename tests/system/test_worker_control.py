"""Fleet control of a real `edge run` worker over CurveZMQ, the test playing the aggregator
with a ROUTER: the heartbeat lists the camera, an emergency push with a lower crowding
threshold applies on the running stream, a push that does not build is refused while the
camera keeps running, and a box restarted without the aggregator starts from its last good
config and mode."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from contract import fleet
from tests.deploy import free_port
from tests.edge.test_control import camera_doc
from tests.edge.test_control_link import Router, edge_config_text, keys_for

# Slow: a worker process detecting a looped clip for about a minute, stopped and restarted.
pytestmark = pytest.mark.slow

EDGE = "box-fleet"
CAMERA = "sample-square"
EMERGENCY = fleet.Applied(config_version=3, mode="emergency", mode_rev=12)
OVERRIDES = fleet.ModeOverrides(("emergency",), {"crowding": {"min_count": 4}})


def start(root: Path) -> subprocess.Popen[bytes]:
    log = (root / "edge.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "--log-level", "info", "run", "-c", "edge.yaml"],
        cwd=root,
        stdout=log,
        stderr=log,
    )


def stop(proc: subprocess.Popen[bytes], root: Path) -> str:
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(60)
    text = (root / "edge.log").read_text(errors="replace")
    assert code == 0, text[-3000:]
    return text


def camera(hb: fleet.Heartbeat) -> fleet.CameraStatus | None:
    return next((c for c in hb.cameras if c.camera == CAMERA), None)


def write_box(root: Path, clip: Path, zmq_port: int) -> None:
    # The camera's own file: a threshold far above the clip's crowd of twelve.
    (root / "square.camera.yaml").write_text(yaml.safe_dump(camera_doc(30)))
    doc: dict[str, Any] = yaml.safe_load(edge_config_text(EDGE, zmq_port))
    doc["aggregator"]["heartbeat_s"] = 0.5
    doc["cameras"] = [
        {
            "config": "square.camera.yaml",
            "detect_fps": 4,
            "source": {"uri": str(clip), "loop": True},
        }
    ]
    doc["http"] = {"host": "127.0.0.1", "port": free_port()}
    doc["fleet"] = {"source": "central", "state_dir": "state"}
    (root / "edge.yaml").write_text(yaml.safe_dump(doc))


def test_a_worker_applies_refuses_and_restarts_from_its_last_good_config(
    tmp_path: Path, generated_clips: Path
) -> None:
    port = free_port()
    keys, allowed = keys_for(tmp_path, EDGE)
    write_box(tmp_path, generated_clips / "crowding.mp4", port)
    router = Router(keys, allowed, port)
    proc = start(tmp_path)
    try:
        hb = router.wait_heartbeat(
            lambda h: (c := camera(h)) is not None and c.state == "online", 60, "the camera"
        )
        assert (hb.source, camera(hb).applied) == ("central", fleet.Applied())  # type: ignore[union-attr]

        # An emergency with a central config: applied, reported, shown in the heartbeats.
        push = fleet.ConfigPush(CAMERA, EMERGENCY, config=camera_doc(8), overrides=OVERRIDES)
        router.push(EDGE, 1, push)
        report = router.wait_report(1, 20)
        assert (report.ok, report.error, report.applied) == (True, None, EMERGENCY)
        router.wait_heartbeat(
            lambda h: (c := camera(h)) is not None and c.applied == EMERGENCY and c.error is None,
            10,
            "the applied emergency",
        )
        # Its events are raised under the emergency.
        deadline = time.monotonic() + 90
        while not [e for e in router.events if e.type == "crowding"]:
            assert time.monotonic() < deadline, "no crowding event under the emergency"
            router.pump(0.5)
        assert {(e.mode, e.drill) for e in router.events if e.type == "crowding"} == {
            ("emergency", False)
        }

        # A push that does not build: refused, the camera keeps its config and keeps running.
        bad_doc = camera_doc(8)
        bad_doc["zones"][0]["rules"][0]["classes"] = ["persn"]
        bad = fleet.ConfigPush(
            CAMERA, fleet.Applied(4, "emergency", 12), config=bad_doc, overrides=OVERRIDES
        )
        router.push(EDGE, 2, bad)
        report = router.wait_report(2, 20)
        assert not report.ok
        assert report.error is not None
        assert "zones[0].rules[0].classes: unknown class 'persn' for model yolox_nano" in (
            report.error
        )
        refused_at = time.monotonic()
        hb = router.wait_heartbeat(
            lambda h: (
                (c := camera(h)) is not None
                and c.error == report.error
                and time.monotonic() - refused_at > 2
                and c.fps > 0
            ),
            20,
            "the refusal with the camera still detecting",
        )
        assert camera(hb).applied == EMERGENCY  # type: ignore[union-attr]
        # A camera this box does not serve.
        router.push(EDGE, 3, fleet.ConfigPush("no-such-cam", EMERGENCY))
        report = router.wait_report(3, 20)
        assert not report.ok
        assert "camera 'no-such-cam' is not served by edge box" in str(report.error)
    finally:
        first_log = stop(proc, tmp_path)
        router.close()
    assert "Traceback" not in first_log
    assert (tmp_path / "state" / f"{CAMERA}.json").is_file()

    # Restarted while the aggregator is away: it runs the last good config and mode.
    proc = start(tmp_path)
    try:
        url = yaml.safe_load((tmp_path / "edge.yaml").read_text())["http"]["port"]
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the restarted worker did not get ready"
            time.sleep(0.3)
        router = Router(keys, allowed, port)
        hb = router.wait_heartbeat(lambda h: camera(h) is not None, 30, "the camera")
        first = camera(router.heartbeats[0])
        assert first is not None
        assert first.applied == EMERGENCY
        assert first.error is None
    finally:
        second_log = stop(proc, tmp_path)
        router.close()
    assert "starts from its last good config v3, mode emergency" in second_log
