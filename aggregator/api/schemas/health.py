"""Liveness, readiness, ingest state and the Prometheus scrape."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]


class IngestEdge(BaseModel):
    """What the ingest last heard from one edge box."""

    last_heard: float = Field(description="Unix seconds.")
    depth: int | None = Field(description="Its outbox backlog from its last heartbeat.")
    max_seq: int = Field(description="The highest sequence number received from it.")


class IngestStatus(BaseModel):
    """Counters of the ZeroMQ ingest (aggregator.ingest.IngestStats) since the process
    started; all zero when this process runs no ingest."""

    running: bool
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    malformed: int = 0
    rejected: int = 0
    oversized: int = 0
    unauthorised: int = 0
    heartbeats: int = 0
    batches: int = 0
    db_errors: int = 0
    by_type: dict[str, int] = Field(
        default_factory=dict, description="Newly stored event messages by event type."
    )
    edges: dict[str, IngestEdge] = Field(default_factory=dict, description="By edge id.")


#: GET /metrics in OpenAPI: Prometheus' text exposition format.
METRICS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition format 0.0.4.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}
