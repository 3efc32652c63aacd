"""One camera's chain: frame -> detector -> filter -> tracker -> rules -> evidence -> sinks.

``CameraChain`` is the one way a camera is run. Replay, eval, ``edge detect`` and the worker's
detect stage all build one per camera and drive it with ``process`` (or, when the detector
ran elsewhere, ``wants_detection`` then ``advance``) and end it with ``finish``. The worker
changes a running camera's config or operating mode with ``reconfigure``.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np

from contract.config.camera import CameraConfig
from contract.config.rules import LeftObjectRuleConfig
from contract.vocabulary import PEACETIME
from edge.camera.view import ViewWatch
from edge.detectors import Detector
from edge.detectors.detections import Detections
from edge.detectors.filter import DetectionFilter
from edge.evidence.clips import ClipRecorder
from edge.evidence.media import MediaItem
from edge.pipeline.background import StaticBlobs, StaticForeground
from edge.pipeline.motion import MotionGate, MotionTracker
from edge.pipeline.tracking import Tracker
from edge.pipeline.zones import Zone
from edge.rules.base import IdFactory
from edge.rules.engine import RuleEngine, new_uuid
from edge.rules.events import Event
from edge.sources.base import Frame
from edge.sources.packets import PacketRing


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    detections: Detections
    tracks: Detections
    detect_ms: float
    #: This frame's events, carrying the ids of their evidence when the chain records it.
    events: list[Event] = field(default_factory=list)
    rules_ms: float = 0.0
    #: False when motion gating skipped the detector and carried detections forward.
    detected: bool = True
    #: The tamper subtype that suspends the camera's rules on this frame (edge/camera/view.py).
    suspended: str | None = None


@dataclass(frozen=True)
class EvidenceTarget:
    """Where a camera's clips and snapshots are written, and who hears of a finished one."""

    media_dir: Path
    on_ready: Callable[[MediaItem], None]
    #: The camera's compressed packets (its record input), when its reader keeps them:
    #: clips are then cut by remuxing them instead of encoding frames.
    packets: PacketRing | None = None


class ResultSink:
    """Where a camera's results go. Its chain opens it once built, writes every frame's result,
    ends it with the events that closed the open incidents, and closes it (also after an
    error, then without ``end``)."""

    def open(self, chain: CameraChain) -> None:
        """The chain is built: its zones and class names are known."""

    def write(self, result: FrameResult) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not write results")

    def end(self, closing: list[Event]) -> None:
        """The stream ended; ``closing`` are the events that closed the open incidents."""

    def closed(self, closing: list[Event]) -> None:
        """The chain was reconfigured (a new config or mode) and the stream goes on;
        ``closing`` are the events that closed the old rules' open incidents."""

    def close(self) -> None:
        """Release what the sink holds."""


class EventSink(ResultSink):
    """Every frame's events, and at the end the closing ones, to one callable (the outbox)."""

    def __init__(self, send: Callable[[list[Event]], None]) -> None:
        self._send = send

    def write(self, result: FrameResult) -> None:
        self._send(result.events)

    def end(self, closing: list[Event]) -> None:
        self._send(closing)

    def closed(self, closing: list[Event]) -> None:
        self._send(closing)


class _Background:
    """The static-foreground model, for left_object rules that use background evidence."""

    def __init__(
        self,
        cfg: CameraConfig,
        class_names: tuple[str, ...],
        model: StaticForeground | None = None,
    ) -> None:
        """``model``: the learnt background to go on with (a reconfigure that kept it)."""
        rules = [
            r
            for z in cfg.zones
            for r in z.rules
            if isinstance(r, LeftObjectRuleConfig) and "background" in r.evidence
        ]
        self.enabled = bool(rules)
        self.model = model if model is not None else StaticForeground(cfg.background)
        self.min_area_px = min((r.min_blob_area_px for r in rules), default=0.0)
        litter = {n for r in rules for n in r.classes}
        # Blobs under anything but a litter object are explained by what stands there.
        self.explainers = np.asarray(
            [i for i, n in enumerate(class_names) if n not in litter], np.int64
        )

    def blobs(self, frame: Frame, tracks: Detections) -> StaticBlobs | None:
        if not self.enabled:
            return None
        explained = tracks[np.isin(tracks.class_id, self.explainers)].xyxy
        return self.model.update(frame.image_bgr, frame.ts_s, self.min_area_px, explained)


class CameraChain:
    """One camera: its detector handle (given, possibly shared with other cameras), filter,
    tracker, zones (built once, shared by the rules, the recorder and the sinks), rules,
    motion gate, evidence recorder and sinks.

    ``evidence``: record clips and snapshots there (when the camera's clips are enabled).
    ``sinks``: where every result goes; the chain opens, ends and closes them.
    ``mode``/``drill``: the operating mode its rules' events carry.
    """

    def __init__(
        self,
        cfg: CameraConfig,
        detector: Detector,
        fps: float,
        *,
        new_id: IdFactory = new_uuid,
        evidence: EvidenceTarget | None = None,
        sinks: Sequence[ResultSink] = (),
        mode: str = PEACETIME,
        drill: bool = False,
    ) -> None:
        self.cfg = cfg
        self.detector = detector
        self.fps = fps
        self.mode, self.drill = mode, drill
        self._new_id = new_id
        self._evidence = evidence
        self.filter = DetectionFilter(cfg, detector.class_names, detector.model_name)
        self.tracker = Tracker(cfg.tracking, fps)
        self.rules = RuleEngine(
            cfg, detector.class_names, detector.model_name, new_id, mode=mode, drill=drill
        )
        # The rule engine's zones: each polygon is rasterised once per camera, not per user.
        self.zones: list[Zone] = [zone for zone, _ in self.rules.zones]
        self._background = _Background(cfg, detector.class_names)
        self.gate = self._new_gate(cfg)
        self.movement = MotionTracker(cfg.motion.moving_fraction, cfg.motion.moving_hold_s)
        self.view = ViewWatch(cfg.tamper, cfg.id, new_id, mode=mode, drill=drill)
        self._view_events: list[Event] = []
        self._blind = False  # the last frame's rules were suspended
        self._carried = Detections.empty()
        self._decided: int | None = None
        self._untracked_ts_s = float("-inf")
        self.last_ts_s = 0.0
        self.recorder = self._new_recorder(cfg, detector)
        self.sinks: list[ResultSink] = []
        self._closed = False
        try:
            for sink in sinks:
                sink.open(self)
                self.sinks.append(sink)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _new_gate(cfg: CameraConfig) -> MotionGate | None:
        if not cfg.motion.enabled:
            return None
        # Each camera's refreshes at its own phase, the same on every run of the camera.
        phase = zlib.crc32(cfg.id.encode()) % 1000 / 1000 * cfg.motion.refresh_s
        return MotionGate(cfg.motion, refresh_phase_s=phase)

    def _new_recorder(self, cfg: CameraConfig, detector: Detector) -> ClipRecorder | None:
        ev = self._evidence
        if ev is None or not cfg.clips.enabled:
            return None
        return ClipRecorder(
            cfg.clips, cfg.privacy, detector.class_names, ev.media_dir, ev.on_ready, ev.packets
        )

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.detector.class_names

    def reconfigure(
        self,
        cfg: CameraConfig,
        detector: Detector,
        *,
        mode: str,
        drill: bool,
        deadline_mono_s: float | None = None,
    ) -> list[Event]:
        """Run ``cfg`` under ``mode`` from the next frame, on the same stream.

        Every new piece is built first: if one fails (ConfigError: an unknown class for the
        model, ...) it raises and the chain is exactly as it was. Then the old rules' open
        incidents end (their closing events go to the sinks' ``closed`` and are returned)
        and the new pieces take over. The tracker (its track ids), the motion gate, the
        learnt background and the clip recorder (its ring buffer, so the next clip still has
        its pre-roll) are kept when their config sections and the model's classes are
        unchanged; a replaced recorder finishes its clips by ``deadline_mono_s``. Sinks stay
        open: one that drew zones at ``open`` keeps the old ones.
        """
        same_classes = detector.class_names == self.detector.class_names
        names = detector.class_names
        flt = DetectionFilter(cfg, names, detector.model_name)
        rules = RuleEngine(cfg, names, detector.model_name, self._new_id, mode=mode, drill=drill)
        keep_bg = same_classes and cfg.background == self.cfg.background
        background = _Background(cfg, names, self._background.model if keep_bg else None)
        keep_tracker = same_classes and cfg.tracking == self.cfg.tracking
        keep_motion = cfg.motion == self.cfg.motion
        keep_view = (cfg.tamper, cfg.id) == (self.cfg.tamper, self.cfg.id)
        keep_recorder = same_classes and (cfg.clips, cfg.privacy) == (
            self.cfg.clips,
            self.cfg.privacy,
        )
        recorder = self.recorder if keep_recorder else self._new_recorder(cfg, detector)
        view = (
            self.view
            if keep_view
            else ViewWatch(cfg.tamper, cfg.id, self._new_id, mode=mode, drill=drill)
        )
        # Nothing below raises for a config that validated: the swap is all or nothing.
        closing = self.rules.finish(self.last_ts_s)
        if not keep_view:
            closing += self.view.close(self.last_ts_s)
        view.stamp(mode, drill)
        if self.recorder is not None:
            closing = self.recorder.ended(closing, self.last_ts_s)
            if not keep_recorder:
                self.recorder.close(deadline_mono_s)
        for sink in self.sinks:
            sink.closed(closing)
        if not keep_tracker:
            self.tracker = Tracker(cfg.tracking, self.fps)
            self._carried = Detections.empty()
        if not keep_motion:
            self.gate = self._new_gate(cfg)
            self.movement = MotionTracker(cfg.motion.moving_fraction, cfg.motion.moving_hold_s)
        self.cfg, self.detector, self.filter, self.rules = cfg, detector, flt, rules
        self.zones = [zone for zone, _ in rules.zones]
        self._background, self.recorder = background, recorder
        self.view = view
        self.mode, self.drill = mode, drill
        return closing

    def wants_detection(self, frame: Frame) -> bool:
        """Judge the view (a tampered view needs no detector: its rules are suspended), then
        ask the motion gate whether this frame needs the detector (always without one)."""
        self._decided = frame.index
        self._view_events = self.view.update(frame.image_bgr, frame.ts_s)
        if self.view.suspended is not None:
            return False
        if self.gate is None:
            return True
        settling = frame.ts_s - self._untracked_ts_s <= self.cfg.motion.moving_hold_s
        grey = frame.grey
        if grey is not None and grey.shape[1] != min(self.cfg.motion.work_width_px, frame.wh[0]):
            grey = None  # made for another work width (the config changed since)
        decision = self.gate.decide(
            frame.image_bgr,
            frame.ts_s,
            moving=self.movement.any_moving,
            settling=settling,
            grey=grey,
        )
        return decision.detect

    def process(self, frame: Frame) -> FrameResult:
        """Detect (unless the gate says the frame is still), then everything after."""
        detect = self.wants_detection(frame)
        t0 = time.perf_counter()
        raw = self.detector.detect(frame.image_bgr) if detect else None
        return self.advance(frame, raw, (time.perf_counter() - t0) * 1000)

    def advance(self, frame: Frame, raw: Detections | None, detect_ms: float = 0.0) -> FrameResult:
        """Everything after the detector: filter, track, rules, evidence, sinks.

        ``raw`` None: the detector was skipped, the last detections are carried forward.
        """
        if self._decided != frame.index:
            if self.gate is not None:
                raise RuntimeError("advance() without wants_detection() for the same frame")
            self._view_events = self.view.update(frame.image_bgr, frame.ts_s)
        self._decided = None
        events, self._view_events = self._view_events, []
        if self.view.suspended is not None:
            self._blind = True
            return self._suspended(frame, events)
        if self._blind:
            self._blind = False
            self.rules.resumed(frame.ts_s)
        detections, tracks = self._track(frame, raw)
        t0 = time.perf_counter()
        events += self.rules.update(
            frame.ts_s, frame.wh, tracks, self._background.blobs(frame, tracks)
        )
        rules_ms = (time.perf_counter() - t0) * 1000
        self.last_ts_s = frame.ts_s
        if self.recorder is not None:
            events = self.recorder.observe(frame, tracks, events, self.zones)
        result = FrameResult(
            frame=frame,
            detections=detections,
            tracks=tracks,
            detect_ms=detect_ms,
            events=events,
            rules_ms=rules_ms,
            detected=raw is not None,
        )
        for sink in self.sinks:
            sink.write(result)
        return result

    def _suspended(self, frame: Frame, events: list[Event]) -> FrameResult:
        """A tampered view: no detector, tracker, background or rules; the tamper incident's
        own events (with their evidence: the clip shows the covered lens) go out."""
        self.last_ts_s = frame.ts_s
        none = Detections.empty()
        if self.recorder is not None:
            events = self.recorder.observe(frame, none, events, self.zones)
        result = FrameResult(
            frame, none, none, 0.0, events, detected=False, suspended=self.view.suspended
        )
        for sink in self.sinks:
            sink.write(result)
        return result

    def _track(self, frame: Frame, raw: Detections | None) -> tuple[Detections, Detections]:
        if raw is None:
            detections = self._carried
        else:
            detections = self.filter(raw)
            self._carried = detections
        tracks = self.tracker.update(detections, frame.ts_s)
        if raw is not None:
            self.movement.update(tracks, frame.ts_s)
            if len(detections) > len(tracks):
                self._untracked_ts_s = frame.ts_s
            if self.gate is not None:
                self.gate.detected(frame.ts_s, detections.xyxy)
        return detections, tracks

    def finish(self, deadline_mono_s: float | None = None) -> list[Event]:
        """The stream ended: close open incidents at the last frame's time, finish their
        evidence (by ``deadline_mono_s``, see ClipRecorder.close), hand the closing events to
        every sink and close the sinks."""
        if self._closed:
            raise RuntimeError(f"camera {self.cfg.id}: finish() after the chain was closed")
        closing = self.rules.finish(self.last_ts_s) + self.view.close(self.last_ts_s)
        if self.recorder is not None:
            closing = [self.recorder.attach(e) for e in closing]
            self.recorder.close(deadline_mono_s)
        for sink in self.sinks:
            sink.end(closing)
        self.close()
        return closing

    def close(self) -> None:
        """Close the sinks without ending incidents (an error stopped the stream). Idempotent."""
        if self._closed:
            return
        self._closed = True
        for sink in self.sinks:
            sink.close()

    def __enter__(self) -> CameraChain:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
