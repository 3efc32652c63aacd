"""Configuration files: YAML validated by pydantic, errors pointing at file and line."""

from __future__ import annotations

from pathlib import Path

from contract.config.camera import CameraConfig
from contract.config.loading import load_yaml_model

__all__ = ["CameraConfig", "load_camera_config", "with_motion"]


def load_camera_config(path: Path) -> CameraConfig:
    cfg, doc = load_yaml_model(path, CameraConfig, "a camera config")
    cfg._doc = doc
    return cfg


def with_motion(cfg: CameraConfig, choice: str) -> CameraConfig:
    """The config with motion gating as a command line asks: "config", "on" or "off"."""
    if choice == "config":
        return cfg
    out = cfg.model_copy(
        update={"motion": cfg.motion.model_copy(update={"enabled": choice == "on"})}
    )
    out._doc = cfg._doc
    return out
