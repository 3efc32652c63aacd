"""Detector plugins: one ABC (``Detector``), one module and config class per backend."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from contract.config.detector import DetectorConfig, OnnxDetectorConfig
from edge.detectors.base import Detector

if TYPE_CHECKING:
    from edge.detectors.catalog import Manifest

__all__ = ["Detector", "DetectorConfig", "OnnxDetectorConfig", "create_detector"]


def create_detector(
    cfg: DetectorConfig,
    manifest: Manifest,
    *,
    score_threshold: float,
    nms_iou: float,
    base_dir: Path | None = None,
) -> Detector:
    # Imported here so that reading configs never loads onnxruntime.
    from edge.detectors.onnx_runtime import OnnxDetector

    return OnnxDetector(
        cfg, manifest, score_threshold=score_threshold, nms_iou=nms_iou, base_dir=base_dir
    )
