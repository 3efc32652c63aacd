"""Open supervision (no login): the public figures as JSON and CSV, for the public page
(/ui/public.html) and open-data users. Counts, rates and medians only; small counts are
suppressed (aggregator/grid/public.py)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from aggregator.api.deps import Services, ServicesDep
from aggregator.api.schemas.common import errors
from aggregator.api.schemas.public import PublicFigures
from aggregator.api.scorecard import csv_doc, csv_response
from aggregator.grid.public import MAX_MONTHS, figures_csv, public_figures

router = APIRouter(prefix="/public/v1", tags=["public"])
#: Anyone may ask, so caches (a reverse proxy, browsers) may keep an answer this long.
CACHE = {"Cache-Control": "public, max-age=60"}

Months = Annotated[
    int, Query(ge=1, le=MAX_MONTHS, description="The months counted: this one and before.")
]
Weeks = Annotated[int, Query(ge=1, le=52, description="The scorecard's period in ISO weeks.")]


def _figures(services: Services, months: int, weeks: int) -> dict[str, Any]:
    cfg = services.grid.public
    if not cfg.enabled:
        raise HTTPException(404, "the public figures are turned off (grid.public.enabled)")
    with services.engine.connect() as conn:
        return public_figures(conn, services.catalogue, time.time(), months, weeks, cfg.min_count)


@router.get("/figures.json", responses=errors(404, 422))
def figures_json(
    services: ServicesDep, response: Response, months: Months = 12, weeks: Weeks = 8
) -> PublicFigures:
    """Cases per district, grid cell, category and month filed: filed, closed, on-time
    closure rate, median hours to close, rework rate; totals per district and category;
    the scorecard by department and district. Drill cases never count; any row with a
    count from 1 to grid.public.min_count - 1 is left out (``suppressed`` counts them)."""
    response.headers.update(CACHE)
    return PublicFigures.model_validate(_figures(services, months, weeks))


@router.get(
    "/figures.csv",
    response_class=Response,
    responses={**csv_doc("The rows of figures.json, one a line."), **errors(404, 422)},
)
def figures_csv_route(services: ServicesDep, months: Months = 12, weeks: Weeks = 8) -> Response:
    """The rows of figures.json as CSV (the totals and scorecard are in the JSON)."""
    out = csv_response(figures_csv(_figures(services, months, weeks)), "figures.csv")
    out.headers.update(CACHE)
    return out
