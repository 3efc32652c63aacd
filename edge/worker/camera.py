"""One camera's reader threads: its detect input decoded, its record input kept as packets.

Reading runs at the source's own rate (a live stream must be drained, a file is paced);
every packet of the record input goes to the camera's packet ring (clips are cut from it),
every frame of the detect input is decoded but only due frames (one per detect period) are
converted to pictures, and only the newest due frame waits for the stage. If the stage has
not taken the previous one when the next is due, the older is dropped and counted: that is
the "falls behind" signal.
The camera going offline and coming back are events, so operators see it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from contract.config.camera import CameraConfig, ReconnectConfig, SourceConfig
from contract.fleet import CameraState
from contract.vocabulary import CAMERA_OFFLINE
from edge.errors import SourceError
from edge.pipeline.motion import shrink
from edge.rules.events import Event
from edge.sources import is_live, open_source
from edge.sources.base import Frame, FrameSource, SourceState
from edge.sources.live import LiveSource, redact
from edge.sources.packets import PacketRing
from edge.sources.pyav import PyAvSource
from edge.worker.metrics import EdgeMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueFrame:
    frame: Frame
    #: time.monotonic() when the frame was decoded, for the stage's lag metric.
    decoded_mono_s: float


class CameraFeed(threading.Thread):
    def __init__(
        self,
        camera: CameraConfig,
        source: SourceConfig,
        detect_fps: float,
        metrics: EdgeMetrics,
        *,
        on_event: Callable[[Event], None],
        wake: threading.Event,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"camera-{camera.id}", daemon=True)
        self.camera = camera
        self.source_cfg = source
        self.detect_fps = detect_fps
        self.period_s = 1.0 / detect_fps
        self.metrics = metrics
        self._on_event = on_event
        self._wake = wake
        self._stop_event = stop
        self._lock = threading.Lock()
        self._slot: DueFrame | None = None
        self._next_due_s = float("-inf")
        self._online: bool | None = None  # None: not known yet
        self._offline_event: Event | None = None
        self._source: FrameSource | None = None
        #: The record input's packets, for clips cut by remuxing (None: no record input).
        self.packets = (
            PacketRing(max(camera.clips.buffer_s, camera.clips.pre_roll_s + 2.0))
            if source.record_uri is not None
            else None
        )
        self.recorder: RecordFeed | None = None
        self.fps = 0.0
        self.ended = False
        self.error: str | None = None
        self._labels = {"camera": camera.id}
        metrics.camera_up.labels(**self._labels).set(0)

    @property
    def online(self) -> bool:
        return bool(self._online)

    @property
    def state(self) -> CameraState:
        """As heartbeats report it: "starting" until the source first opens or fails."""
        if self.ended:
            return "ended"
        if self._online is None:
            return "starting"
        return "online" if self._online else "offline"

    def take(self) -> DueFrame | None:
        with self._lock:
            due, self._slot = self._slot, None
        return due

    def run(self) -> None:
        reconnect = self.source_cfg.reconnect or ReconnectConfig()
        delay_s = reconnect.initial_delay_s
        epoch_s = time.time()
        record_uri = self.source_cfg.record_uri
        if self.packets is not None and record_uri not in (None, self.source_cfg.uri):
            record = self.source_cfg.model_copy(update={"uri": record_uri, "inputs": []})
            self.recorder = RecordFeed(self.camera, record, self.packets, self._stop_event)
            self.recorder.start()
        while not self._stop_event.is_set():
            started = time.monotonic()
            try:
                self._stream(epoch_s)
                if self._stop_event.is_set():
                    break
                if not self.source_cfg.loop and not is_live(self.source_cfg):
                    self.ended = True  # a file played once: this camera is done
                    log.info("camera %s: %s ended", self.camera.id, self.source_cfg.uri)
                    return
            except SourceError as exc:
                self.error = str(exc)
                self._set_online(False, str(exc))
            except Exception as exc:  # one camera's fault must not stop the box
                log.exception("camera %s: unexpected failure", self.camera.id)
                self.error = f"{type(exc).__name__}: {exc}"
                self._set_online(False, self.error)
            if time.monotonic() - started > 10 * reconnect.initial_delay_s:
                delay_s = reconnect.initial_delay_s  # it ran for a while: start backoff afresh
            self.metrics.reconnects.labels(**self._labels).inc()
            log.warning("camera %s: reopening in %.1f s", self.camera.id, delay_s)
            if self._stop_event.wait(delay_s):
                break
            delay_s = min(delay_s * 2, reconnect.max_delay_s)
            epoch_s = time.time()

    def _stream(self, epoch_s: float) -> None:
        def state(s: SourceState, detail: str) -> None:
            if s is SourceState.STREAMING:
                self._set_online(True, detail)
            elif s in (SourceState.RECONNECTING, SourceState.FAILED):
                if s is SourceState.RECONNECTING:  # a live source retrying on its own
                    self.metrics.reconnects.labels(**self._labels).inc()
                self._set_online(False, detail)

        own_packets = self.source_cfg.record_uri == self.source_cfg.uri
        with open_source(
            self.source_cfg,
            realtime=True,
            base_dir=self.camera.base_dir,
            on_state=state,
            epoch_s=epoch_s,
            packets=self.packets if own_packets else None,
            want=self._due,
        ) as source:
            self._source = source
            asks = isinstance(source, PyAvSource)  # else every frame comes: pick the due ones
            for frame in source.frames():
                if self._stop_event.is_set():
                    return
                self._set_online(True, "")
                if asks or self._due(frame.ts_s):
                    self._offer(frame)
        self._source = None

    def halt(self) -> None:
        """Stop now, also out of a live source's read or backoff wait (``stop`` is set)."""
        source = self._source
        if isinstance(source, LiveSource | PyAvSource):
            source.stop()
        if self.recorder is not None:
            self.recorder.halt()

    def _due(self, ts_s: float) -> bool:
        """From the reader, for every decoded frame: is it due for the detect stage?"""
        self.metrics.frames_decoded.labels(**self._labels).inc()
        if ts_s + 1e-6 < self._next_due_s:
            return False
        # Keep the rate even; after a gap (reconnect, a slow decode), restart from now.
        late = ts_s - self._next_due_s > self.period_s
        self._next_due_s = (ts_s if late else self._next_due_s) + self.period_s
        return True

    def _offer(self, frame: Frame) -> None:
        motion = self.camera.motion
        if motion.enabled:  # the gate's grey, made here in parallel with the other cameras
            frame = replace(frame, grey=shrink(frame.image_bgr, motion.work_width_px))
        due = DueFrame(frame, time.monotonic())
        with self._lock:
            replaced = self._slot is not None
            self._slot = due
        self.metrics.frames_due.labels(**self._labels).inc()
        if replaced:
            self.metrics.frames_dropped.labels(stage="detect", **self._labels).inc()
        self._wake.set()

    def _set_online(self, online: bool, detail: str) -> None:
        if online == self._online:
            return
        was_known = self._online is not None
        self._online = online
        self.metrics.camera_up.labels(**self._labels).set(1 if online else 0)
        now = time.time()
        where = redact(self.source_cfg.uri)
        if not online:
            log.warning("camera %s offline: %s (%s)", self.camera.id, detail, where)
            self._offline_event = self._health_event(str(uuid.uuid4()), "start", now, now)
            self._on_event(self._offline_event)
        else:
            if was_known:
                log.warning("camera %s back online (%s)", self.camera.id, where)
            else:
                log.info("camera %s online (%s)", self.camera.id, where)
            started = self._offline_event
            if started is not None:
                self._on_event(self._health_event(started.event_id, "end", now, started.ts))
                self._offline_event = None

    def _health_event(self, event_id: str, phase: str, ts: float, started_ts: float) -> Event:
        return Event(
            event_id=event_id,
            type=CAMERA_OFFLINE,
            phase="start" if phase == "start" else "end",
            camera=self.camera.id,
            zone="camera",
            rule="camera-health",
            ts=ts,
            started_ts=started_ts,
            value=round(ts - started_ts, 3),
            unit="s",
            severity="high",
        )


class RecordFeed(threading.Thread):
    """A record-only input (a camera's main stream beside its detect substream): packets into
    the camera's ring, nothing decoded; reconnected on its own, quietly for the detect side
    (the camera's online state follows its detect input)."""

    def __init__(
        self, camera: CameraConfig, source: SourceConfig, ring: PacketRing, stop: threading.Event
    ) -> None:
        super().__init__(name=f"record-{camera.id}", daemon=True)
        self.camera = camera
        self.source_cfg = source
        self.ring = ring
        self._stop_event = stop
        self._source: FrameSource | None = None

    def run(self) -> None:
        reconnect = self.source_cfg.reconnect or ReconnectConfig()
        while not self._stop_event.is_set():
            try:
                with open_source(
                    self.source_cfg,
                    realtime=True,
                    base_dir=self.camera.base_dir,
                    epoch_s=time.time(),
                    packets=self.ring,
                    decode=False,
                ) as source:
                    self._source = source
                    for _ in source.frames():
                        pass  # packets go to the ring; a record-only input yields no frames
            except SourceError as exc:
                log.warning("camera %s: record input: %s", self.camera.id, exc)
            if not self.source_cfg.loop and not is_live(self.source_cfg):
                return
            if self._stop_event.wait(reconnect.initial_delay_s):
                return

    def halt(self) -> None:
        source = self._source
        if isinstance(source, PyAvSource):
            source.stop()
