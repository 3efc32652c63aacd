"""Detector handles for cameras: one ONNX session per distinct detector config.

A session is built at the lowest score any of its cameras could pass (the global threshold
or a per-class one), so each camera's filter can apply its own per-class thresholds after.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from contract.config.camera import CameraConfig
from edge.detectors import Detector, create_detector
from edge.detectors.catalog import Manifest

log = logging.getLogger(__name__)

SessionKey = tuple[str, str, float]


def session_key(cam: CameraConfig) -> SessionKey:
    """Cameras with equal keys can share one session: same model, files and NMS."""
    return (cam.detector.model_dump_json(), str(cam.base_dir), cam.detection.nms_iou)


def lowest_score(cameras: Sequence[CameraConfig]) -> float:
    """The lowest score any class of any of these cameras keeps."""
    return min(
        t
        for c in cameras
        for t in (c.detection.score_threshold, *c.detection.class_score_thresholds.values())
    )


def shared_detectors(cameras: Sequence[CameraConfig], manifest: Manifest) -> list[Detector]:
    """One detector per distinct session key; returned in camera order."""
    groups: dict[SessionKey, list[CameraConfig]] = {}
    for cam in cameras:
        groups.setdefault(session_key(cam), []).append(cam)
    made: dict[SessionKey, Detector] = {}
    for key, members in groups.items():
        first = members[0]
        made[key] = create_detector(
            first.detector,
            manifest,
            score_threshold=lowest_score(members),
            nms_iou=first.detection.nms_iou,
            base_dir=first.base_dir,
        )
        log.info("detector %s serves %d camera(s)", made[key].model_name, len(members))
    return [made[session_key(c)] for c in cameras]


def build_detector(cfg: CameraConfig, manifest: Manifest) -> Detector:
    """The detector of a camera that runs alone (replay, eval, `edge detect`)."""
    return shared_detectors([cfg], manifest)[0]
