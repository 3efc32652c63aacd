"""The detect stage: one thread that owns the detectors, the pipelines and the outbox.

Each turn takes the due frame of every camera that has one, asks each camera's motion gate
whether it needs the detector, runs the detector once per shared session on all of those
frames (one batched call where the model takes batches), then tracks, applies rules, feeds
the clip recorders and puts the events in the outbox. Everything that writes the outbox
happens here, so its SQLite connection has one owner.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from edge.camera.chain import Pipeline
from edge.config.edge_box import EdgeBoxConfig
from edge.delivery.sender import Delivery
from edge.detectors.detections import Detections
from edge.evidence.clips import ClipRecorder
from edge.rules.events import Event
from edge.worker.camera import CameraFeed, DueFrame
from edge.worker.metrics import EdgeMetrics

log = logging.getLogger(__name__)

_FPS_WINDOW_S = 10.0


@dataclass
class CameraUnit:
    feed: CameraFeed
    pipeline: Pipeline
    recorder: ClipRecorder | None = None
    processed_mono_s: deque[float] = field(default_factory=deque)

    @property
    def camera_id(self) -> str:
        return self.feed.camera.id


class DetectStage(threading.Thread):
    def __init__(
        self,
        cfg: EdgeBoxConfig,
        units: list[CameraUnit],
        metrics: EdgeMetrics,
        *,
        wake: threading.Event,
        stop: threading.Event,
        drain_s: float = 5.0,
    ) -> None:
        super().__init__(name="detect-stage", daemon=True)
        self.cfg = cfg
        self.units = units
        self.metrics = metrics
        self._wake = wake
        self._stop_event = stop
        self._drain_s = drain_s
        self._health: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.error: str | None = None
        self.turns = 0

    def post(self, event: Event) -> None:
        """From a camera thread: an event that did not come from the rules (camera health)."""
        self._health.put(event)
        self._wake.set()

    def run(self) -> None:
        delivery = Delivery(self.cfg)  # here: the outbox connection belongs to this thread
        try:
            if delivery.uploads:
                for unit in self.units:
                    cam = unit.feed.camera
                    if cam.clips.enabled:
                        unit.recorder = ClipRecorder(
                            cam.clips,
                            cam.privacy,
                            unit.pipeline.class_names,
                            delivery.media_dir / cam.id,
                            delivery.media_ready,
                        )
            delivery.start()
            self.ready.set()
            next_housekeeping = 0.0
            while not self._stop_event.is_set():
                self._wake.wait(0.5)
                self._wake.clear()
                self._turn(delivery)
                if time.monotonic() >= next_housekeeping:
                    self._housekeeping(delivery)
                    next_housekeeping = time.monotonic() + 1.0
            self._finish(delivery)
        except Exception as exc:
            log.exception("detect stage failed")
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            delivery.stop()

    def _send(self, delivery: Delivery, camera: str, events: list[Event]) -> None:
        delivery.send(events)
        for ev in events:
            self.metrics.events.labels(camera=camera, type=ev.type, phase=ev.phase).inc()

    def _drain_health(self, delivery: Delivery) -> None:
        while not self._health.empty():
            ev = self._health.get_nowait()
            self._send(delivery, ev.camera, [ev])

    def _turn(self, delivery: Delivery) -> None:
        self._drain_health(delivery)
        due = [(u, d) for u in self.units if (d := u.feed.take()) is not None]
        if not due:
            return
        self.turns += 1
        groups: dict[int, list[tuple[CameraUnit, DueFrame]]] = {}
        for unit, frame in due:
            groups.setdefault(id(unit.pipeline.detector), []).append((unit, frame))
        for group in groups.values():
            self._run_group(delivery, group)

    def _run_group(self, delivery: Delivery, group: list[tuple[CameraUnit, DueFrame]]) -> None:
        wanted = [(u, d) for u, d in group if u.pipeline.wants_detection(d.frame)]
        raw: dict[int, Detections] = {}
        per_frame_ms = 0.0
        if wanted:
            detector = wanted[0][0].pipeline.detector
            t0 = time.perf_counter()
            found = detector.detect_batch([d.frame.image_bgr for _, d in wanted])
            took_s = time.perf_counter() - t0
            per_frame_ms = took_s * 1000 / len(wanted)
            self.metrics.detector_seconds.labels(
                model=detector.model_name, batch=str(len(wanted))
            ).observe(took_s)
            raw = {id(u): dets for (u, _), dets in zip(wanted, found, strict=True)}
        for unit, due in group:
            labels = {"camera": unit.camera_id}
            dets = raw.get(id(unit))
            result = unit.pipeline.advance(due.frame, dets, per_frame_ms if dets else 0.0)
            events = result.events
            if unit.recorder is not None:
                events = unit.recorder.observe(
                    due.frame, result.tracks, events, unit.pipeline.zones
                )
            self._send(delivery, unit.camera_id, events)
            now = time.monotonic()
            self.metrics.frames_processed.labels(**labels).inc()
            if dets is None:
                self.metrics.frames_skipped.labels(**labels).inc()
            else:
                self.metrics.detector_calls.labels(**labels).inc()
            self.metrics.lag_s.labels(**labels).set(now - due.decoded_mono_s)
            unit.processed_mono_s.append(now)

    def _housekeeping(self, delivery: Delivery) -> None:
        delivery.send([])  # moves finished evidence files into the outbox
        self.metrics.outbox_depth.set(delivery.outbox.depth())
        self.metrics.outbox_media_depth.set(delivery.outbox.media_depth())
        self.metrics.outbox_refused.set(delivery.refused)
        now = time.monotonic()
        for unit in self.units:
            times = unit.processed_mono_s
            while times and times[0] < now - _FPS_WINDOW_S:
                times.popleft()
            self.metrics.fps.labels(camera=unit.camera_id).set(len(times) / _FPS_WINDOW_S)

    def _finish(self, delivery: Delivery) -> None:
        """Stopping: close open incidents, finish clips, give delivery a moment."""
        for unit in self.units:
            closing = unit.pipeline.finish()
            if unit.recorder is not None:
                closing = [unit.recorder.attach(e) for e in closing]
                unit.recorder.close()
            self._send(delivery, unit.camera_id, closing)
        self._drain_health(delivery)
        if not delivery.drain(self._drain_s):
            log.info(
                "stopping with %d messages in the outbox; they are sent on the next start",
                delivery.outbox.depth(),
            )
