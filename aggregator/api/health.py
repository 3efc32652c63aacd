"""Liveness, readiness and ingest state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import text

from aggregator.api.auth import require
from aggregator.api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesDep) -> dict[str, Any]:
    """The database answers and the ingest socket is listening."""
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise HTTPException(503, f"database unavailable: {type(exc).__name__}") from None
    ingest = services.ingest
    if ingest is not None and (not ingest.is_alive() or not ingest.ready.is_set()):
        raise HTTPException(503, "ingest is not running")
    return {"status": "ready"}


@router.get("/api/v1/ingest", dependencies=[Depends(require("supervisor"))])
def ingest_status(services: ServicesDep) -> dict[str, Any]:
    """Counters of the ZeroMQ ingest and, per edge, when it was last heard and its outbox depth."""
    if services.ingest is None:
        return {"running": False}
    return {"running": services.ingest.is_alive(), **services.ingest.snapshot()}
