"""`edge run`: every camera of one box in one process.

Threads: one decode thread per camera, one detect stage (camera chains, outbox), the
publisher and uploader (in Delivery), and the health/metrics HTTP server. Cameras with the
same detector config share one ONNX session, so a box holds one copy of each model.

Fleet control (edge/control): with ``fleet.source: central`` each camera starts from its
last good pushed config when there is one; pushes arrive through the publisher and are
applied by the detect stage; heartbeats report what every camera runs.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from contract.config.camera import SourceConfig
from contract.errors import ConfigError, StreetwatchError
from contract.fleet import CameraState
from edge.camera.detectors import DetectorCache
from edge.config import CameraConfig, load_camera_config
from edge.config.edge_box import EdgeBoxConfig
from edge.control.apply import CameraControl
from edge.control.link import ControlLink
from edge.control.startup import starting_target
from edge.control.status import FleetStatus
from edge.control.store import LastGoodStore
from edge.detectors.catalog import Manifest
from edge.worker.camera import CameraFeed
from edge.worker.health import HealthServer
from edge.worker.metrics import EdgeMetrics
from edge.worker.stage import DetectStage, StageCamera

log = logging.getLogger(__name__)


def _load_cameras(cfg: EdgeBoxConfig) -> list[tuple[CameraConfig, SourceConfig, float]]:
    if not cfg.cameras:
        raise ConfigError(
            "the edge config lists no cameras: add `cameras:` entries, each with a camera config"
        )
    out = []
    seen: dict[str, Path] = {}
    for entry in cfg.cameras:
        cam = load_camera_config(entry.config)
        source = entry.source or cam.source
        if source is None:
            raise ConfigError(
                f"{entry.config}: camera '{cam.id}' has no source; set source: in the camera "
                "config or in its cameras: entry of the edge config"
            )
        if cam.id in seen:
            raise ConfigError(
                f"{entry.config}: camera id '{cam.id}' is also the id in {seen[cam.id]}; "
                "camera ids must be unique on a box"
            )
        seen[cam.id] = entry.config
        out.append((cam, source, entry.detect_fps))
    return out


class Worker:
    def __init__(self, cfg: EdgeBoxConfig, manifest: Manifest) -> None:
        self.cfg = cfg
        cameras = _load_cameras(cfg)
        source = cfg.fleet.source
        store = LastGoodStore(cfg.fleet.state_dir)
        starts = [starting_target(local, source, store) for local, _, _ in cameras]
        # Several detector calls at once, one core each (see DetectStage): sessions left to
        # onnxruntime's choice get the cores shared out between the calls.
        calls = cfg.detect_calls_resolved
        self.detectors = DetectorCache(manifest, threads=max(1, (os.cpu_count() or 1) // calls))
        detectors = self.detectors.seed([config for _, config in starts])
        self.metrics = EdgeMetrics()
        self.stop_event = threading.Event()
        self._wake = threading.Event()
        self.status = FleetStatus(source, [c.id for c, _, _ in cameras], self._state_of)
        controls = [
            CameraControl(local, target, config, source=source, status=self.status, store=store)
            for (local, _, _), (target, config) in zip(cameras, starts, strict=True)
        ]
        self._feeds = [
            CameraFeed(
                cam,
                source,
                fps,
                self.metrics,
                # Late-bound: the stage exists by the time a camera thread reports anything.
                on_event=lambda ev: self.stage.post(ev),
                wake=self._wake,
                stop=self.stop_event,
            )
            for cam, source, fps in cameras
        ]
        self.stage = DetectStage(
            cfg,
            [
                StageCamera(feed, det, control)
                for feed, det, control in zip(self._feeds, detectors, controls, strict=True)
            ],
            self.metrics,
            detectors=self.detectors,
            link=ControlLink(self.status, self._wake),
            wake=self._wake,
            stop=self.stop_event,
        )
        self.detector_count = len({id(d) for d in detectors})
        self.http = HealthServer(
            cfg.http.host,
            cfg.http.port,
            self.metrics.registry,
            live=self._live,
            ready=self._ready,
        )

    @property
    def feeds(self) -> list[CameraFeed]:
        return self._feeds

    def _state_of(self, camera: str) -> CameraState:
        for feed in self._feeds:
            if feed.camera.id == camera:
                return feed.state
        return "starting"

    def _cameras(self) -> dict[str, Any]:
        return {
            f.camera.id: "online" if f.online else ("ended" if f.ended else "offline")
            for f in self._feeds
        }

    def _live(self) -> tuple[bool, dict[str, Any]]:
        ok = self.stage.is_alive() or not self.stage.ready.is_set()
        return ok, {"stage": "running" if ok else (self.stage.error or "stopped")}

    def _ready(self) -> tuple[bool, dict[str, Any]]:
        cams = self._cameras()
        ok = self.stage.ready.is_set() and self.stage.is_alive() and "online" in cams.values()
        return ok, {"cameras": cams}

    def start(self) -> None:
        self.http.start()
        self.stage.start()
        while not self.stage.ready.wait(0.1):
            if not self.stage.is_alive():
                self.http.stop()
                raise StreetwatchError(f"the worker could not start: {self.stage.error}")
        for feed in self._feeds:
            feed.start()
        log.info(
            "serving %d camera(s) with %d detector session(s); health and metrics at %s",
            len(self._feeds),
            self.detector_count,
            self.http.url,
        )

    def run_until_stopped(self) -> None:
        """Block until stop_event is set, the stage fails, or every camera ended."""
        while not self.stop_event.wait(0.5):
            if not self.stage.is_alive():
                break
            if all(f.ended for f in self._feeds):
                log.info("every camera's source ended")
                break

    def stop(self) -> None:
        self.stop_event.set()
        for feed in self._feeds:
            feed.halt()
        for feed in self._feeds:
            feed.join(15)
        self._wake.set()
        self.stage.join(60)
        self.http.stop()

    def wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._ready()[0]:
                return True
            time.sleep(0.1)
        return False
