"""The unit grid for the review UI's map: every cell with its open and overdue cases, and
the cameras placed on it."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import Connection, case, func, select

from aggregator.api.auth import require
from aggregator.api.deps import ServicesDep
from aggregator.api.schemas.common import errors
from aggregator.api.schemas.grid import CameraMarker, CellFeature, CellProperties, GridPublic
from aggregator.db.grid_models import GRID_CELLS
from aggregator.db.models import CAMERAS, CASES
from aggregator.review import OPEN_STATUSES

router = APIRouter(
    prefix="/api/v1",
    tags=["grid"],
    dependencies=[Depends(require("viewer"))],
    responses=errors(401),
)


def _case_counts(conn: Connection, now: float) -> dict[str, tuple[int, int]]:
    """{cell: (open, overdue)} of real (not drill) open cases."""
    late = func.sum(case((CASES.c.deadline_at < now, 1), else_=0))
    rows = conn.execute(
        select(CASES.c.grid_cell, func.count(), late)
        .where(CASES.c.status.in_(OPEN_STATUSES), CASES.c.drill.is_(False))
        .group_by(CASES.c.grid_cell)
    )
    return {str(cell): (int(n), int(overdue or 0)) for cell, n, overdue in rows}


@router.get("/grid")
def grid(services: ServicesDep) -> GridPublic:
    """The grid cells as GeoJSON with their open and overdue cases (drills left out), and
    every camera that has a position."""
    c = GRID_CELLS.c
    with services.engine.connect() as conn:
        counts = _case_counts(conn, time.time())
        cells = conn.execute(
            select(c.code, c.name, c.district, c.responsible, c.geometry).order_by(c.code)
        ).all()
        cams = conn.execute(
            select(CAMERAS).where(CAMERAS.c.lat.is_not(None), CAMERAS.c.lon.is_not(None))
        ).all()
    features = []
    for row in cells:
        n_open, overdue = counts.get(row.code, (0, 0))
        props: dict[str, Any] = {**row._mapping, "open": n_open, "overdue": overdue}
        features.append(
            CellFeature(properties=CellProperties.model_validate(props), geometry=row.geometry)
        )
    markers = [
        CameraMarker(
            camera=m.camera_id, lat=m.lat, lon=m.lon, grid_cell=m.grid_cell, address=m.address
        )
        for m in cams
    ]
    return GridPublic(features=features, cameras=markers, tile_url=services.grid.tile_url)
