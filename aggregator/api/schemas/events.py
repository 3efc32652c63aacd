"""Events: the review queue, one event with its history, and review actions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from aggregator.api.schemas.common import AuditEntryPublic
from contract.vocabulary import Phase, Severity

ReviewStatus = Literal["new", "confirmed", "dismissed"]
#: aggregator.review.DISMISS_REASONS as a type (a test keeps the two equal).
DismissReason = Literal["false_positive", "duplicate", "not_actionable"]
#: 'available' once the upload arrived, 'pending' until then, 'none' without evidence.
EvidenceStatus = Literal["none", "pending", "available"]


class EventPublic(BaseModel):
    """One incident: its current state, evidence and review."""

    event_id: str
    edge_id: str = Field(description="The edge box that reported it.")
    camera: str
    zone: str
    rule: str
    type: str
    status: Literal["open", "closed"] = Field(description="closed once its end arrived.")
    started_ts: float = Field(description="Seconds: Unix time, or media time for replays.")
    last_ts: float
    ended_ts: float | None
    value: float = Field(description="The latest measured value, in `unit`.")
    peak: float | None = Field(description="The highest value seen, when the rule keeps one.")
    unit: str
    severity: Severity
    stage: str | None
    boxes: list[list[int]] = Field(description="Pixel boxes, xyxy, of the latest detections.")
    labels: list[str] = Field(description="One label per box.")
    has_start: bool
    has_end: bool
    n_messages: int = Field(description="Lifecycle messages received for it.")
    received_at: float = Field(description="Unix seconds.")
    updated_at: float = Field(description="Unix seconds.")
    clip_id: str | None
    snapshot_id: str | None
    clip_status: EvidenceStatus
    snapshot_status: EvidenceStatus
    review_status: ReviewStatus
    review_reason: str | None
    reviewed_by: str | None
    reviewed_at: float | None
    case_id: int | None
    mode: str = Field(description="The operating mode the edge raised it under.")
    drill: bool = Field(description="Raised under a drill: kept out of real figures.")


class EventsPublic(BaseModel):
    """A page of the queue and how many events match (counted up to a cap)."""

    total: int
    total_is_capped: bool = Field(description="More than `total` events match.")
    limit: int
    offset: int
    items: list[EventPublic]


class HistoryEntryPublic(BaseModel):
    """One lifecycle message of an event."""

    phase: Phase
    ts: float
    value: float
    seq: int
    committed_at: float = Field(description="Unix seconds.")


class EventDetailPublic(EventPublic):
    clip_url: str | None = Field(description="Where to fetch the clip; null without one.")
    snapshot_url: str | None = Field(description="Where to fetch the snapshot; null without one.")
    history: list[HistoryEntryPublic]
    audit: list[AuditEntryPublic]


class ConfirmIn(BaseModel):
    note: str | None = Field(None, max_length=512)


class DismissIn(BaseModel):
    reason: DismissReason
    note: str | None = Field(None, max_length=512)


class BulkIn(BaseModel):
    event_ids: list[str] = Field(min_length=1, max_length=500)
    action: Literal["confirm", "dismiss"]
    reason: DismissReason | None = None
    note: str | None = Field(None, max_length=512)


class Confirmed(BaseModel):
    event_id: str
    case_id: int = Field(description="The case the event was filed into or joined.")


class Dismissed(BaseModel):
    event_id: str
    status: Literal["dismissed"]
    reason: DismissReason


class BulkDismissed(BaseModel):
    event_id: str
    status: Literal["dismissed"]


class BulkFailed(BaseModel):
    event_id: str
    error: str
    status_code: int = Field(description="The HTTP status this event alone would answer.")


class BulkPublic(BaseModel):
    """One result per event, in the order asked."""

    results: list[Confirmed | BulkDismissed | BulkFailed]
