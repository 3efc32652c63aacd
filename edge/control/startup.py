"""Where each camera starts: with fleet source central, from its last good pushed config
(its mode too, so a box restarted offline during an emergency stays in emergency), else
from its own config file in peacetime."""

from __future__ import annotations

import logging

from contract.config.camera import CameraConfig
from contract.errors import StreetwatchError
from contract.fleet import ConfigSource
from edge.control.apply import describe
from edge.control.store import LastGoodStore
from edge.control.target import Target, effective_config

log = logging.getLogger(__name__)


def starting_target(
    local: CameraConfig, source: ConfigSource, store: LastGoodStore | None
) -> tuple[Target, CameraConfig]:
    """The camera's first target and its effective config; ConfigError when even the local
    file does not make one (the box cannot start that camera)."""
    if source == "central" and store is not None:
        saved = store.load(local.id)
        if saved is not None:
            try:
                cfg = effective_config(saved, local, source)
            except StreetwatchError as exc:
                log.error(
                    "%s: the last good config no longer applies (%s); camera %s starts from "
                    "its local file",
                    store.path(local.id),
                    exc,
                    local.id,
                )
            else:
                log.info(
                    "camera %s: starts from its last good %s (%s)",
                    local.id,
                    describe(saved.applied, saved.drill),
                    store.path(local.id),
                )
                return saved, cfg
    target = Target()
    return target, effective_config(target, local, source)
