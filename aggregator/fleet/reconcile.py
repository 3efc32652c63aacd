"""Which config pushes an edge's heartbeat calls for (docs: fleet-design, "Reconciliation").

Pure logic, no I/O: the ingest hands in what an edge reported, the desired states of its
cameras (aggregator/fleet/desired.py), the camera bindings and what this process already
sent or was refused, and sends what ``Reconciler.on_heartbeat`` returns. A camera gets a push
when it runs something other than its desired state, may be configured by this edge (bound to
it, or to nobody yet), no push of that same state went to the edge within ``retry_s``, and
the edge has not refused exactly that state before (here, or as another replica recorded in
fleet_cameras). Everything kept is per (edge, camera) of the edge's latest heartbeat, so an
edge cannot grow it by naming ever new cameras.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from contract.fleet import Applied, ConfigPush, ConfigReport, Heartbeat, ModeOverrides

#: (config_version, mode_rev): what identifies a desired state (a mode revision is the id of
#: the switch that set the mode, so it names the mode too).
StateKey = tuple[int | None, int]
EdgeCamera = tuple[str, str]
#: Refused states remembered per (edge, camera); older ones fall out (they are in
#: fleet_cameras as well, the latest one at least).
MAX_REFUSED_PER_CAMERA = 8


class DesiredState(Protocol):
    """A camera's desired state as aggregator.fleet.modes.desired_for returns it."""

    @property
    def camera(self) -> str: ...
    @property
    def config_version(self) -> int | None: ...
    @property
    def config(self) -> dict[str, Any] | None: ...
    @property
    def mode(self) -> str: ...
    @property
    def mode_rev(self) -> int: ...
    @property
    def drill(self) -> bool: ...
    @property
    def overrides(self) -> ModeOverrides: ...


@dataclass(frozen=True)
class InFlight:
    """A push sent and not reported on yet: the state it carried and when (monotonic s)."""

    state: StateKey
    sent_at_s: float


@dataclass(frozen=True)
class Outlook:
    """What the database says, as the desired cache last read it."""

    desired: Mapping[str, DesiredState] = field(default_factory=dict)
    #: camera -> the edge it is bound to (cameras bound to nobody are absent).
    bindings: Mapping[str, str] = field(default_factory=dict)
    #: (edge, camera) -> the state it last refused (fleet_cameras.failed_*).
    refused: Mapping[EdgeCamera, StateKey] = field(default_factory=dict)


def key_of(applied: Applied) -> StateKey:
    return (applied.config_version, applied.mode_rev)


def push_for(desired: DesiredState, central: bool) -> ConfigPush:
    """The push that gives a camera its desired state; an edge on its own config files
    (``central`` false) gets the mode only."""
    version = desired.config_version if central else None
    return ConfigPush(
        camera=desired.camera,
        applied=Applied(config_version=version, mode=desired.mode, mode_rev=desired.mode_rev),
        drill=desired.drill,
        config=desired.config if central and version is not None else None,
        overrides=desired.overrides,
    )


class Reconciler:
    """What this ingest process sent and was refused; not thread-safe (the ingest thread
    alone calls it)."""

    def __init__(self, retry_s: float) -> None:
        self.retry_s = retry_s
        self._in_flight: dict[EdgeCamera, InFlight] = {}
        self._refused: dict[EdgeCamera, list[StateKey]] = {}
        self._cameras: dict[str, frozenset[str]] = {}

    def on_heartbeat(
        self, edge_id: str, hb: Heartbeat, outlook: Outlook, now_s: float
    ) -> list[ConfigPush]:
        """The pushes this heartbeat calls for, noted as in flight at now_s (monotonic)."""
        self._forget_other_cameras(edge_id, frozenset(c.camera for c in hb.cameras))
        # An edge that does not say (an older one) runs its own files, the edge's default.
        central = hb.source == "central"
        pushes = []
        for status in hb.cameras:
            desired = outlook.desired.get(status.camera)
            if desired is None or outlook.bindings.get(status.camera, edge_id) != edge_id:
                continue
            push = push_for(desired, central)
            target = key_of(push.applied)
            if push.applied == status.applied or self._held_back(
                (edge_id, status.camera), target, outlook, now_s
            ):
                continue
            self._in_flight[(edge_id, status.camera)] = InFlight(target, now_s)
            pushes.append(push)
        return pushes

    def on_report(self, edge_id: str, report: ConfigReport) -> bool:
        """Note a report; False when it answers no push in flight (a late answer to a push
        superseded since, or one another replica sent): it is then ignored."""
        key = (edge_id, report.camera)
        sent = self._in_flight.get(key)
        if sent is None or sent.state != key_of(report.applied):
            return False
        del self._in_flight[key]
        if not report.ok:
            refused = self._refused.setdefault(key, [])
            refused.append(sent.state)
            del refused[:-MAX_REFUSED_PER_CAMERA]
        return True

    def in_flight(self) -> dict[EdgeCamera, InFlight]:
        return dict(self._in_flight)

    def _held_back(self, key: EdgeCamera, target: StateKey, outlook: Outlook, now_s: float) -> bool:
        sent = self._in_flight.get(key)
        if sent is not None and sent.state == target and now_s - sent.sent_at_s < self.retry_s:
            return True
        return outlook.refused.get(key) == target or target in self._refused.get(key, ())

    def _forget_other_cameras(self, edge_id: str, cameras: frozenset[str]) -> None:
        before = self._cameras.get(edge_id, frozenset())
        for camera in before - cameras:
            self._in_flight.pop((edge_id, camera), None)
            self._refused.pop((edge_id, camera), None)
        self._cameras[edge_id] = cameras
