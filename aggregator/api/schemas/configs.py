"""Central camera configs: versions with author and reason, the documents, and what the zone
editor offers (rule presets and their parameters)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from aggregator.api.schemas.common import ValidationIssue

MAX_REASON_CHARS = 512


class ConfigVersionPublic(BaseModel):
    camera: str
    version: int
    sha256: str = Field(description="Of the document's canonical JSON (sorted keys, no spaces).")
    author: str
    reason: str
    created_at: float = Field(description="Unix seconds.")


class ConfigDocumentPublic(ConfigVersionPublic):
    config: dict[str, Any] = Field(description="The camera config document.")


class ConfigCreate(BaseModel):
    config: dict[str, Any] = Field(
        description="A camera config (the edge's schema); id must be the camera, source absent."
    )
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


class ConfigRollback(BaseModel):
    version: int = Field(ge=1, le=2**31 - 1, description="The version whose document to restore.")
    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS)


class ConfigIssue(BaseModel):
    loc: str = Field(description="The field, e.g. zones[0].polygon; empty for the whole config.")
    msg: str


class ConfigInvalidPublic(BaseModel):
    """422: the config's problems, each naming its field; or FastAPI's own list of issues
    when the body itself does not validate."""

    detail: list[ConfigIssue] | list[ValidationIssue] | str


class ParameterPublic(BaseModel):
    name: str
    default: Any = Field(description="null where the parameter has no default.")
    description: str | None


class PresetsPublic(BaseModel):
    presets: dict[str, dict[str, Any]] = Field(
        description="Rule presets by name: kind, type, classes and defaults."
    )
    parameters: dict[str, list[ParameterPublic]] = Field(
        description="The parameters of each rule kind (count, dwell, left_object)."
    )
