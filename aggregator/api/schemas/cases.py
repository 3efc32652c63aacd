"""Cases: the board, one case with its events and audit trail, and changes to it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from aggregator.api.schemas.common import AuditEntryPublic

#: The statuses of aggregator.review.TRANSITIONS as a type (a test keeps the two equal).
CaseStatus = Literal[
    "filed", "dispatched", "in_progress", "resolved", "verified", "closed", "cancelled"
]
Priority = Literal["low", "normal", "high", "urgent"]


class StagePublic(BaseModel):
    name: str
    due_at: float = Field(description="Unix seconds.")
    done: bool


class CasePublic(BaseModel):
    """A real problem handed to a department: confirmed events of one camera, zone and type."""

    id: int
    camera: str
    zone: str
    type: str
    category: str
    department: str
    priority: Priority
    status: CaseStatus
    assignee: str | None
    deadline_at: float = Field(description="Unix seconds; overdue when still open after it.")
    address: str
    lat: float | None
    lon: float | None
    grid_cell: str
    created_at: float = Field(description="Unix seconds.")
    updated_at: float = Field(description="Unix seconds.")
    closed_at: float | None = Field(description="Unix seconds; set when closed or cancelled.")
    mode: str = Field(description="The operating mode of the event that opened it.")
    drill: bool = Field(description="Opened by a drill event: never in Open311 or statistics.")
    category_code: str = Field(description="The catalogue category (Open311 service_code).")
    district: str = Field(description="The district of the grid cell, if the cell is known.")
    source: Literal["camera", "citizen"]
    reporter: str | None = Field(description="A citizen report's client (app, hotline).")
    description: str | None = Field(description="A citizen report's text: staff only.")
    photo_id: str | None = Field(description="A citizen report's photo (GET /api/v1/media).")
    stage_index: int = Field(description="The stage being worked on (0-based).")
    stage: str = Field(description="Its name, e.g. fence off; empty once all are done.")
    stage_due_at: float | None = Field(description="Unix seconds: the next deadline.")
    stages: list[StagePublic] = Field(description="Every stage with its deadline.")
    rework_count: int = Field(description="Times a resolved case was sent back to work.")
    escalation_level: int = Field(description="Times an overdue stage escalated it.")
    transitions: list[CaseStatus] = Field(
        description="The statuses this user may move the case to now (none for a viewer or "
        "a closed case): the UI offers only these."
    )


class CasesPublic(BaseModel):
    total: int
    items: list[CasePublic]


class CaseEventPublic(BaseModel):
    """An event confirmed into the case."""

    event_id: str
    type: str
    started_ts: float
    value: float = Field(description="The last reported value (at its end, once closed).")
    peak: float | None = Field(description="The highest value while it lasted, if any.")
    unit: str
    clip_id: str | None
    snapshot_id: str | None


class CaseDetailPublic(CasePublic):
    events: list[CaseEventPublic]
    audit: list[AuditEntryPublic]


class CaseUpdate(BaseModel):
    status: CaseStatus | None = None
    department: str | None = Field(None, min_length=1, max_length=64)
    assignee: str | None = Field(None, min_length=1, max_length=64)
    priority: Priority | None = None
    stage_done: bool | None = Field(
        None, description="True: the current stage is done; the next one (and its deadline) starts."
    )
    override: bool | None = Field(
        None,
        description="True: verify or close a camera case although its camera's latest "
        "verification does not say cleared (supervisor, with a note; audited).",
    )
    note: str | None = Field(None, max_length=512, description="Why: kept in the audit log.")
