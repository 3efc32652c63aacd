"""The detect stage: one thread that owns the cameras' chains and the outbox.

Each turn takes the due frame of every camera that has one, asks each camera's motion gate
whether it needs the detector, queues the frames it let through on the detector's threads
(one call per frame, or one batched call where the model takes batches; one session per
model, called by ``detect_calls`` threads at once, one core each), and advances each
camera's chain as soon as its detections are in (cameras the gate skipped first): it
tracks, applies the rules, records evidence and hands the events to its sink, which puts
them in the outbox. Inference thus overlaps the stage's Python work.
Everything that writes the outbox happens here, so its SQLite connection has one owner.

Between turns the stage applies the config pushes the publisher received (edge/control):
a camera's chain is reconfigured in place while its decode thread keeps running, or keeps
what it runs when the new config does not build; the outcome goes back as a report. Verify
requests become looks at the results of the camera's chain (edge/worker/verify.py), judged
after a few seconds of frames: no second decoder or detector.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
import numpy.typing as npt

from contract.fleet import ConfigPush, ConfigReport
from edge.camera.chain import CameraChain, EventSink, EvidenceTarget
from edge.camera.detectors import DetectorCache
from edge.config.edge_box import EdgeBoxConfig
from edge.control.apply import CameraControl
from edge.control.link import ControlLink
from edge.delivery.sender import Delivery, MediaInbox, media_dir, uploads_evidence
from edge.detectors import Detector
from edge.detectors.detections import Detections
from edge.rules.events import Event
from edge.sources.base import Frame
from edge.worker.camera import CameraFeed, DueFrame
from edge.worker.metrics import EdgeMetrics
from edge.worker.verify import Verifier

log = logging.getLogger(__name__)

_FPS_WINDOW_S = 10.0


@dataclass(frozen=True)
class StageCamera:
    """What the stage is given per camera: its decode thread, its (shared) detector session
    and its fleet control (what it runs, which the chain is built from)."""

    feed: CameraFeed
    detector: Detector
    control: CameraControl


@dataclass
class CameraUnit:
    feed: CameraFeed
    chain: CameraChain
    control: CameraControl
    processed_mono_s: deque[float] = field(default_factory=deque)

    @property
    def camera_id(self) -> str:
        return self.feed.camera.id


@dataclass(frozen=True)
class ChunkResult:
    """One detector call: its frames' detections and how long it took."""

    detections: list[Detections]
    took_s: float

    @property
    def per_frame_ms(self) -> float:
        return self.took_s * 1000 / len(self.detections) if self.detections else 0.0


@dataclass(frozen=True)
class GroupDetections:
    """The detector's work for one turn's frames of cameras that share it, under way.

    Calls run one after another on the detector's own thread while the stage advances the
    cameras whose results are in: inference (in onnxruntime, without the GIL) overlaps the
    Python work of tracking, rules and evidence instead of waiting for it.
    """

    #: Per frame, in the group's order: (its call, its index in that call), or None where the
    #: camera's motion gate skipped the detector.
    slots: list[tuple[Future[ChunkResult], int] | None]
    calls: list[Future[ChunkResult]]

    def order(self) -> list[int]:
        """Frames without detector work first (nothing to wait for), then in call order."""
        skipped = [i for i, slot in enumerate(self.slots) if slot is None]
        return skipped + [i for i, slot in enumerate(self.slots) if slot is not None]

    def result(self, i: int) -> tuple[Detections | None, float]:
        """Frame i's detections (waiting for its call) and the per-frame time of that call."""
        slot = self.slots[i]
        if slot is None:
            return None, 0.0
        chunk = slot[0].result()
        return chunk.detections[slot[1]], chunk.per_frame_ms


def _detect_chunk(detector: Detector, images: list[npt.NDArray[np.uint8]]) -> ChunkResult:
    t0 = time.perf_counter()
    found = detector.detect_batch(images)
    return ChunkResult(found, time.perf_counter() - t0)


def detect_group(
    group: Sequence[tuple[CameraChain, Frame]], pool: Executor | None = None
) -> GroupDetections:
    """Ask each camera's gate, then start the shared detector on every frame it let through:
    one call per frame for a one-frame model, one batched call where the model takes batches.
    ``pool`` runs the calls (the stage's detector thread); without one they run here."""
    wanted = [i for i, (chain, frame) in enumerate(group) if chain.wants_detection(frame)]
    slots: list[tuple[Future[ChunkResult], int] | None] = [None] * len(group)
    calls: list[Future[ChunkResult]] = []
    if not wanted:
        return GroupDetections(slots, calls)
    detector = group[wanted[0]][0].detector
    batched = getattr(detector, "batch_size", 1) != 1
    chunks = [wanted] if batched else [[i] for i in wanted]
    for chunk in chunks:
        images = [group[i][1].image_bgr for i in chunk]
        if pool is None:
            call: Future[ChunkResult] = Future()
            call.set_result(_detect_chunk(detector, images))
        else:
            call = pool.submit(_detect_chunk, detector, images)
        calls.append(call)
        for k, i in enumerate(chunk):
            slots[i] = (call, k)
    return GroupDetections(slots, calls)


class DetectStage(threading.Thread):
    """Owns every camera's chain; ``detectors`` holds the box's sessions (for pushes that
    change a camera's detector), ``link`` brings pushes and takes reports."""

    def __init__(
        self,
        cfg: EdgeBoxConfig,
        cameras: Sequence[StageCamera],
        metrics: EdgeMetrics,
        *,
        detectors: DetectorCache,
        link: ControlLink,
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
        self.detectors = detectors
        self.link = link
        self.units = [CameraUnit(c.feed, self._chain(c), c.control) for c in cameras]
        self._by_camera = {u.camera_id: u for u in self.units}
        snapshots = media_dir(cfg) if uploads_evidence(cfg) else None
        self.verifier = Verifier(cfg.edge_id, link, snapshots, self._media.put)
        self.ready = threading.Event()
        self.error: str | None = None
        self.turns = 0
        # The detector's own threads: calls queue there while this one advances the cameras.
        self._detector_pool: ThreadPoolExecutor | None = None

    def _chain(self, camera: StageCamera) -> CameraChain:
        control = camera.control
        evidence = None
        if uploads_evidence(self.cfg):
            evidence = EvidenceTarget(
                media_dir(self.cfg) / control.camera, self._media.put, camera.feed.packets
            )
        return CameraChain(
            control.config,
            camera.detector,
            fps=camera.feed.detect_fps,
            evidence=evidence,
            sinks=[EventSink(partial(self._send, control.camera))],
            mode=control.target.applied.mode,
            drill=control.target.drill,
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
        delivery = self._delivery = Delivery(self.cfg, self._media, self.link)
        calls = self.cfg.detect_calls_resolved
        self._detector_pool = ThreadPoolExecutor(calls, thread_name_prefix="detector")
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
            self._detector_pool.shutdown(wait=True)
            delivery.stop()

    def _send(self, camera: str, events: list[Event]) -> None:
        self.delivery.send(events)
        for ev in events:
            self.metrics.events.labels(camera=camera, type=ev.type, phase=ev.phase).inc()
        if events:
            self.link.status.event(camera, time.time())

    def _drain_health(self) -> None:
        while not self._health.empty():
            ev = self._health.get_nowait()
            unit = self._by_camera.get(ev.camera)
            if unit is not None:  # raised under the camera's current operating mode
                ev = replace(ev, mode=unit.chain.mode, drill=unit.chain.drill)
            self._send(ev.camera, [ev])

    def _apply_pushes(self) -> None:
        pushes = self.link.take()
        for seq, push in pushes:
            self.link.report(seq, self._apply(push))
        if pushes:
            self.detectors.keep([u.chain.detector for u in self.units])

    def _apply(self, push: ConfigPush) -> ConfigReport:
        unit = self._by_camera.get(push.camera)
        if unit is None:
            return ConfigReport(
                push.camera,
                push.applied,
                ok=False,
                error=f"camera '{push.camera}' is not served by edge box '{self.cfg.edge_id}'",
            )
        deadline_mono_s = time.monotonic() + self._clips_stop_s
        return unit.control.apply(push, unit.chain, self.detectors, deadline_mono_s)

    def _turn(self) -> None:
        self._drain_health()
        self._apply_pushes()
        self.verifier.start(self._by_camera)
        due = [(u, d) for u in self.units if (d := u.feed.take()) is not None]
        if due:
            self.turns += 1
            groups: dict[int, list[tuple[CameraUnit, DueFrame]]] = {}
            for unit, frame in due:
                groups.setdefault(id(unit.chain.detector), []).append((unit, frame))
            for group in groups.values():
                self._run_group(group)
        # Also without frames: a look at a camera that went dark ends on time.
        self.verifier.finish_due(self._by_camera)

    def _run_group(self, group: list[tuple[CameraUnit, DueFrame]]) -> None:
        detected = detect_group([(u.chain, d.frame) for u, d in group], self._detector_pool)
        for i in detected.order():
            unit, due = group[i]
            raw, per_frame_ms = detected.result(i)
            labels = {"camera": unit.camera_id}
            result = unit.chain.advance(due.frame, raw, per_frame_ms)
            self.verifier.observe(unit.camera_id, result, unit.chain)
            now = time.monotonic()
            self.metrics.frames_processed.labels(**labels).inc()
            if raw is None:
                self.metrics.frames_skipped.labels(**labels).inc()
            else:
                self.metrics.detector_calls.labels(**labels).inc()
            self.metrics.lag_s.labels(**labels).set(now - due.decoded_mono_s)
            unit.processed_mono_s.append(now)
        model = group[0][0].chain.detector.model_name
        for call in detected.calls:
            chunk = call.result()
            self.metrics.detector_seconds.labels(
                model=model, batch=str(len(chunk.detections))
            ).observe(chunk.took_s)

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
            fps = len(times) / _FPS_WINDOW_S
            self.metrics.fps.labels(camera=unit.camera_id).set(fps)
            self.link.status.fps(unit.camera_id, fps)

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
