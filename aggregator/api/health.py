"""Liveness, readiness and ingest state."""

from __future__ import annotations

import time
from dataclasses import asdict

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import text

from aggregator.api.auth import able
from aggregator.api.deps import ServicesDep
from aggregator.api.schemas.common import errors
from aggregator.api.schemas.health import Health, IngestStatus, MediaStatus, Ready, ReplicaPublic
from aggregator.replicas import fleet_ingest, replicas

#: Liveness and readiness: in every process, the ingest replicas' included.
probes = APIRouter(tags=["health"])
router = APIRouter(tags=["health"])


@probes.get("/healthz")
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@probes.get("/readyz", responses=errors(503))
def readyz(services: ServicesDep) -> Ready:
    """The database answers and the ingest socket is listening."""
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise HTTPException(503, f"database unavailable: {type(exc).__name__}") from None
    ingest = services.ingest
    if ingest is not None and (not ingest.is_alive() or not ingest.ready.is_set()):
        raise HTTPException(503, "ingest is not running")
    return Ready(status="ready")


@router.get(
    "/api/v1/ingest",
    dependencies=[Depends(able("view_ingest"))],
    responses=errors(401, 403),
)
def ingest_status(services: ServicesDep) -> IngestStatus:
    """Counters of the ZeroMQ ingest and, per edge, when it was last heard and its outbox
    depth; the deployment's replicas."""
    media = None
    if services.media is not None:  # evidence storage and retention, held evidence included
        media = MediaStatus.model_validate(asdict(services.media.status()))
    now_s = time.time()
    fleet = [
        ReplicaPublic(**{**asdict(r), "live": r.live(now_s)}) for r in replicas(services.engine)
    ]
    if services.ingest is None:  # an API replica: the ingest replicas' state, from the database
        counts = fleet_ingest(services.engine, now_s)
        return IngestStatus.model_validate(
            {**counts, "scope": "fleet", "media": media, "replicas": fleet}
        )
    return IngestStatus.model_validate(
        {
            "running": services.ingest.is_alive(),
            **services.ingest.snapshot(),
            "media": media,
            "replicas": fleet,
        }
    )
