"""Operating modes: their definitions, the switches in force and scheduled, the audit trail."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

#: Unix seconds a switch may start or end at: from the epoch to the end of year 9999.
LAST_S = 253402300800.0


class CaseOverridePublic(BaseModel):
    time_limit_h: float | None
    priority: str | None


class ModeDefinitionPublic(BaseModel):
    name: str
    label: str
    drill: bool = Field(description="Events and cases under it are drill.")
    tags: list[str]
    rules: dict[str, dict[str, Any]] = Field(description="Rule parameters by event type.")
    cases: dict[str, CaseOverridePublic] = Field(description="Case filing by event type.")


class SwitchPublic(BaseModel):
    id: int = Field(description="Also the mode revision the cameras it sets report.")
    mode: str
    scope: str = Field(description="city, area:<grid cell>, group:<camera group> or camera:<id>")
    starts_at: float = Field(description="Unix seconds.")
    ends_at: float | None = Field(description="Unix seconds; null: until another switch.")
    actor: str
    reason: str
    label: str
    drill: bool
    created_at: float
    cancelled_at: float | None


class ModesPublic(BaseModel):
    definitions: list[ModeDefinitionPublic]
    active: list[SwitchPublic] = Field(description="In force now, one per scope, latest first.")
    scheduled: list[SwitchPublic] = Field(description="Starting later, soonest first.")


class SwitchCreate(BaseModel):
    mode: str = Field(min_length=1, max_length=32)
    scope: str = Field("city", min_length=1, max_length=80)
    reason: str = Field(min_length=1, max_length=512)
    starts_at: float | None = Field(
        None, ge=0, le=LAST_S, allow_inf_nan=False, description="Unix seconds; default now."
    )
    ends_at: float | None = Field(
        None, ge=0, le=LAST_S, allow_inf_nan=False, description="Unix seconds; default never."
    )
