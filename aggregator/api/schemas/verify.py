"""Verification by camera: asking a case's camera to be looked at again, and the answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from contract.verify import DEFAULT_LOOK_S, MAX_LOOK_S, MIN_LOOK_S, VerificationStatus


class VerifyCreate(BaseModel):
    look_s: float = Field(
        DEFAULT_LOOK_S,
        ge=MIN_LOOK_S,
        le=MAX_LOOK_S,
        description="How long the edge watches the live view, in seconds.",
    )


class VerificationPublic(BaseModel):
    """One look at a case's camera: asked by a person, answered by the edge that runs it."""

    id: int
    request_id: str = Field(description="The request's id; the snapshot's event id too.")
    case_id: int
    camera: str
    zone: str
    rule_type: str = Field(description="The event type whose rule the edge judged.")
    requested_by: str
    requested_at: float = Field(description="Unix seconds.")
    verdict: VerificationStatus = Field(
        description="pending (the edge is looking), still_present, cleared, or failed (the "
        "edge could not look, or did not answer in time: detail.reason says which)."
    )
    detail: dict[str, Any] = Field(
        description="What the edge saw: frames, present_frames, peak (most objects at once), "
        "needed (how many make the problem), rule, mode, looked_s, look_s, edge; reason "
        "when failed."
    )
    snapshot_id: str | None = Field(
        description="A fresh annotated JPEG of the view (GET /api/v1/media/{id}); it may "
        "take a few seconds to arrive after the verdict."
    )
    answered_at: float | None = Field(description="Unix seconds; None until the edge answers.")


class VerificationsPublic(BaseModel):
    items: list[VerificationPublic] = Field(description="Newest first.")
