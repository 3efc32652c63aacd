"""Statistics for supervisors and planners."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Hotspot(BaseModel):
    camera: str
    zone: str
    confirmed: int = Field(description="Confirmed events at this camera and zone.")


class StatsPublic(BaseModel):
    """Where problems recur and how fast they are handled."""

    events_by_type: dict[str, int]
    events_by_camera: dict[str, int]
    events_by_zone: dict[str, int] = Field(description="Keyed camera/zone.")
    events_by_mode: dict[str, int] = Field(description="By the operating mode they were raised in.")
    events_by_day: dict[str, int] = Field(
        description="Keyed by UTC date, YYYY-MM-DD, oldest first."
    )
    events_by_hour: dict[str, int] = Field(description="Keyed by UTC hour, '0' to '23', all 24.")
    median_time_to_confirm_s: float | None = Field(description="From receipt; null without any.")
    median_time_to_close_s: float | None = Field(description="From filing; null without any.")
    open_cases: int
    overdue_cases: int = Field(description="Open cases past their deadline.")
    hotspots: list[Hotspot] = Field(description="The ten camera and zone pairs most confirmed.")
