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


class EdgeMediaStatus(BaseModel):
    """One edge's evidence on the aggregator."""

    bytes: int = Field(description="What its evidence takes.")
    held_bytes: int = Field(description="Of that, held for confirmed events or open cases.")
    refused_uploads: int = Field(description="Its uploads refused for room since start (507).")


class MediaStatus(BaseModel):
    """Evidence storage and retention. Evidence of confirmed events and open cases is held:
    retention never removes it. ``full_of_held`` turns true when held evidence leaves no
    room under media.max_total_bytes (an upload was refused with 507 for it, or retention
    could not get under the limit), and false once an upload is stored or retention gets
    under the limit. Refused edges keep their files and retry."""

    total_bytes: int
    held_bytes: int
    max_total_bytes: int = Field(description="media.max_total_bytes.")
    per_edge_max_bytes: int | None = Field(description="media.per_edge_max_bytes; null: none.")
    full_of_held: bool
    refused_uploads: dict[str, int] = Field(
        description="Uploads refused for room since start, by reason: edge_quota (an edge at "
        "its quota), full_of_held (held evidence fills the store)."
    )
    edges: dict[str, EdgeMediaStatus] = Field(description="By edge id, those with evidence.")
    last_prune_at: float | None = Field(description="Unix seconds of the last retention run.")
    last_prune_removed: int = Field(description="Files that run removed.")


class ReplicaPublic(BaseModel):
    """One aggregator process of the deployment (aggregator/replicas.py)."""

    replica_id: str
    kind: Literal["ingest", "api"]
    endpoint: str = Field(description="Its ZeroMQ bind (ingest) or HTTP host:port (api).")
    started_at: float = Field(description="Unix seconds.")
    last_seen_at: float = Field(description="Unix seconds of its last beat (every second).")
    live: bool = Field(description="Beat within the last 10 s; a killed replica turns stale.")


class IngestStatus(BaseModel):
    """Counters of the ZeroMQ ingest (aggregator.ingest.IngestStats): of this process's
    ingest since it started (`serve`, or an ingest replica's own port), or, in an API
    replica, summed over the live ingest replicas (``scope``: fleet)."""

    running: bool
    scope: Literal["process", "fleet"] = Field(
        "process", description="process: this process's ingest; fleet: all live replicas'."
    )
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
    pushes_sent: int = Field(0, description="Config and mode pushes sent to edges.")
    reports_ok: int = Field(0, description="Pushes the edges reported applied.")
    reports_refused: int = Field(0, description="Pushes the edges refused and rolled back.")
    by_type: dict[str, int] = Field(
        default_factory=dict, description="Newly stored event messages by event type."
    )
    edges: dict[str, IngestEdge] = Field(default_factory=dict, description="By edge id.")
    media: MediaStatus | None = Field(
        None, description="Evidence storage and retention; null when this process keeps none."
    )
    replicas: list[ReplicaPublic] = Field(
        default_factory=list, description="Every aggregator process with a row, live or stale."
    )


#: GET /metrics in OpenAPI: Prometheus' text exposition format.
METRICS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text exposition format 0.0.4.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}
