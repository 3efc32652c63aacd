"""Fleet and operating-mode settings of the aggregator config (``fleet:`` and ``modes:``).

A mode is a named set of overrides, defined here once for the city and switched per scope
(city, grid area, camera group, camera) at run time: rule parameters by event type (pushed to
the edges), the tags that switch on rules written for the mode, and case deadlines and
priorities by event type (applied where cases are filed). A drill mode runs like the mode it
rehearses, and everything raised under it is marked drill and kept out of real figures.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.config.modes import check_rule_parameters
from contract.vocabulary import ALERT, CROWDING, DRILL, EMERGENCY, LITTER, PEACETIME
from contract.wire import MAX_MODE_CHARS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseOverride(_Strict):
    """How cases of one event type are filed while a mode holds."""

    time_limit_h: float | None = Field(None, gt=0, description="Deadline after filing, hours.")
    priority: str | None = Field(None, pattern="^(low|normal|high|urgent)$")


class ModeDefinition(_Strict):
    label: str = Field("", description="What the UI banner says; defaults to the name.")
    drill: bool = Field(False, description="Events and cases are drill: kept out of real figures.")
    tags: list[str] = Field(
        default_factory=list,
        description="Rules whose `modes` name one of these (or the mode) run in this mode; a "
        "drill of an emergency lists [emergency].",
    )
    rules: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Rule parameters by event type, e.g. crowding: {min_count: 4}.",
    )
    cases: dict[str, CaseOverride] = Field(
        default_factory=dict, description="Case deadline and priority by event type."
    )
    evidence_max_age_days: float | None = Field(
        None, gt=0, description="Keep evidence of events raised in this mode this long."
    )

    @field_validator("rules")
    @classmethod
    def _rules(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for event_type, params in v.items():
            check_rule_parameters(event_type, params)
        return v


def _default_modes() -> dict[str, ModeDefinition]:
    emergency_rules: dict[str, dict[str, Any]] = {
        CROWDING: {"min_count": 4, "min_duration_s": 2.0},
        LITTER: {"persist_s": 20.0},
    }
    emergency_cases = {
        CROWDING: CaseOverride(time_limit_h=0.5, priority="urgent"),
        LITTER: CaseOverride(time_limit_h=12, priority="high"),
    }
    return {
        PEACETIME: ModeDefinition(label="Peacetime"),
        ALERT: ModeDefinition(
            label="Alert",
            rules={CROWDING: {"min_count": 6}},
            cases={CROWDING: CaseOverride(time_limit_h=1, priority="urgent")},
        ),
        EMERGENCY: ModeDefinition(
            label="Emergency",
            rules=emergency_rules,
            cases=emergency_cases,
            evidence_max_age_days=365,
        ),
        DRILL: ModeDefinition(
            label="Drill (emergency)",
            drill=True,
            tags=[EMERGENCY],
            rules=emergency_rules,
            cases=emergency_cases,
        ),
    }


class ModesConfig(_Strict):
    definitions: dict[str, ModeDefinition] = Field(default_factory=_default_modes)

    @model_validator(mode="after")
    def _names(self) -> ModesConfig:
        if PEACETIME not in self.definitions:
            raise ValueError(f"modes.definitions must define '{PEACETIME}' (the default)")
        for name in self.definitions:
            if not 0 < len(name) <= MAX_MODE_CHARS or not name.replace("-", "_").isidentifier():
                raise ValueError(
                    f"mode name '{name}' must be 1..{MAX_MODE_CHARS} letters, digits, - or _"
                )
        return self

    def evidence_max_age_days(self) -> dict[str, float]:
        """{mode: days} of the modes that keep their events' evidence for a set time."""
        return {
            name: d.evidence_max_age_days
            for name, d in self.definitions.items()
            if d.evidence_max_age_days is not None
        }


class FleetConfig(_Strict):
    quiet_after_s: float = Field(
        15.0, gt=0, description="An edge or camera not heard of this long is flagged quiet."
    )
    push_retry_s: float = Field(
        3.0, gt=0, description="A config push not reported on this long is sent again."
    )
    desired_refresh_s: float = Field(
        0.5, gt=0, description="How often an ingest replica rereads configs and mode switches."
    )
    max_config_bytes: int = Field(
        12 * 1024,
        ge=1024,
        le=15 * 1024,
        description="Largest camera config document (JSON); one push must fit one message.",
    )
