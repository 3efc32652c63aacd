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


class DetectorCache:
    """The box's detector sessions by session key, for cameras whose config changes while
    the worker runs: a new config reuses a session that fits (same key, built at a score low
    enough for the camera) or gets a new one. ``keep`` drops the sessions no camera uses."""

    def __init__(self, manifest: Manifest, threads: int = 0) -> None:
        """``threads``: intra-op threads of a session whose camera config leaves it to
        onnxruntime (``detector.threads: 0``); the worker runs several calls at once, one
        core each, which costs less CPU per frame than one call spread over every core."""
        self.manifest = manifest
        self.threads = threads
        self._made: dict[SessionKey, tuple[Detector, float]] = {}

    def _resolved(self, cam: CameraConfig) -> CameraConfig:
        if not self.threads or cam.detector.threads:
            return cam
        detector = cam.detector.model_copy(update={"threads": self.threads})
        return cam.model_copy(update={"detector": detector})

    def seed(self, cameras: Sequence[CameraConfig]) -> list[Detector]:
        """The start: one session per distinct key (``shared_detectors``), remembered."""
        cameras = [self._resolved(c) for c in cameras]
        out = shared_detectors(cameras, self.manifest)
        for cam, det in zip(cameras, out, strict=True):
            key = session_key(cam)
            if key not in self._made:
                self._made[key] = (det, lowest_score([c for c in cameras if session_key(c) == key]))
        return out

    def get(self, cam: CameraConfig) -> Detector:
        """A session for ``cam``; ConfigError (model not found, ...) names what is wrong."""
        cam = self._resolved(cam)
        key, score = session_key(cam), lowest_score([cam])
        held = self._made.get(key)
        if held is not None and held[1] <= score:
            return held[0]
        det = create_detector(
            cam.detector,
            self.manifest,
            score_threshold=score if held is None else min(score, held[1]),
            nms_iou=cam.detection.nms_iou,
            base_dir=cam.base_dir,
        )
        # A lower score replaces the held session for new users; cameras on the old one keep it.
        self._made[key] = (det, score if held is None else min(score, held[1]))
        log.info("detector %s: new session for camera %s", det.model_name, cam.id)
        return det

    def keep(self, in_use: Sequence[Detector]) -> None:
        """Forget sessions none of ``in_use`` is, so an unused model's memory is freed."""
        ids = {id(d) for d in in_use}
        self._made = {k: v for k, v in self._made.items() if id(v[0]) in ids}
