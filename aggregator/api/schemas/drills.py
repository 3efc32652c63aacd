"""The drill report: how fast detection, review and dispatch went under one drill switch."""

from __future__ import annotations

from pydantic import BaseModel, Field

from aggregator.api.schemas.modes import SwitchPublic


class StepPublic(BaseModel):
    count: int = Field(description="Events that went through this step.")
    median: float | None = Field(description="Seconds; null without any.")
    p95: float | None
    max: float | None


class DrillStepsPublic(BaseModel):
    detection_s: StepPublic = Field(description="Raised on the box -> received here.")
    review_s: StepPublic = Field(description="Received -> confirmed or dismissed.")
    dispatch_s: StepPublic = Field(description="Case filed -> dispatched or in progress.")


class DrillRowPublic(BaseModel):
    event_id: str
    type: str
    camera: str
    detection_s: float | None
    review_s: float | None
    dispatch_s: float | None


class DrillReportPublic(BaseModel):
    switch: SwitchPublic
    events: int
    steps: DrillStepsPublic
    rows: list[DrillRowPublic]
