"""The detect stage: one thread that owns the cameras' chains and the outbox.

Each turn takes the due frame of every camera that has one, asks each camera's motion gate
whether it needs the detector, runs the detector once per shared session on all of those
frames (one batched call where the model takes batches), then advances each camera's chain:
it tracks, applies the rules, records evidence and hands the events to its sink, which puts
them in the outbox. Everything that writes the outbox happens here, so its SQLite
connection has one owner.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from edge.camera.chain import CameraChain, EventSink, EvidenceTarget
from edge.config.edge_box import EdgeBoxConfig
from edge.delivery.sender import Delivery, MediaInbox, media_dir, uploads_evidence
from edge.detectors import Detector
from edge.detectors.detections import Detections
from edge.rules.events import Event
from edge.sources.base import Frame
from edge.worker.camera import CameraFeed, DueFrame
from edge.worker.metrics import EdgeMetrics

log = logging.getLogger(__name__)

_FPS_WINDOW_S = 10.0


@dataclass
class CameraUnit:
    feed: CameraFeed
    chain: CameraChain
    processed_mono_s: deque[float] = field(default_factory=deque)

    @property
    def camera_id(self) -> str:
        return self.feed.camera.id


@dataclass(frozen=True)
class GroupDetections:
    """The detector's output for one turn's frames of cameras that share it."""

    #: Per frame, in the group's order; None where the camera's motion gate skipped it.
    raw: list[Detections | None]
    #: Frames in the one detector call, and how long it took.
    batch: int = 0
    took_s: float = 0.0

    @property
    def per_frame_ms(self) -> float:
        return self.took_s * 1000 / self.batch if self.batch else 0.0


def detect_group(group: Sequence[tuple[CameraChain, Frame]]) -> GroupDetections:
    """Ask each camera's gate, then run the shared detector once on every frame it let through
    (one batched call where the model takes batches). Each chain's ``advance`` does the rest."""
    wanted = [i for i, (chain, frame) in enumerate(group) if chain.wants_detection(frame)]
    raw: list[Detections | None] = [None] * len(group)
    if not wanted:
        return GroupDetections(raw)
    t0 = time.perf_counter()
    found = group[wanted[0]][0].detector.detect_batch([group[i][1].image_bgr for i in wanted])
    took_s = time.perf_counter() - t0
    for i, dets in zip(wanted, found, strict=True):
        raw[i] = dets
    return GroupDetections(raw, len(wanted), took_s)


class DetectStage(threading.Thread):
    """Owns every camera's chain; ``cameras`` pairs each feed with its (shared) detector."""

    def __init__(
        self,
        cfg: EdgeBoxConfig,
        cameras: Sequence[tuple[CameraFeed, Detector]],
        metrics: EdgeMetrics,
        *,
        wake: threading.Event,
        stop: threading.Event,
        drain_s: float = 5.0,
        clips_stop_s: float = 2.0,
    ) -> None:
        super().__init__(name="detect-stage", daemon=True)
        self.cfg = cfg
        self.metrics = metrics
        self._wake = wake
        self._stop_event = stop
        self._drain_s = drain_s
        # At stop, clip encoding gets this long to catch up; then clips end with what they have.
        self._clips_stop_s = clips_stop_s
        self._health: queue.SimpleQueue[Event] = queue.SimpleQueue()
        # Recorders hand finished evidence to this queue; the Delivery made in run() drains it.
        self._media: MediaInbox = queue.Queue()
        self._delivery: Delivery | None = None
        self.units = [CameraUnit(feed, self._chain(feed, det)) for feed, det in cameras]
        self.ready = threading.Event()
        self.error: str | None = None
        self.turns = 0

    def _chain(self, feed: CameraFeed, detector: Detector) -> CameraChain:
        cam = feed.camera
        evidence = None
        if uploads_evidence(self.cfg):
            evidence = EvidenceTarget(media_dir(self.cfg) / cam.id, self._media.put)
        return CameraChain(
            cam,
            detector,
            fps=feed.detect_fps,
            evidence=evidence,
            sinks=[EventSink(partial(self._send, cam.id))],
        )

    @property
    def delivery(self) -> Delivery:
        if self._delivery is None:
            raise RuntimeError("the detect stage's delivery is used before the stage runs")
        return self._delivery

    def post(self, event: Event) -> None:
        """From a camera thread: an event that did not come from the rules (camera health)."""
        self._health.put(event)
        self._wake.set()

    def run(self) -> None:
        # Made here: the outbox connection belongs to this thread.
        delivery = self._delivery = Delivery(self.cfg, self._media)
        try:
            delivery.start()
            self.ready.set()
            next_housekeeping = 0.0
            while not self._stop_event.is_set():
                self._wake.wait(0.5)
                self._wake.clear()
                self._turn()
                if time.monotonic() >= next_housekeeping:
                    self._housekeeping(delivery)
                    next_housekeeping = time.monotonic() + 1.0
            self._finish(delivery)
        except Exception as exc:
            log.exception("detect stage failed")
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            delivery.stop()

    def _send(self, camera: str, events: list[Event]) -> None:
        self.delivery.send(events)
        for ev in events:
            self.metrics.events.labels(camera=camera, type=ev.type, phase=ev.phase).inc()

    def _drain_health(self) -> None:
        while not self._health.empty():
            ev = self._health.get_nowait()
            self._send(ev.camera, [ev])

    def _turn(self) -> None:
        self._drain_health()
        due = [(u, d) for u in self.units if (d := u.feed.take()) is not None]
        if not due:
            return
        self.turns += 1
        groups: dict[int, list[tuple[CameraUnit, DueFrame]]] = {}
        for unit, frame in due:
            groups.setdefault(id(unit.chain.detector), []).append((unit, frame))
        for group in groups.values():
            self._run_group(group)

    def _run_group(self, group: list[tuple[CameraUnit, DueFrame]]) -> None:
        detected = detect_group([(u.chain, d.frame) for u, d in group])
        if detected.batch:
            self.metrics.detector_seconds.labels(
                model=group[0][0].chain.detector.model_name, batch=str(detected.batch)
            ).observe(detected.took_s)
        for (unit, due), raw in zip(group, detected.raw, strict=True):
            labels = {"camera": unit.camera_id}
            unit.chain.advance(due.frame, raw, 0.0 if raw is None else detected.per_frame_ms)
            now = time.monotonic()
            self.metrics.frames_processed.labels(**labels).inc()
            if raw is None:
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
        """Stopping: close open incidents and finish their clips, give delivery a moment."""
        deadline_mono_s = time.monotonic() + self._clips_stop_s
        for unit in self.units:
            # Its closing events reach the outbox through its sink.
            unit.chain.finish(deadline_mono_s)
        self._drain_health()
        if not delivery.drain(self._drain_s):
            log.info(
                "stopping with %d messages in the outbox; they are sent on the next start",
                delivery.outbox.depth(),
            )
