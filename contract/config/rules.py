"""Rule configs: three kinds (count, dwell, left_object) with named presets on top.

A preset (``preset: crowding``) fills in the kind and its defaults; any key given next to it
overrides the preset. Every parameter is documented in README.md, "Rules".
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.vocabulary import (
    CROWDING,
    ILLEGAL_PARKING,
    LITTER,
    NONMOTOR_PARKING,
    STREET_VENDING,
    Severity,
)

Evidence = Literal["detector", "background"]

PRESETS: dict[str, dict[str, Any]] = {
    CROWDING: {
        "kind": "count",
        "type": CROWDING,
        "classes": ["person"],
        "severity": "medium",
    },
    ILLEGAL_PARKING: {
        "kind": "dwell",
        "type": ILLEGAL_PARKING,
        "classes": ["car", "bus", "truck", "motorcycle"],
        "dwell_s": 300.0,
        "severity": "medium",
    },
    NONMOTOR_PARKING: {
        "kind": "dwell",
        "type": NONMOTOR_PARKING,
        "classes": ["bicycle", "motorcycle"],
        "dwell_s": 600.0,
        "severity": "low",
    },
    STREET_VENDING: {
        "kind": "dwell",
        "type": STREET_VENDING,
        "classes": ["chair", "dining table", "umbrella"],
        "dwell_s": 600.0,
        "severity": "low",
    },
    LITTER: {
        "kind": "left_object",
        "type": LITTER,
        "classes": ["bottle", "cup", "backpack", "handbag", "suitcase"],
        "severity": "low",
    },
}


class _RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("", description="Unique within the zone; defaults to the event type.")
    type: str = Field("", description="Event type reported (e.g. crowding); defaults to kind.")
    preset: str | None = None
    classes: list[str] = Field(min_length=1)
    severity: Severity = "medium"
    cooldown_s: float = Field(
        30.0, ge=0, description="No new event at the same place for this long after one ends."
    )
    update_interval_s: float = Field(
        30.0, gt=0, description="Send an update this often while active."
    )
    modes: list[str] | None = Field(
        None,
        description="Operating modes this rule runs in (e.g. [emergency]); null: every mode.",
    )

    @model_validator(mode="after")
    def _defaults(self) -> _RuleBase:
        kind = getattr(self, "kind", "")
        if not self.type:
            object.__setattr__(self, "type", kind)
        if not self.name:
            object.__setattr__(self, "name", self.type)
        return self


class CountRuleConfig(_RuleBase):
    kind: Literal["count"]
    min_count: int = Field(5, ge=1, description="Persons in the zone that make a crowd.")
    area_m2: float | None = Field(
        None, gt=0, description="Zone's ground area; turns the rule into density."
    )
    min_density_per_m2: float | None = Field(
        None, gt=0, description="Persons per m2 that make a crowd (needs area_m2)."
    )
    min_duration_s: float = Field(5.0, ge=0, description="The crowd must last this long to fire.")
    clear_s: float = Field(5.0, ge=0, description="Below the threshold this long ends the event.")
    gap_s: float = Field(
        1.0, ge=0, description="Shorter dips (missed detections) do not break the count."
    )

    @model_validator(mode="after")
    def _density(self) -> CountRuleConfig:
        if self.min_density_per_m2 is not None and self.area_m2 is None:
            raise ValueError("min_density_per_m2 needs area_m2 (the zone's ground area)")
        return self


class DwellRuleConfig(_RuleBase):
    kind: Literal["dwell"]
    dwell_s: float = Field(300.0, gt=0, description="Stationary this long is a violation.")
    warn_after_s: float | None = Field(
        None, gt=0, description="Optional first stage (warning) before dwell_s."
    )
    window_s: float = Field(3.0, gt=0, description="Motion is judged over this window.")
    max_move_frac: float = Field(
        0.2,
        gt=0,
        le=1,
        description="Stationary: the centre moves less than this share of the box size "
        "over window_s.",
    )
    absence_s: float = Field(
        10.0, gt=0, description="Unseen this long (occlusion, missed detections) means it left."
    )
    match_iou: float = Field(
        0.3, gt=0, le=1, description="IoU that ties a detection to a remembered stationary object."
    )

    @model_validator(mode="after")
    def _stages(self) -> DwellRuleConfig:
        if self.warn_after_s is not None and self.warn_after_s >= self.dwell_s:
            raise ValueError("warn_after_s must be less than dwell_s")
        return self


class LeftObjectRuleConfig(_RuleBase):
    kind: Literal["left_object"]
    persist_s: float = Field(60.0, gt=0, description="Unattended and still this long fires.")
    evidence: list[Evidence] = Field(
        default_factory=lambda: list[Evidence](["detector"]),
        min_length=1,
        description="detector: static objects of `classes`; "
        "background: class-free static foreground.",
    )
    owner_classes: list[str] = Field(
        default_factory=lambda: ["person"], description="Who can bring or attend an object."
    )
    attend_margin_frac: float = Field(
        1.0, ge=0, description="An owner within this many object sizes attends it."
    )
    window_s: float = Field(1.0, gt=0)
    max_move_frac: float = Field(0.2, gt=0, le=1)
    absence_s: float = Field(2.0, gt=0, description="Unseen this long means it was removed.")
    match_iou: float = Field(0.3, gt=0, le=1)
    baseline_s: float = Field(
        2.0, ge=0, description="Objects already there in the first seconds belong to the scene."
    )
    min_blob_area_px: float = Field(
        400.0, gt=0, description="Smallest static-foreground blob (background evidence)."
    )


RuleConfig = Annotated[
    CountRuleConfig | DwellRuleConfig | LeftObjectRuleConfig, Field(discriminator="kind")
]


def expand_preset(raw: Any) -> Any:
    """``{preset: litter, persist_s: 30}`` -> the preset's keys, overridden by the given ones."""
    if isinstance(raw, dict) and "preset" in raw:
        name = raw["preset"]
        if name not in PRESETS:
            raise ValueError(f"unknown preset '{name}': one of {', '.join(sorted(PRESETS))}")
        return {**PRESETS[name], **raw}
    return raw
