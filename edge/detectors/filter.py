"""Keep the detections the camera cares about: classes, per-class scores, minimum size."""

from __future__ import annotations

import difflib

import numpy as np

from contract.config.camera import CameraConfig
from contract.errors import ConfigError
from edge.detectors.detections import Detections


def check_class_name(name: str, class_names: tuple[str, ...], where: str, model: str) -> int:
    if name in class_names:
        return class_names.index(name)
    close = difflib.get_close_matches(name, class_names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(f"{where}: unknown class '{name}' for model {model}{hint}")


class DetectionFilter:
    def __init__(self, cfg: CameraConfig, class_names: tuple[str, ...], model: str) -> None:
        det = cfg.detection
        n = len(class_names)
        self.allowed = np.ones(n, dtype=bool)
        if det.classes is not None:
            self.allowed[:] = False
            for i, name in enumerate(det.classes):
                where = cfg.where(("detection", "classes", i))
                self.allowed[check_class_name(name, class_names, where, model)] = True
        self.threshold = np.full(n, det.score_threshold, dtype=np.float32)
        for name, value in det.class_score_thresholds.items():
            where = cfg.where(("detection", "class_score_thresholds", name))
            self.threshold[check_class_name(name, class_names, where, model)] = value
        self.min_area_px = det.min_box_area_px

    @property
    def lowest_threshold(self) -> float:
        return float(self.threshold[self.allowed].min()) if self.allowed.any() else 1.0

    def __call__(self, d: Detections) -> Detections:
        if len(d) == 0:
            return d
        cid = d.class_id
        keep = (
            self.allowed[cid] & (d.score >= self.threshold[cid]) & (d.area_px >= self.min_area_px)
        )
        return d[keep]
