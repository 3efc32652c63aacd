"""Configuration files: YAML validated by pydantic, errors pointing at file and line."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from edge.config.camera import CameraConfig
from edge.config.errors import config_error_from_validation
from edge.config.yaml_source import read_yaml
from edge.errors import ConfigError

__all__ = ["CameraConfig", "load_camera_config"]


def load_camera_config(path: Path) -> CameraConfig:
    doc = read_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{path}: a camera config must be a YAML mapping at the top level")
    try:
        cfg = CameraConfig.model_validate(doc.data)
    except ValidationError as exc:
        raise config_error_from_validation(doc, exc) from None
    cfg._doc = doc
    return cfg
