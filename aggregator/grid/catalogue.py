"""The category catalogue (GB/T 30428.2 style): what each kind of problem is, when it is
filed, which department fixes it, its staged deadlines, when it may be closed and the law it
rests on. Event types map onto categories; citizens report by category code (Open311
service_code). Loaded from YAML; the shipped default is aggregator/grid/catalogue.yaml."""

from __future__ import annotations

from functools import cached_property
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.config.loading import load_yaml_model

PRIORITIES = ("low", "normal", "high", "urgent")
CODE_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.\-]{0,15}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stage(_Strict):
    """One step of handling with its deadline, counted from filing (e.g. fence off in 3 h)."""

    name: str = Field(min_length=1, max_length=64)
    within_h: float = Field(gt=0, description="Due this many hours after the case is filed.")


class Category(_Strict):
    code: str = Field(pattern=CODE_PATTERN, description="e.g. 0102; Open311 service_code.")
    class_name: str = Field(alias="class", min_length=1, max_length=64)
    subclass: str = Field(min_length=1, max_length=64)
    event_types: list[str] = Field(
        default_factory=list, description="Event types edges raise that file as this category."
    )
    filing_condition: str = Field(min_length=1, max_length=500)
    department: str = Field(min_length=1, max_length=64)
    priority: str = Field("normal", pattern="^(low|normal|high|urgent)$")
    stages: list[Stage] = Field(min_length=1, max_length=8)
    closing_condition: str = Field(min_length=1, max_length=500)
    legal_basis: str = Field(min_length=1, max_length=300, description="Regulation and article.")
    citizen_reportable: bool = Field(True, description="Offered to citizens in Open311.")
    owner_first_h: float | None = Field(
        None,
        gt=0,
        description="Ask the shop or property manager to fix it first, with this many hours "
        "before enforcement (a webhook of kind owner_notice); unset: straight to the department.",
    )
    webhooks: list[str] = Field(
        default_factory=list, description="Webhook names (grid.webhooks) told of its cases."
    )

    @model_validator(mode="after")
    def _stages_in_order(self) -> Category:
        due = [s.within_h for s in self.stages]
        if due != sorted(due) or len(set(due)) != len(due):
            raise ValueError(f"stages of {self.code} must have growing within_h, got {due}")
        return self

    @property
    def title(self) -> str:
        """How people see it: class / subclass."""
        return f"{self.class_name} / {self.subclass}"

    @property
    def time_limit_h(self) -> float:
        """The last stage's deadline: the case's own."""
        return self.stages[-1].within_h


class Catalogue(_Strict):
    version: int = Field(1, ge=1)
    fallback: str = Field(description="The code of the category of event types none lists.")
    categories: list[Category] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Catalogue:
        codes = [c.code for c in self.categories]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"category codes appear more than once: {', '.join(twice)}")
        if self.fallback not in codes:
            raise ValueError(f"fallback {self.fallback!r} is not a category code")
        seen: dict[str, str] = {}
        for cat in self.categories:
            for event_type in cat.event_types:
                if event_type in seen:
                    raise ValueError(
                        f"event type {event_type!r} maps to both {seen[event_type]} and {cat.code}"
                    )
                seen[event_type] = cat.code
        return self

    @cached_property
    def by_code(self) -> dict[str, Category]:
        return {c.code: c for c in self.categories}

    @cached_property
    def by_type(self) -> dict[str, Category]:
        return {t: c for c in self.categories for t in c.event_types}

    def for_type(self, event_type: str) -> Category:
        """The category a confirmed event of event_type is filed under."""
        return self.by_type.get(event_type) or self.by_code[self.fallback]

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self.by_type)


def default_catalogue_path() -> Path:
    return Path(str(resources.files("aggregator.grid") / "catalogue.yaml"))


def load_catalogue(path: Path | None = None) -> Catalogue:
    """The catalogue at path (the shipped default when None); a ConfigError names the file,
    line and field of any problem."""
    cat, _ = load_yaml_model(path or default_catalogue_path(), Catalogue, "a category catalogue")
    return cat
