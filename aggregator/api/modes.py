"""Operating modes: the definitions, the switches in force and scheduled, switching a scope
now or on a schedule, cancelling a switch, and the audit trail of switches."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from aggregator.api.auth import require
from aggregator.api.deps import RowId, ServicesDep
from aggregator.api.schemas.common import errors
from aggregator.api.schemas.modes import (
    CaseOverridePublic,
    ModeDefinitionPublic,
    ModesPublic,
    SwitchCreate,
    SwitchPublic,
)
from aggregator.auth import User
from aggregator.core.fleet_config import ModesConfig
from aggregator.fleet.errors import FleetError
from aggregator.fleet.modes import ModeSwitches, Switch

router = APIRouter(
    prefix="/api/v1/modes",
    tags=["modes"],
    dependencies=[Depends(require("viewer"))],
    responses=errors(401),
)
Supervisor = Annotated[User, Depends(require("supervisor"))]


def switch_public(sw: Switch, modes: ModesConfig) -> SwitchPublic:
    definition = modes.definitions.get(sw.mode)
    return SwitchPublic(
        id=sw.id,
        mode=sw.mode,
        scope=str(sw.scope),
        starts_at=sw.starts_at,
        ends_at=sw.ends_at,
        actor=sw.actor,
        reason=sw.reason,
        label=(definition.label if definition else "") or sw.mode,
        drill=bool(definition and definition.drill),
        created_at=sw.created_at,
        cancelled_at=sw.cancelled_at,
    )


@router.get("")
def modes(services: ServicesDep) -> ModesPublic:
    """The modes the city defined, the switches in force (one per scope) and those
    scheduled to start later: what the UI's banner shows."""
    switches = ModeSwitches(services.engine, services.modes)
    defs = services.modes.definitions
    return ModesPublic(
        definitions=[
            ModeDefinitionPublic(
                name=name,
                label=d.label or name,
                drill=d.drill,
                tags=list(d.tags),
                rules=dict(d.rules),
                cases={
                    t: CaseOverridePublic(time_limit_h=c.time_limit_h, priority=c.priority)
                    for t, c in d.cases.items()
                },
            )
            for name, d in defs.items()
        ],
        active=[switch_public(sw, services.modes) for sw in switches.active()],
        scheduled=[switch_public(sw, services.modes) for sw in switches.scheduled()],
    )


@router.post("/switches", status_code=201, responses=errors(400, 403, 422))
def switch(body: SwitchCreate, services: ServicesDep, user: Supervisor) -> SwitchPublic:
    """Switch a scope (city, area:<cell>, group:<name>, camera:<id>) to a mode now, or from
    starts_at to ends_at (supervisor). Audited; edges apply it within seconds."""
    try:
        sw = ModeSwitches(services.engine, services.modes).switch(
            body.mode, body.scope, user.username, body.reason, body.starts_at, body.ends_at
        )
    except FleetError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return switch_public(sw, services.modes)


@router.get("/switches", responses=errors(422))
def history(
    services: ServicesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[SwitchPublic]:
    """Every switch, cancelled ones too, newest first: the audit trail."""
    rows = ModeSwitches(services.engine, services.modes).history(limit)
    return [switch_public(sw, services.modes) for sw in rows]


@router.delete("/switches/{switch_id}", responses=errors(403, 404, 409, 422))
def cancel(switch_id: RowId, services: ServicesDep, user: Supervisor) -> SwitchPublic:
    """Cancel a switch, in force or scheduled (supervisor): its scope falls back to the
    switch before it. Audited."""
    try:
        sw = ModeSwitches(services.engine, services.modes).cancel(switch_id, user.username)
    except FleetError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return switch_public(sw, services.modes)
