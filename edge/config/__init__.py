"""Configuration files: YAML validated by pydantic, errors pointing at file and line."""

from __future__ import annotations

from pathlib import Path

from edge.config.camera import CameraConfig
from edge.config.loading import load_yaml_model

__all__ = ["CameraConfig", "load_camera_config"]


def load_camera_config(path: Path) -> CameraConfig:
    cfg, doc = load_yaml_model(path, CameraConfig, "a camera config")
    cfg._doc = doc
    return cfg
