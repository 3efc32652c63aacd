"""The desired state of the cameras an ingest process hears of, reread every
``fleet.desired_refresh_s`` in a thread of its own, so the ingest loop never waits on the
database: it reads the latest ``Outlook`` (desired states, camera bindings, refusals that
fleet_cameras records), which is replaced whole on each reread.

One short query set per reread, for the cameras named in the edges' latest heartbeats only
(an edge cannot grow the set by naming ever new cameras: each edge's set is replaced). A
database error keeps the previous outlook and is logged once until a reread succeeds again.
Config documents (up to fleet.max_config_bytes each) are kept by (camera, version), which
never changes, and read only when a new version appears: a reread fetches version numbers,
places and switches. The states are those of aggregator.fleet.modes.desired_for, assembled
from its parts (tests/aggregator/test_fleet_ingest.py holds the two equal).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import Connection, Engine, func, select, tuple_

from aggregator.cameras import owners
from aggregator.core.fleet_config import ModesConfig
from aggregator.db.models import CAMERA_CONFIGS, CAMERAS, FLEET_CAMERAS
from aggregator.fleet.modes import Desired, active_switches, overrides_of, winning_switch
from aggregator.fleet.reconcile import DesiredState, EdgeCamera, Outlook, StateKey
from contract.vocabulary import PEACETIME

Document = dict[str, Any]

log = logging.getLogger(__name__)


def latest_versions(conn: Connection, cameras: Collection[str]) -> dict[str, int]:
    c = CAMERA_CONFIGS.c
    rows = conn.execute(
        select(c.camera_id, func.max(c.version))
        .where(c.camera_id.in_(sorted(cameras)))
        .group_by(c.camera_id)
    )
    return {str(camera): int(version) for camera, version in rows}


def documents(conn: Connection, keys: Collection[tuple[str, int]]) -> dict[tuple[str, int], Any]:
    c = CAMERA_CONFIGS.c
    rows = conn.execute(
        select(c.camera_id, c.version, c.document).where(
            tuple_(c.camera_id, c.version).in_(sorted(keys))
        )
    )
    return {(str(r.camera_id), int(r.version)): r.document for r in rows}


def places(conn: Connection, cameras: Collection[str]) -> dict[str, tuple[str, str]]:
    """camera -> (group, grid cell), of those with a cameras row."""
    c = CAMERAS.c
    rows = conn.execute(
        select(c.camera_id, c.camera_group, c.grid_cell).where(c.camera_id.in_(sorted(cameras)))
    )
    return {str(r.camera_id): (str(r.camera_group or ""), str(r.grid_cell or "")) for r in rows}


def refusals(conn: Connection, cameras: Collection[str]) -> dict[EdgeCamera, StateKey]:
    """(edge, camera) -> the state it last refused, of these cameras (failed_mode_rev is set
    on every refusal; a null one means none)."""
    c = FLEET_CAMERAS.c
    rows = conn.execute(
        select(c.edge_id, c.camera_id, c.failed_config_version, c.failed_mode_rev).where(
            c.camera_id.in_(sorted(cameras)), c.failed_mode_rev.is_not(None)
        )
    )
    return {
        (str(r.edge_id), str(r.camera_id)): (r.failed_config_version, int(r.failed_mode_rev))
        for r in rows
    }


class DesiredCache:
    """Thread-safe; ``start`` runs the rereads, ``stop`` ends them."""

    def __init__(
        self,
        engine: Engine,
        modes: ModesConfig,
        refresh_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.modes = modes
        self.refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._watched: dict[str, frozenset[str]] = {}
        self._outlook = Outlook()
        self._documents: dict[tuple[str, int], Document] = {}
        self._failing = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-desired", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def watch(self, edge_id: str, cameras: frozenset[str]) -> None:
        """The cameras an edge's latest heartbeat named; a camera not known yet is read at
        once rather than at the next period."""
        with self._lock:
            before = self._watched.get(edge_id)
            if before == cameras:
                return
            self._watched[edge_id] = cameras
            known = self._outlook.desired.keys()
        if not cameras <= known:
            self._wake.set()

    def outlook(self) -> Outlook:
        with self._lock:
            return self._outlook

    def refresh(self) -> bool:
        """Reread now; False when the database failed (the previous outlook stays)."""
        with self._lock:
            cameras = frozenset().union(*self._watched.values())
        try:
            outlook = self._read(cameras) if cameras else Outlook()
        except Exception as exc:
            if not self._failing:
                log.error("fleet: desired states not reread, keeping the last ones: %s", exc)
            self._failing = True
            return False
        if self._failing:
            log.info("fleet: desired states reread again")
        self._failing = False
        with self._lock:
            self._outlook = outlook
        return True

    def _read(self, cameras: frozenset[str]) -> Outlook:
        with self.engine.connect() as conn:
            versions = latest_versions(conn, cameras)
            wanted = set(versions.items())
            missing = wanted - self._documents.keys()
            docs = {k: self._documents[k] for k in wanted - missing}
            if missing:
                docs.update(documents(conn, missing))
            desired = self._assemble(conn, cameras, versions, docs)
            bindings = owners(conn, cameras)
            refused = refusals(conn, cameras)
        self._documents = docs  # only the versions some camera wants now
        return Outlook(desired=desired, bindings=bindings, refused=refused)

    def _assemble(
        self,
        conn: Connection,
        cameras: frozenset[str],
        versions: dict[str, int],
        docs: dict[tuple[str, int], Document],
    ) -> dict[str, DesiredState]:
        """What desired_for says, with the documents given."""
        where = places(conn, cameras)
        switches = active_switches(conn, self._clock())
        out: dict[str, DesiredState] = {}
        for camera in cameras:
            group, area = where.get(camera, ("", ""))
            sw = winning_switch(switches, camera, group, area)
            mode, rev = (sw.mode, sw.id) if sw is not None else (PEACETIME, 0)
            definition = self.modes.definitions.get(mode)
            version = versions.get(camera)
            out[camera] = Desired(
                camera=camera,
                config_version=version,
                config=None if version is None else docs.get((camera, version)),
                mode=mode,
                mode_rev=rev,
                drill=bool(definition and definition.drill),
                overrides=overrides_of(mode, definition),
            )
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self.refresh()
            self._wake.wait(self.refresh_s)
