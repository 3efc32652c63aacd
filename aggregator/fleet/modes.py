"""Operating-mode switches: made now or scheduled, cancelled, listed, audited; and each
camera's desired state (config version and mode) that the ingest pushes to the edges.

A switch row is active at time t when starts_at <= t, (ends_at is null or t < ends_at) and it
is not cancelled. Scopes from the most to the least specific: camera, group
(cameras.camera_group), area (cameras.grid_cell), city; the most specific scope with an
active switch decides a camera's mode, and within one scope the latest start (then the
highest id) wins. The winning switch's id is the mode revision edges report; with no
active switch a camera is in peacetime, revision 0.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, func, or_, select, update

from aggregator.core.fleet_config import ModeDefinition, ModesConfig
from aggregator.db.models import AUDIT, CAMERA_CONFIGS, CAMERAS, MODE_SWITCHES
from aggregator.fleet.errors import FleetError
from contract.fleet import ModeOverrides
from contract.vocabulary import PEACETIME

#: Scope kinds from the most specific to the least.
SCOPE_KINDS = ("camera", "group", "area", "city")
MAX_SCOPE_VALUE_CHARS = 64
MAX_REASON_CHARS = 512
MAX_ACTOR_CHARS = 64


@dataclass(frozen=True)
class Scope:
    kind: str
    value: str = ""

    def __str__(self) -> str:
        return self.kind if self.kind == "city" else f"{self.kind}:{self.value}"


def parse_scope(text: str) -> Scope:
    """``city``, ``area:<grid cell>``, ``group:<camera group>`` or ``camera:<id>``."""
    kind, sep, value = text.strip().partition(":")
    if kind == "city" and not sep:
        return Scope("city")
    if kind not in SCOPE_KINDS or kind == "city" or not value.strip():
        raise FleetError(
            422,
            f"scope '{text}' must be city, area:<grid cell>, group:<camera group> or "
            "camera:<camera id>",
        )
    if len(value) > MAX_SCOPE_VALUE_CHARS:
        raise FleetError(422, f"scope '{text[:80]}': at most {MAX_SCOPE_VALUE_CHARS} characters")
    return Scope(kind, value.strip())


@dataclass(frozen=True)
class Switch:
    id: int
    mode: str
    scope: Scope
    starts_at: float
    ends_at: float | None
    actor: str
    reason: str
    created_at: float
    cancelled_at: float | None

    def active_at(self, t: float) -> bool:
        return (
            self.cancelled_at is None
            and self.starts_at <= t
            and (self.ends_at is None or t < self.ends_at)
        )


def switch_of(row: Any) -> Switch:
    return Switch(
        id=int(row.id),
        mode=str(row.mode),
        scope=Scope(str(row.scope_kind), str(row.scope_value or "")),
        starts_at=float(row.starts_at),
        ends_at=row.ends_at,
        actor=str(row.actor),
        reason=str(row.reason),
        created_at=float(row.created_at),
        cancelled_at=row.cancelled_at,
    )


@dataclass(frozen=True)
class Desired:
    """What a camera should run: its latest central config (None: it has none) under the
    mode its most specific active switch sets."""

    camera: str
    config_version: int | None
    config: dict[str, Any] | None
    mode: str
    mode_rev: int
    drill: bool
    overrides: ModeOverrides = field(default_factory=ModeOverrides)


def overrides_of(mode: str, definition: ModeDefinition | None) -> ModeOverrides:
    """A mode as the edge applies it; a mode no longer defined runs its own rules only."""
    if definition is None:
        return ModeOverrides(tags=(mode,))
    return ModeOverrides(tags=(mode, *definition.tags), rules=dict(definition.rules))


def _active_condition(t: float) -> Any:
    s = MODE_SWITCHES.c
    return (s.starts_at <= t) & or_(s.ends_at.is_(None), s.ends_at > t) & s.cancelled_at.is_(None)


def active_switches(conn: Connection, now: float) -> list[Switch]:
    """Every switch active at now, in precedence order within a scope (latest first)."""
    rows = conn.execute(
        select(MODE_SWITCHES)
        .where(_active_condition(now))
        .order_by(MODE_SWITCHES.c.starts_at.desc(), MODE_SWITCHES.c.id.desc())
    )
    return [switch_of(r) for r in rows]


def in_force(switches: Iterable[Switch]) -> list[Switch]:
    """Of active switches, those that still decide their scope: the latest of each scope
    (a later switch of the same scope supersedes an earlier one), latest first."""
    best: dict[Scope, Switch] = {}
    for sw in switches:
        held = best.get(sw.scope)
        if held is None or (sw.starts_at, sw.id) > (held.starts_at, held.id):
            best[sw.scope] = sw
    return sorted(best.values(), key=lambda sw: (sw.starts_at, sw.id), reverse=True)


def winning_switch(switches: Iterable[Switch], camera: str, group: str, area: str) -> Switch | None:
    """The switch that sets the camera's mode among active ones (see the module docstring)."""
    wanted = {"camera": camera, "group": group, "area": area, "city": ""}
    best: dict[str, Switch] = {}
    for sw in switches:
        value = wanted.get(sw.scope.kind)
        if value is None or (sw.scope.kind != "city" and (not value or sw.scope.value != value)):
            continue
        held = best.get(sw.scope.kind)
        if held is None or (sw.starts_at, sw.id) > (held.starts_at, held.id):
            best[sw.scope.kind] = sw
    for kind in SCOPE_KINDS:
        if kind in best:
            return best[kind]
    return None


def latest_configs(conn: Connection, cameras: Collection[str]) -> dict[str, tuple[int, Any]]:
    """camera -> (latest version, its document), for those of cameras that have one."""
    c = CAMERA_CONFIGS.c
    latest = (
        select(c.camera_id, func.max(c.version).label("version"))
        .where(c.camera_id.in_(sorted(cameras)))
        .group_by(c.camera_id)
        .subquery()
    )
    rows = conn.execute(
        select(c.camera_id, c.version, c.document).join(
            latest, (c.camera_id == latest.c.camera_id) & (c.version == latest.c.version)
        )
    )
    return {str(r.camera_id): (int(r.version), r.document) for r in rows}


def desired_for(
    conn: Connection, cameras: Collection[str], modes: ModesConfig, now: float
) -> dict[str, Desired]:
    """The desired state of each of cameras at time now: three queries whatever their number."""
    if not cameras:
        return {}
    configs = latest_configs(conn, cameras)
    places = {
        str(r.camera_id): (str(r.camera_group or ""), str(r.grid_cell or ""))
        for r in conn.execute(
            select(CAMERAS.c.camera_id, CAMERAS.c.camera_group, CAMERAS.c.grid_cell).where(
                CAMERAS.c.camera_id.in_(sorted(cameras))
            )
        )
    }
    switches = active_switches(conn, now)
    out: dict[str, Desired] = {}
    for camera in cameras:
        group, area = places.get(camera, ("", ""))
        sw = winning_switch(switches, camera, group, area)
        mode, rev = (sw.mode, sw.id) if sw is not None else (PEACETIME, 0)
        definition = modes.definitions.get(mode)
        version, document = configs.get(camera, (None, None))
        out[camera] = Desired(
            camera=camera,
            config_version=version,
            config=document,
            mode=mode,
            mode_rev=rev,
            drill=bool(definition and definition.drill),
            overrides=overrides_of(mode, definition),
        )
    return out


def _text(value: str, what: str, max_chars: int) -> str:
    value = value.strip()
    if not value:
        raise FleetError(422, f"{what} must not be empty")
    if len(value) > max_chars:
        raise FleetError(422, f"{what} has {len(value)} characters, at most {max_chars}")
    return value


class ModeSwitches:
    """Switches made, cancelled and listed; each change is audited (entity "mode")."""

    def __init__(self, engine: Engine, modes: ModesConfig) -> None:
        self.engine = engine
        self.modes = modes

    def switch(
        self,
        mode: str,
        scope: str,
        actor: str,
        reason: str,
        starts_at: float | None = None,
        ends_at: float | None = None,
        now: float | None = None,
    ) -> Switch:
        """Switch scope to mode from starts_at (default: now) until ends_at (default: until
        another switch); back to peacetime is a switch like any other."""
        now = time.time() if now is None else now
        if mode not in self.modes.definitions:
            known = ", ".join(sorted(self.modes.definitions))
            raise FleetError(422, f"unknown mode '{mode}': one of {known}")
        where = parse_scope(scope)
        reason = _text(reason, "reason", MAX_REASON_CHARS)
        actor = _text(actor, "actor", MAX_ACTOR_CHARS)
        start = now if starts_at is None else starts_at
        if ends_at is not None and ends_at <= max(start, now):
            raise FleetError(422, "ends_at must be after starts_at and in the future")
        row: dict[str, Any] = {
            "mode": mode,
            "scope_kind": where.kind,
            "scope_value": where.value,
            "starts_at": start,
            "ends_at": ends_at,
            "actor": actor,
            "reason": reason,
            "created_at": now,
            "cancelled_at": None,
        }
        with self.engine.begin() as conn:
            key = conn.execute(MODE_SWITCHES.insert().values(**row)).inserted_primary_key
            assert key is not None
            sw = switch_of(_Row(id=int(key[0]), **row))
            detail = {"mode": mode, "scope": str(where), "starts_at": start, "ends_at": ends_at}
            _audit(conn, actor, "mode_switch", sw.id, detail, reason, now)
        return sw

    def cancel(self, switch_id: int, actor: str, reason: str | None = None) -> Switch:
        """Cancel a switch (active or scheduled): cameras fall back to the next one."""
        now = time.time()
        actor = _text(actor, "actor", MAX_ACTOR_CHARS)
        with self.engine.begin() as conn:
            sw = self._get(conn, switch_id)
            if sw.cancelled_at is not None:
                raise FleetError(409, f"mode switch {switch_id} is already cancelled")
            if sw.ends_at is not None and sw.ends_at <= now:
                raise FleetError(409, f"mode switch {switch_id} has already ended")
            conn.execute(
                update(MODE_SWITCHES)
                .where(MODE_SWITCHES.c.id == switch_id)
                .values(cancelled_at=now)
            )
            detail = {"mode": sw.mode, "scope": str(sw.scope)}
            _audit(conn, actor, "mode_cancel", switch_id, detail, reason, now)
            return self._get(conn, switch_id)

    def get(self, switch_id: int) -> Switch:
        with self.engine.connect() as conn:
            return self._get(conn, switch_id)

    @staticmethod
    def _get(conn: Connection, switch_id: int) -> Switch:
        row = conn.execute(select(MODE_SWITCHES).where(MODE_SWITCHES.c.id == switch_id)).first()
        if row is None:
            raise FleetError(404, f"no mode switch {switch_id}")
        return switch_of(row)

    def active(self, now: float | None = None) -> list[Switch]:
        """The switches in force now (each decides its scope), latest first."""
        with self.engine.connect() as conn:
            return in_force(active_switches(conn, time.time() if now is None else now))

    def scheduled(self, now: float | None = None) -> list[Switch]:
        """Switches that start later and are not cancelled, soonest first."""
        t = time.time() if now is None else now
        s = MODE_SWITCHES.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(MODE_SWITCHES)
                .where(s.starts_at > t, s.cancelled_at.is_(None))
                .order_by(s.starts_at, s.id)
            )
            return [switch_of(r) for r in rows]

    def history(self, limit: int = 100) -> list[Switch]:
        """The audit trail: every switch, cancelled ones too, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(MODE_SWITCHES).order_by(MODE_SWITCHES.c.id.desc()).limit(limit)
            )
            return [switch_of(r) for r in rows]


@dataclass(frozen=True)
class _Row:
    """A mode_switches row as inserted, read like a database row."""

    id: int
    mode: str
    scope_kind: str
    scope_value: str
    starts_at: float
    ends_at: float | None
    actor: str
    reason: str
    created_at: float
    cancelled_at: float | None


def _audit(
    conn: Connection,
    actor: str,
    action: str,
    switch_id: int,
    detail: dict[str, Any],
    reason: str | None,
    now: float,
) -> None:
    conn.execute(
        AUDIT.insert().values(
            at=now,
            username=actor,
            action=action,
            entity="mode",
            entity_id=str(switch_id),
            detail=detail,
            reason=reason,
        )
    )
