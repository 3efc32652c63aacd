"""The fleet: every edge box and camera as their heartbeats and reports describe them,
against what the aggregator wants them to run."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FleetCameraPublic(BaseModel):
    camera: str
    state: str = Field(description="starting, online, offline or ended, as the box says.")
    fps: float
    last_event_at: float | None = Field(description="Unix seconds of its last event.")
    config_version: int | None = Field(description="The central config version it runs.")
    mode: str
    mode_rev: int = Field(description="The id of the mode switch it runs (0: the default).")
    desired_config_version: int | None = Field(
        description="What it should run: the latest central version (null for a box on "
        "its own config files, or a camera without one)."
    )
    desired_mode: str
    desired_mode_rev: int
    in_sync: bool = Field(description="It runs its desired config version and mode switch.")
    applied_at: float | None = Field(description="When the aggregator heard it apply what it runs.")
    error: str | None = Field(description="Why it refused its last push, until one applies.")
    quiet: bool = Field(description="Not reported on for fleet.quiet_after_s or more.")


class FleetEdgePublic(BaseModel):
    edge_id: str
    software: str | None
    config_source: str | None = Field(description="local or central, from its heartbeats.")
    last_heard_at: float | None = Field(description="Unix seconds.")
    outbox_depth: int | None
    quiet: bool = Field(description="Not heard for fleet.quiet_after_s or more (or never).")
    cameras: list[FleetCameraPublic]


class FleetPublic(BaseModel):
    quiet_after_s: float
    edges: list[FleetEdgePublic]
