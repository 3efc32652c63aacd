"""The last good pushed config of each camera, kept on disk so the box starts from it
without the aggregator (fleet source central): ``state_dir/<camera>.json``.

A file is written whole and renamed into place, so a power cut leaves the old one or the
new one, never half of one. An unreadable file is logged and ignored: the camera then starts
from its own config file, and the aggregator's next push brings it back in line.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from contract.fleet import Applied, ModeOverrides
from edge.control.target import Target

log = logging.getLogger(__name__)

#: The layout of a last-good file; a change old boxes cannot read bumps it.
STORE_FORMAT = 1


def _record(camera: str, target: Target) -> dict[str, Any]:
    a = target.applied
    return {
        "format": STORE_FORMAT,
        "camera": camera,
        "config_version": a.config_version,
        "mode": a.mode,
        "mode_rev": a.mode_rev,
        "drill": target.drill,
        "config": target.config,
        "overrides": {"tags": list(target.overrides.tags), "rules": target.overrides.rules},
        "saved_wall": time.time(),
    }


def _target(camera: str, d: Any) -> Target:
    """A record read back; ValueError/TypeError/KeyError when it is not one."""
    if not isinstance(d, dict) or d.get("format") != STORE_FORMAT:
        raise ValueError(f"not a last-good record of format {STORE_FORMAT}")
    if d["camera"] != camera:
        raise ValueError(f"it is camera '{d['camera']}'s record")
    version, config, over = d["config_version"], d["config"], d["overrides"]
    if version is not None and not isinstance(version, int):
        raise TypeError("config_version must be an integer or null")
    if config is not None and not isinstance(config, dict):
        raise TypeError("config must be a map or null")
    if not isinstance(d["mode"], str) or not isinstance(d["mode_rev"], int):
        raise TypeError("mode must be text and mode_rev an integer")
    if not isinstance(d["drill"], bool):
        raise TypeError("drill must be true or false")
    tags, rules = over["tags"], over["rules"]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise TypeError("overrides.tags must be a list of texts")
    if not isinstance(rules, dict) or not all(isinstance(v, dict) for v in rules.values()):
        raise TypeError("overrides.rules must be a map of maps")
    return Target(
        applied=Applied(version, d["mode"], d["mode_rev"]),
        drill=d["drill"],
        config=config,
        overrides=ModeOverrides(tuple(tags), rules),
    )


class LastGoodStore:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def path(self, camera: str) -> Path:
        return self.state_dir / f"{camera}.json"

    def save(self, camera: str, target: Target) -> None:
        """Write atomically (temp file, fsync, rename); OSError when the disk refuses."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        data = json.dumps(_record(camera, target), indent=1, sort_keys=True).encode()
        fd, tmp = tempfile.mkstemp(prefix=f".{camera}.", suffix=".tmp", dir=self.state_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            Path(tmp).replace(self.path(camera))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.state_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)

    def load(self, camera: str) -> Target | None:
        """The camera's last good target; None when there is none or it cannot be read
        (logged, naming the file and the reason)."""
        path = self.path(camera)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            log.error("%s: cannot read the last good config (%s); using the local file", path, exc)
            return None
        try:
            return _target(camera, json.loads(text))
        except (ValueError, TypeError, KeyError) as exc:
            log.error(
                "%s: not a readable last good config (%s: %s); using the local file",
                path,
                type(exc).__name__,
                exc,
            )
            return None
