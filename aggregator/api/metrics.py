"""Prometheus scrape endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from aggregator.api.schemas.health import METRICS_RESPONSE

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=PlainTextResponse, responses=METRICS_RESPONSE)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text exposition: ingest counters, per-edge outbox depth and last heard time,
    HTTP request durations. Public like /healthz, for scrapers: keep it on the internal network.
    """
    registry: CollectorRegistry = request.app.state.metrics
    return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
