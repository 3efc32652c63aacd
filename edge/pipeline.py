"""One camera's processing chain: frame -> detector -> filter -> tracker (-> rules, later)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from edge.config.camera import CameraConfig
from edge.detect_filter import DetectionFilter
from edge.detections import Detections
from edge.detectors import Detector, create_detector
from edge.model_catalog import Manifest
from edge.sources.base import Frame
from edge.tracking import Tracker
from edge.zones import Zone


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    detections: Detections
    tracks: Detections
    detect_ms: float


class Pipeline:
    def __init__(self, cfg: CameraConfig, detector: Detector, fps: float) -> None:
        self.cfg = cfg
        self.detector = detector
        self.filter = DetectionFilter(cfg, detector.class_names, detector.model_name)
        self.tracker = Tracker(cfg.tracking, fps)
        self.zones = [Zone(z) for z in cfg.zones]

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.detector.class_names

    def process(self, frame: Frame) -> FrameResult:
        t0 = time.perf_counter()
        raw = self.detector.detect(frame.image_bgr)
        detect_ms = (time.perf_counter() - t0) * 1000
        detections = self.filter(raw)
        tracks = self.tracker.update(detections, frame.ts_s)
        return FrameResult(frame=frame, detections=detections, tracks=tracks, detect_ms=detect_ms)


def build_detector(cfg: CameraConfig, manifest: Manifest) -> Detector:
    det = cfg.detection
    # The detector keeps everything any class could pass; the filter applies per-class limits.
    lowest = min([det.score_threshold, *det.class_score_thresholds.values()])
    return create_detector(
        cfg.detector, manifest, score_threshold=lowest, nms_iou=det.nms_iou, base_dir=cfg.base_dir
    )
