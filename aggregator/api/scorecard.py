"""The evaluation scorecard (GB/T 30428.4 style): on-time closure, rework, overdue and
first-time pass by department, grid cell or district, with a weekly trend; JSON and CSV."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from aggregator.api.auth import require
from aggregator.api.deps import ServicesDep
from aggregator.api.schemas.common import errors
from aggregator.api.schemas.scorecard import ScorecardPublic, ScorePublic
from aggregator.grid.scorecard import (
    MAX_WEEKS,
    GroupBy,
    Score,
    iso_week,
    scorecard,
    scorecard_csv,
    week_starts,
)

router = APIRouter(
    prefix="/api/v1",
    tags=["scorecard"],
    dependencies=[Depends(require("viewer"))],
    responses=errors(401),
)


def csv_response(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def csv_doc(what: str) -> dict[int | str, dict[str, Any]]:
    """The CSV answer in OpenAPI (the route's response_class is a plain Response, whose
    media type is unset, so its error answers stay documented as JSON)."""
    return {200: {"description": what, "content": {"text/csv": {"schema": {"type": "string"}}}}}


By = Annotated[GroupBy, Query(description="Group by department, grid_cell or district.")]
Weeks = Annotated[
    int, Query(ge=1, le=MAX_WEEKS, description="The period: the last N ISO weeks (UTC).")
]


def _scores(services: ServicesDep, by: GroupBy, weeks: int) -> tuple[float, list[Score]]:
    now = time.time()
    with services.engine.connect() as conn:
        return now, scorecard(conn, by, weeks, now)


@router.get("/scorecard", responses=errors(422))
def get_scorecard(
    services: ServicesDep, by: By = "department", weeks: Weeks = 8
) -> ScorecardPublic:
    """Per group: cases filed and closed in the period, on-time, rework and first-time pass
    rates of the closed ones, open cases past their deadline now, and per week the cases
    closed and their on-time rate. Drill cases never count."""
    now, scores = _scores(services, by, weeks)
    return ScorecardPublic(
        by=by,
        weeks=[iso_week(s) for s in week_starts(now, weeks)],
        generated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        groups=[ScorePublic(**s.summary(), trend=[vars(w) for w in s.trend]) for s in scores],
    )


@router.get(
    "/scorecard.csv",
    response_class=Response,
    responses={**csv_doc("One line per group; closed and on-time rate per week."), **errors(422)},
)
def get_scorecard_csv(services: ServicesDep, by: By = "department", weeks: Weeks = 8) -> Response:
    """The scorecard as CSV (for spreadsheets): the same figures, weeks as columns."""
    now, scores = _scores(services, by, weeks)
    weeks_named = [iso_week(s) for s in week_starts(now, weeks)]
    return csv_response(scorecard_csv(by, scores, weeks_named), f"scorecard-{by}.csv")
