"""One camera's processing chain: frame -> detector -> filter -> tracker -> rules -> events."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from edge.config.camera import CameraConfig
from edge.detectors import Detector, create_detector
from edge.detectors.catalog import Manifest
from edge.detectors.detections import Detections
from edge.detectors.filter import DetectionFilter
from edge.pipeline.background import StaticForeground
from edge.pipeline.motion import MotionGate, MotionTracker
from edge.pipeline.tracking import Tracker
from edge.pipeline.zones import Zone
from edge.rules.base import IdFactory
from edge.rules.config import LeftObjectRuleConfig
from edge.rules.engine import RuleEngine, new_uuid
from edge.rules.events import Event
from edge.sources.base import Frame


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    detections: Detections
    tracks: Detections
    detect_ms: float
    events: list[Event] = field(default_factory=list)
    rules_ms: float = 0.0
    #: False when motion gating skipped the detector and carried detections forward.
    detected: bool = True


class Pipeline:
    def __init__(
        self, cfg: CameraConfig, detector: Detector, fps: float, new_id: IdFactory = new_uuid
    ) -> None:
        self.cfg = cfg
        self.detector = detector
        self.filter = DetectionFilter(cfg, detector.class_names, detector.model_name)
        self.tracker = Tracker(cfg.tracking, fps)
        self.zones = [Zone(z) for z in cfg.zones]
        self.rules = RuleEngine(cfg, detector.class_names, detector.model_name, new_id)
        self.background: StaticForeground | None = None
        bg_rules = [
            r
            for z in cfg.zones
            for r in z.rules
            if isinstance(r, LeftObjectRuleConfig) and "background" in r.evidence
        ]
        if bg_rules:
            self.background = StaticForeground(cfg.background)
            self._blob_min_area = min(r.min_blob_area_px for r in bg_rules)
            litter = {n for r in bg_rules for n in r.classes}
            # Blobs under anything but a litter object are explained by what stands there.
            self._explainers = np.asarray(
                [i for i, n in enumerate(detector.class_names) if n not in litter], np.int64
            )
        self.gate = MotionGate(cfg.motion) if cfg.motion.enabled else None
        self.movement = MotionTracker(cfg.motion.moving_fraction, cfg.motion.moving_hold_s)
        self._carried = Detections.empty()
        self._decided: int | None = None
        self._untracked_ts_s = float("-inf")
        self.last_ts_s = 0.0

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
        """Detect (unless the gate says the frame is still), track, apply the rules."""
        detect = self.wants_detection(frame)
        t0 = time.perf_counter()
        raw = self.detector.detect(frame.image_bgr) if detect else None
        return self.advance(frame, raw, (time.perf_counter() - t0) * 1000)

    def advance(self, frame: Frame, raw: Detections | None, detect_ms: float = 0.0) -> FrameResult:
        """Everything after the detector. ``raw`` None: skipped, carry the last detections."""
        if self._decided != frame.index and self.gate is not None:
            raise RuntimeError("advance() without wants_detection() for the same frame")
        self._decided = None
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
        t2 = time.perf_counter()
        blobs = None
        if self.background is not None:
            explained = tracks[np.isin(tracks.class_id, self._explainers)].xyxy
            blobs = self.background.update(
                frame.image_bgr, frame.ts_s, self._blob_min_area, explained
            )
        events = self.rules.update(frame.ts_s, frame.wh, tracks, blobs)
        t3 = time.perf_counter()
        self.last_ts_s = frame.ts_s
        return FrameResult(
            frame=frame,
            detections=detections,
            tracks=tracks,
            detect_ms=detect_ms,
            events=events,
            rules_ms=(t3 - t2) * 1000,
            detected=raw is not None,
        )

    def finish(self) -> list[Event]:
        """The stream ended: close open incidents at the last frame's time."""
        return self.rules.finish(self.last_ts_s)


def build_detector(cfg: CameraConfig, manifest: Manifest) -> Detector:
    det = cfg.detection
    # The detector keeps everything any class could pass; the filter applies per-class limits.
    lowest = min([det.score_threshold, *det.class_score_thresholds.values()])
    return create_detector(
        cfg.detector, manifest, score_threshold=lowest, nms_iou=det.nms_iou, base_dir=cfg.base_dir
    )
