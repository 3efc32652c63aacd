"""The drill report: per drill event, how fast detection, review and dispatch went."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from aggregator.api.auth import require
from aggregator.api.deps import RowId, ServicesDep
from aggregator.api.modes import switch_public
from aggregator.api.schemas.common import errors
from aggregator.api.schemas.drills import (
    DrillReportPublic,
    DrillRowPublic,
    DrillStepsPublic,
    StepPublic,
)
from aggregator.fleet.drills import drill_report
from aggregator.fleet.errors import FleetError

router = APIRouter(
    prefix="/api/v1/drills",
    tags=["drills"],
    dependencies=[Depends(require("supervisor"))],
    responses=errors(401, 403),
)


@router.get("/{switch_id}/report", responses=errors(404, 409, 422))
def report(switch_id: RowId, services: ServicesDep) -> DrillReportPublic:
    """The events raised under one drill switch (in its scope, while it held) and how long
    each step took: detection (raised -> received), review (received -> reviewed) and
    dispatch (case filed -> dispatched)."""
    try:
        rep = drill_report(services.engine, services.modes, switch_id)
    except FleetError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    steps = {name: StepPublic(**vars(f)) for name, f in rep.steps.items()}
    return DrillReportPublic(
        switch=switch_public(rep.switch, services.modes),
        events=len(rep.rows),
        steps=DrillStepsPublic(**steps),
        rows=[DrillRowPublic(**vars(r)) for r in rep.rows],
    )
