"""Open supervision: the public figures (no login). Counts, rates and medians only."""

from __future__ import annotations

from pydantic import BaseModel, Field

from aggregator.api.schemas.scorecard import ScoreSummary

Rate = float | None


class Figures(BaseModel):
    filed: int = Field(description="Cases filed (cancelled ones too).")
    closed: int = Field(description="Of those, closed (not cancelled).")
    on_time_rate: Rate = Field(description="Closed on or before the deadline / closed.")
    median_hours_to_close: float | None = Field(description="From filing to closing, hours.")
    rework_rate: Rate = Field(description="Closed after being sent back at least once / closed.")


class FigureRow(Figures):
    district: str
    grid_cell: str
    category_code: str = Field(description="The catalogue category (Open311 service_code).")
    category: str = Field(description="Its name: class / subclass.")
    month: str = Field(description="YYYY-MM (UTC) in which the cases were filed.")


class DistrictTotal(Figures):
    district: str


class CategoryTotal(Figures):
    category_code: str
    category: str


class PublicScorecard(BaseModel):
    by_department: list[ScoreSummary]
    by_district: list[ScoreSummary]


class Suppressed(BaseModel):
    """How many of each were left out because a count in them was from 1 to min_count - 1."""

    rows: int
    districts: int
    categories: int
    by_department: int
    by_district: int


class PublicFigures(BaseModel):
    generated_at: str = Field(description="ISO 8601, UTC.")
    min_count: int = Field(description="Counts from 1 to min_count - 1 are never shown.")
    since: str = Field(description="The first month counted (YYYY-MM).")
    months: int
    weeks: int = Field(description="The scorecard's period: the last this many ISO weeks.")
    rows: list[FigureRow]
    districts: list[DistrictTotal]
    categories: list[CategoryTotal]
    scorecard: PublicScorecard
    suppressed: Suppressed
