"""One camera's chain: frame -> detector -> filter -> tracker -> rules -> evidence -> sinks.

``CameraChain`` is the one way a camera is run. Replay, eval, ``edge detect`` and the worker's
detect stage all build one per camera and drive it with ``process`` (or, when the detector
ran elsewhere, ``wants_detection`` then ``advance``) and end it with ``finish``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

from contract.config.camera import CameraConfig
from contract.config.rules import LeftObjectRuleConfig
from edge.detectors import Detector
from edge.detectors.detections import Detections
from edge.detectors.filter import DetectionFilter
from edge.evidence.clips import ClipRecorder
from edge.evidence.media import MediaItem
from edge.pipeline.background import StaticForeground
from edge.pipeline.motion import MotionGate, MotionTracker
from edge.pipeline.tracking import Tracker
from edge.pipeline.zones import Zone
from edge.rules.base import IdFactory
from edge.rules.engine import RuleEngine, new_uuid
from edge.rules.events import Event
from edge.sources.base import Frame


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


@dataclass(frozen=True)
class EvidenceTarget:
    """Where a camera's clips and snapshots are written, and who hears of a finished one."""

    media_dir: Path
    on_ready: Callable[[MediaItem], None]


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


class _Background:
    """The static-foreground model, for left_object rules that use background evidence."""

    def __init__(self, cfg: CameraConfig, class_names: tuple[str, ...]) -> None:
        rules = [
            r
            for z in cfg.zones
            for r in z.rules
            if isinstance(r, LeftObjectRuleConfig) and "background" in r.evidence
        ]
        self.enabled = bool(rules)
        self.model = StaticForeground(cfg.background)
        self.min_area_px = min((r.min_blob_area_px for r in rules), default=0.0)
        litter = {n for r in rules for n in r.classes}
        # Blobs under anything but a litter object are explained by what stands there.
        self.explainers = np.asarray(
            [i for i, n in enumerate(class_names) if n not in litter], np.int64
        )

    def blobs(self, frame: Frame, tracks: Detections) -> npt.NDArray[np.float32] | None:
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
    ) -> None:
        self.cfg = cfg
        self.detector = detector
        self.filter = DetectionFilter(cfg, detector.class_names, detector.model_name)
        self.tracker = Tracker(cfg.tracking, fps)
        self.rules = RuleEngine(cfg, detector.class_names, detector.model_name, new_id)
        # The rule engine's zones: each polygon is rasterised once per camera, not per user.
        self.zones: list[Zone] = [zone for zone, _ in self.rules.zones]
        self._background = _Background(cfg, detector.class_names)
        self.gate = MotionGate(cfg.motion) if cfg.motion.enabled else None
        self.movement = MotionTracker(cfg.motion.moving_fraction, cfg.motion.moving_hold_s)
        self._carried = Detections.empty()
        self._decided: int | None = None
        self._untracked_ts_s = float("-inf")
        self.last_ts_s = 0.0
        self.recorder: ClipRecorder | None = None
        if evidence is not None and cfg.clips.enabled:
            self.recorder = ClipRecorder(
                cfg.clips, cfg.privacy, detector.class_names, evidence.media_dir, evidence.on_ready
            )
        self.sinks: list[ResultSink] = []
        self._closed = False
        try:
            for sink in sinks:
                sink.open(self)
                self.sinks.append(sink)
        except BaseException:
            self.close()
            raise

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.detector.class_names

    def wants_detection(self, frame: Frame) -> bool:
        """Ask the motion gate whether this frame needs the detector (always without one)."""
        self._decided = frame.index
        if self.gate is None:
            return True
        settling = frame.ts_s - self._untracked_ts_s <= self.cfg.motion.moving_hold_s
        decision = self.gate.decide(
            frame.image_bgr, frame.ts_s, moving=self.movement.any_moving, settling=settling
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
        if self._decided != frame.index and self.gate is not None:
            raise RuntimeError("advance() without wants_detection() for the same frame")
        self._decided = None
        detections, tracks = self._track(frame, raw)
        t0 = time.perf_counter()
        events = self.rules.update(
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
                self.gate.detected(frame.ts_s)
        return detections, tracks

    def finish(self, deadline_mono_s: float | None = None) -> list[Event]:
        """The stream ended: close open incidents at the last frame's time, finish their
        evidence (by ``deadline_mono_s``, see ClipRecorder.close), hand the closing events to
        every sink and close the sinks."""
        if self._closed:
            raise RuntimeError(f"camera {self.cfg.id}: finish() after the chain was closed")
        closing = self.rules.finish(self.last_ts_s)
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
