"""What this box tells the aggregator about itself in every heartbeat.

The detect stage writes it (what each camera runs, its last refusal, its last event and its
frame rate), the camera threads' state is read when a heartbeat is built, and the publisher
thread reads it: one lock guards it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version

from contract.fleet import (
    MAX_SOFTWARE_CHARS,
    Applied,
    CameraState,
    CameraStatus,
    ConfigSource,
    Heartbeat,
    short_error,
)

#: The distribution whose version the heartbeat reports.
PACKAGE = "streetwatch"


def software_version() -> str:
    """The installed streetwatch version; "dev" when run from a tree that is not installed."""
    try:
        return version(PACKAGE)[:MAX_SOFTWARE_CHARS]
    except PackageNotFoundError:
        return "dev"


@dataclass(frozen=True)
class _Camera:
    applied: Applied = field(default_factory=Applied)
    error: str | None = None
    last_event_wall: float | None = None
    fps: float = 0.0


StateOf = Callable[[str], CameraState]


class FleetStatus:
    """``cameras``: this box's camera ids in config order; ``state_of`` reads a camera's
    stream state (its CameraFeed) when a heartbeat is built."""

    def __init__(
        self,
        source: ConfigSource,
        cameras: Sequence[str],
        state_of: StateOf = lambda _camera: "starting",
        software: str | None = None,
    ) -> None:
        self.source: ConfigSource = source
        self.software = software if software is not None else software_version()
        self._state_of = state_of
        self._lock = threading.Lock()
        self._cameras = {c: _Camera() for c in cameras}

    def _update(self, camera: str, change: Callable[[_Camera], _Camera]) -> None:
        with self._lock:
            if camera in self._cameras:
                self._cameras[camera] = change(self._cameras[camera])

    def applied(self, camera: str, applied: Applied) -> None:
        """The camera now runs ``applied``; its last refusal no longer stands."""
        self._update(camera, lambda c: replace(c, applied=applied, error=None))

    def refused(self, camera: str, error: str) -> None:
        self._update(camera, lambda c: replace(c, error=short_error(error)))

    def event(self, camera: str, wall_s: float) -> None:
        self._update(camera, lambda c: replace(c, last_event_wall=wall_s))

    def fps(self, camera: str, fps: float) -> None:
        self._update(camera, lambda c: replace(c, fps=fps))

    def camera(self, camera: str) -> CameraStatus:
        with self._lock:
            c = self._cameras[camera]
        return CameraStatus(
            camera=camera,
            state=self._state_of(camera),
            fps=c.fps,
            applied=c.applied,
            last_event_wall=c.last_event_wall,
            error=c.error,
        )

    def heartbeat(self, depth: int | None) -> Heartbeat:
        with self._lock:
            names = list(self._cameras)
        return Heartbeat(
            depth=depth,
            software=self.software,
            source=self.source,
            cameras=tuple(self.camera(c) for c in names),
        )
