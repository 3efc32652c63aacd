"""The evaluation scorecard (GB/T 30428.4 style) by department, grid cell or district."""

from __future__ import annotations

from pydantic import BaseModel, Field

Rate = float | None


class WeekScorePublic(BaseModel):
    week: str = Field(description="ISO 8601 week (UTC), e.g. 2025-W07.")
    closed: int = Field(description="Cases closed in the week.")
    on_time_rate: Rate = Field(description="Of those, closed by their deadline (null: none).")


class ScoreSummary(BaseModel):
    group: str = Field(description="The department, grid cell or district ('' = none known).")
    cases: int = Field(description="Cases filed in the period (cancelled ones too).")
    closed: int = Field(description="Cases closed in the period (not cancelled).")
    on_time_rate: Rate = Field(description="Closed by their deadline / closed.")
    rework_rate: Rate = Field(description="Closed after being sent back at least once / closed.")
    overdue_open: int = Field(description="Open now and past their deadline.")
    first_time_pass_rate: Rate = Field(description="Closed never sent back / closed.")


class ScorePublic(ScoreSummary):
    trend: list[WeekScorePublic] = Field(description="The period's weeks, oldest first.")


class ScorecardPublic(BaseModel):
    by: str
    weeks: list[str] = Field(description="The period: these ISO weeks, the current one last.")
    generated_at: str = Field(description="When (ISO 8601, UTC): overdue_open is as of then.")
    groups: list[ScorePublic]
