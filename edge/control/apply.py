"""Applying a push to one running camera: build, swap, or keep what runs (rollback).

Used by the detect stage's thread only, between turns: the camera's decode thread keeps
running; its chain gets the new detector filter, rules, zones (``CameraChain.reconfigure``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from contract.config.camera import CameraConfig
from contract.errors import StreetwatchError
from contract.fleet import Applied, ConfigPush, ConfigReport, ConfigSource, short_error
from edge.camera.chain import CameraChain
from edge.camera.detectors import DetectorCache
from edge.control.status import FleetStatus
from edge.control.store import LastGoodStore
from edge.control.target import Target, effective_config

log = logging.getLogger(__name__)


def describe(a: Applied, drill: bool = False) -> str:
    """'config v3, mode emergency (drill, rev 7)' for logs."""
    config = "the local config" if a.config_version is None else f"config v{a.config_version}"
    return f"{config}, mode {a.mode} ({'drill, ' if drill else ''}rev {a.mode_rev})"


@dataclass(frozen=True)
class _Refusal:
    key: str
    error: str


class CameraControl:
    """One camera: its own config file (``local``), what it runs (``target``, whose
    effective config is ``config``) and the last push it refused."""

    def __init__(
        self,
        local: CameraConfig,
        target: Target,
        config: CameraConfig,
        *,
        source: ConfigSource,
        status: FleetStatus,
        store: LastGoodStore | None = None,
    ) -> None:
        self.local = local
        self.target = target
        self.config = config
        self.source: ConfigSource = source
        self._status = status
        self._store = store
        self._refused: _Refusal | None = None
        status.applied(local.id, target.applied)

    @property
    def camera(self) -> str:
        return self.local.id

    def _report(self, push: ConfigPush, error: str | None) -> ConfigReport:
        return ConfigReport(push.camera, push.applied, ok=error is None, error=error)

    def apply(
        self,
        push: ConfigPush,
        chain: CameraChain,
        detectors: DetectorCache,
        deadline_mono_s: float | None = None,
    ) -> ConfigReport:
        """Run ``push`` on ``chain``, or keep what runs and say why not."""
        target = Target.of_push(push)
        if target.key == self.target.key:
            return self._report(push, None)  # a repeat of what runs (a lost report, a retry)
        if self._refused is not None and self._refused.key == target.key:
            return self._report(push, self._refused.error)  # not tried again
        try:
            cfg = effective_config(target, self.local, self.source)
            detector = detectors.get(cfg)
            chain.reconfigure(
                cfg,
                detector,
                mode=target.applied.mode,
                drill=target.drill,
                deadline_mono_s=deadline_mono_s,
            )
        except StreetwatchError as exc:
            return self._refuse(push, target, str(exc))
        except Exception as exc:  # one camera's bad push must not stop the box
            log.exception("camera %s: applying a push failed", self.camera)
            return self._refuse(push, target, f"{type(exc).__name__}: {exc}")
        self._applied(target, cfg)
        return self._report(push, None)

    def _refuse(self, push: ConfigPush, target: Target, error: str) -> ConfigReport:
        error = short_error(error)
        self._refused = _Refusal(target.key, error)
        self._status.refused(self.camera, error)
        log.warning(
            "camera %s: refused %s: %s; it keeps %s",
            self.camera,
            describe(target.applied, target.drill),
            error,
            describe(self.target.applied, self.target.drill),
        )
        return self._report(push, error)

    def _applied(self, target: Target, cfg: CameraConfig) -> None:
        self.target, self.config, self._refused = target, cfg, None
        self._status.applied(self.camera, target.applied)
        log.info("camera %s: runs %s", self.camera, describe(target.applied, target.drill))
        if self.source != "central" or self._store is None:
            return
        try:
            self._store.save(self.camera, target)
        except OSError as exc:
            log.error(
                "camera %s: cannot save the last good config to %s: %s; it runs, but a "
                "restart without the aggregator starts from the previous one",
                self.camera,
                self._store.path(self.camera),
                exc,
            )
