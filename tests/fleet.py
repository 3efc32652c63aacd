"""A fleet in a temp folder: one aggregator (`aggregator serve`) and N real `edge run` boxes,
one looped sample camera each, with central configs. Used by tests/system/test_fleet_modes.py
and bench/bench_mode_switch.py.

Every camera runs the crowding sample's rules (one zone, a crowding rule) on its own clip,
so an operating mode's crowding parameters reach every camera; box 0 loops the crowding clip
itself, whose crowd of twelve stays under the peacetime threshold here (PEACE_MIN_COUNT) and
over the emergency one.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.deploy import Deployment, free_port

REPO = Path(__file__).resolve().parents[1]
#: Above the sample crowd (twelve people), so peacetime never fires on it.
PEACE_MIN_COUNT = 15
#: Frames per second each box detects: six boxes share two cores with the aggregator.
DETECT_FPS = 2.0


def camera_document(camera: str, min_count: int = PEACE_MIN_COUNT) -> dict[str, Any]:
    """The central config of a fleet camera: the crowding sample's zone and rule."""
    doc = yaml.safe_load((REPO / "sample_videos" / "crowding.camera.yaml").read_text())
    doc["id"] = camera
    doc["name"] = f"Fleet camera {camera}"
    doc["detector"] = {"type": "onnx", "model": "yolox_nano", "threads": 1}
    doc["zones"][0]["rules"][0]["min_count"] = min_count
    doc["clips"] = {"enabled": False}
    return dict(doc)


@dataclass
class Box:
    name: str
    camera: str
    config: Path
    http_port: int
    proc: subprocess.Popen[bytes] | None = None


@dataclass
class Fleet:
    d: Deployment
    boxes: list[Box] = field(default_factory=list)
    _admin: httpx.Client | None = None

    @property
    def admin(self) -> httpx.Client:
        if self._admin is None:
            self._admin = self.d.client()
        return self._admin

    def add_box(self, index: int, clip: Path) -> Box:
        name, camera = f"box-{index}", f"cam-{index}"
        cfg = self.d.add_edge(name, register=False)
        self.d.run("aggregator", "edges", "add", "-c", "aggregator.yaml", name, f"keys/{name}.key")
        local = self.d.root / f"{camera}.camera.yaml"
        local.write_text(yaml.safe_dump(camera_document(camera)))
        port = free_port()
        doc = yaml.safe_load(cfg.read_text())
        doc["aggregator"]["heartbeat_s"] = 1.0
        doc["cameras"] = [
            {
                "config": str(local),
                "detect_fps": DETECT_FPS,
                "source": {"uri": str(clip), "loop": True},
            }
        ]
        doc["http"] = {"host": "127.0.0.1", "port": port}
        doc["fleet"] = {"source": "central", "state_dir": f"{name}-state"}
        cfg.write_text(yaml.safe_dump(doc))
        box = Box(name, camera, cfg, port)
        self.boxes.append(box)
        return box

    def start(self, box: Box) -> None:
        box.proc = self.d.spawn(
            "edge", "--log-level", "info", "run", "-c", str(box.config), log=f"{box.name}.log"
        )

    def stop(self, box: Box) -> None:
        """SIGTERM, as systemd stops a box, and wait for its orderly exit."""
        assert box.proc is not None
        box.proc.terminate()
        box.proc.wait(60)
        box.proc = None

    def push_configs(self, min_count: int = PEACE_MIN_COUNT) -> dict[str, int]:
        """A central config version for every camera, through the API; {camera: version}."""
        out = {}
        for box in self.boxes:
            r = self.admin.post(
                f"/api/v1/cameras/{box.camera}/configs",
                json={"config": camera_document(box.camera, min_count), "reason": "fleet set-up"},
            )
            assert r.status_code == 201, r.text
            out[box.camera] = int(r.json()["version"])
        return out

    def switch(self, mode: str, reason: str, scope: str = "city") -> dict[str, Any]:
        r = self.admin.post(
            "/api/v1/modes/switches", json={"mode": mode, "scope": scope, "reason": reason}
        )
        assert r.status_code == 201, r.text
        row: dict[str, Any] = r.json()
        return row

    def cameras(self) -> dict[str, dict[str, Any]]:
        """Every camera of the fleet page, by camera id."""
        r = self.admin.get("/api/v1/fleet")
        r.raise_for_status()
        return {c["camera"]: c for e in r.json()["edges"] for c in e["cameras"]}

    def wait_cameras(
        self, ok: Callable[[dict[str, Any]], bool], names: list[str], timeout_s: float, what: str
    ) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        cams: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            for box in self.boxes:  # a box that exited will never report: say why at once
                if box.proc is not None and box.proc.poll() is not None:
                    raise AssertionError(
                        f"{box.name} exited while waiting for {what}: {self.log(box)}"
                    )
            cams = self.cameras()
            if all(n in cams and ok(cams[n]) for n in names):
                return cams
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}: {cams}")

    def log(self, box: Box) -> str:
        return (self.d.root / f"{box.name}.log").read_text(errors="replace")[-4000:]


def apply_latencies_s(cams: dict[str, dict[str, Any]], switch: dict[str, Any]) -> list[float]:
    """Per camera: from the switch being saved to the aggregator hearing it applied."""
    return [c["applied_at"] - switch["starts_at"] for c in cams.values()]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]
