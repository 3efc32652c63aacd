"""What a camera is told to run, and the camera config that makes of it.

A ``Target`` is a push's desired state (contract/fleet.py ConfigPush): the central config
document (None: the box's own file), the operating mode with its overrides, the drill flag.
The effective config is ``apply_mode(base, overrides)``; base is the central document
validated as a camera config, or the box's own file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from contract.config.camera import CameraConfig
from contract.config.errors import field_path, problems
from contract.config.modes import apply_mode
from contract.config.yaml_source import Loc, YamlDocument
from contract.errors import ConfigError
from contract.fleet import Applied, ConfigPush, ConfigSource, ModeOverrides
from contract.vocabulary import PEACETIME


@dataclass(frozen=True)
class Target:
    applied: Applied = field(default_factory=Applied)
    drill: bool = False
    #: The central camera config document; None: the box's own config file.
    config: dict[str, Any] | None = None
    #: Peacetime's tag by default, so rules limited to other modes stay off at start.
    overrides: ModeOverrides = field(default_factory=lambda: ModeOverrides(tags=(PEACETIME,)))

    @classmethod
    def of_push(cls, push: ConfigPush) -> Target:
        return cls(push.applied, push.drill, push.config, push.overrides)

    @property
    def key(self) -> str:
        """Equal for equal targets: a repeated push of one is recognised by it."""
        return json.dumps(
            [
                [self.applied.config_version, self.applied.mode, self.applied.mode_rev],
                self.drill,
                self.config,
                [list(self.overrides.tags), self.overrides.rules],
            ],
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )


class CentralDocument(YamlDocument):
    """A pushed config's stand-in for its YAML file: errors name the field
    ("zones[0].rules[0].classes"), relative paths (a detector file) are relative to the
    folder of the camera's own config file."""

    def where(self, loc: Loc) -> str:
        return field_path(loc)


def central_config(doc: dict[str, Any], local: CameraConfig, version: int | None) -> CameraConfig:
    """The pushed document as a camera config of ``local``'s camera; ConfigError names the
    field that is wrong."""
    try:
        cfg = CameraConfig.model_validate(doc)
    except ValidationError as exc:
        found = problems(exc, doc)
        raise ConfigError(
            "; ".join(f"{field_path(loc)}: {msg}" for loc, msg in found[:3])
        ) from None
    if cfg.id != local.id:
        raise ConfigError(f"id: the config is for camera '{cfg.id}', not '{local.id}'")
    if cfg.source is not None:
        raise ConfigError("source: a central config has no source; the stream stays on the box")
    folder = local._doc.path.parent if local._doc is not None else Path.cwd()
    cfg._doc = CentralDocument(path=folder / f"{local.id}.central-v{version}.json", data=doc)
    return cfg


def effective_config(target: Target, local: CameraConfig, source: ConfigSource) -> CameraConfig:
    """The config ``target`` makes of this camera; ConfigError names what is wrong."""
    if target.config is None:
        base = local
    elif source == "local":
        raise ConfigError(
            "config: this box's fleet source is local: it runs its own camera files and takes "
            "only operating modes (set fleet.source: central in its edge config)"
        )
    else:
        base = central_config(target.config, local, target.applied.config_version)
    return apply_mode(base, target.overrides)
