"""Prometheus metrics of the aggregator: ingest counters, per-edge state and HTTP latency.

Everything lives in a registry made per app (never the process-global default one), so
building an app twice, as the tests do, never clashes. Ingest figures are read from
``IngestServer.snapshot()`` at scrape time: nothing is counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from aggregator.ingest import IngestServer
from aggregator.media import MediaStore

#: IngestStats counter -> outcome label. "received" counts every message, whatever became of it.
_OUTCOMES = {
    "received": "received",
    "stored": "stored",
    "duplicates": "duplicate",
    "heartbeats": "heartbeat",
}
#: IngestStats counters that are reject reasons (and their label values).
_REJECTS = ("malformed", "rejected", "oversized", "unauthorised")
#: IngestStats fleet-control counters -> outcome label: pushes sent, reports on them.
_FLEET = {"pushes_sent": "pushed", "reports_ok": "applied", "reports_refused": "refused"}
#: Any other method is labelled "other": a client must not be able to add label values.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _IngestCollector:
    def __init__(self, ingest: IngestServer) -> None:
        self.ingest = ingest

    def collect(self) -> Iterator[Metric]:
        s = self.ingest.snapshot()
        messages = CounterMetricFamily(
            "streetwatch_ingest_messages",
            "ZeroMQ messages: every one received, and those stored, duplicate or heartbeats.",
            labels=["outcome"],
        )
        for key, outcome in _OUTCOMES.items():
            messages.add_metric([outcome], s[key])
        rejects = CounterMetricFamily(
            "streetwatch_ingest_rejects",
            "Messages dropped or refused, by reason.",
            labels=["reason"],
        )
        for reason in _REJECTS:
            rejects.add_metric([reason], s[reason])
        by_type = CounterMetricFamily(
            "streetwatch_events",
            "Newly stored event messages, by event type (types outside the vocabulary and the "
            "case categories count as 'other', so edges cannot add series).",
            labels=["type"],
        )
        for kind, n in sorted(s["by_type"].items()):
            by_type.add_metric([kind], n)
        depth = GaugeMetricFamily(
            "streetwatch_ingest_edge_outbox_depth",
            "Messages waiting in an edge's outbox, from its last heartbeat.",
            labels=["edge"],
        )
        seen = GaugeMetricFamily(
            "streetwatch_ingest_edge_last_seen_seconds",
            "Unix time an edge was last heard from (alert on time() minus this).",
            labels=["edge"],
        )
        # Only edges on the allowlist reach s["edges"] (aggregator/ingest.py), so the edge
        # label is bounded by the operator's registrations.
        for edge, info in sorted(s["edges"].items()):
            if info.get("depth") is not None:
                depth.add_metric([edge], float(info["depth"]))
            seen.add_metric([edge], float(info["last_heard"]))
        yield messages
        yield rejects
        yield CounterMetricFamily(
            "streetwatch_ingest_batches", "Batches committed to the database.", value=s["batches"]
        )
        yield CounterMetricFamily(
            "streetwatch_ingest_db_errors",
            "Failed batch commits (their messages are resent by the edges).",
            value=s["db_errors"],
        )
        fleet = CounterMetricFamily(
            "streetwatch_ingest_config_pushes",
            "Config pushes sent to edges, and the edges' reports on them: applied or refused.",
            labels=["outcome"],
        )
        for key, outcome in _FLEET.items():
            fleet.add_metric([outcome], s[key])
        yield fleet
        yield by_type
        yield depth
        yield seen


class _MediaCollector:
    """Evidence storage: bytes stored and held, the limit, and uploads refused for room."""

    def __init__(self, media: MediaStore) -> None:
        self.media = media

    def collect(self) -> Iterator[Metric]:
        s = self.media.status()
        stored = GaugeMetricFamily(
            "streetwatch_media_bytes",
            "Evidence bytes: all, and held for confirmed events or open cases (never removed).",
            labels=["state"],
        )
        stored.add_metric(["all"], s.total_bytes)
        stored.add_metric(["held"], s.held_bytes)
        yield stored
        yield GaugeMetricFamily(
            "streetwatch_media_limit_bytes", "media.max_total_bytes.", value=s.max_total_bytes
        )
        yield GaugeMetricFamily(
            "streetwatch_media_full_of_held",
            "1 while held evidence leaves no room under the limit: uploads get 507 (alert).",
            value=float(s.full_of_held),
        )
        refused = CounterMetricFamily(
            "streetwatch_media_uploads_refused",
            "Evidence uploads refused for room (507), by reason.",
            labels=["reason"],
        )
        for reason, n in s.refused_uploads.items():
            refused.add_metric([reason], n)
        yield refused


def metrics_registry(
    ingest: IngestServer | None, engine: Engine, media: MediaStore | None = None
) -> CollectorRegistry:
    """A new registry with the ingest metrics (when there is an ingest), the evidence
    storage's (when there is a media store) and this process's CPU, memory and file
    descriptors. ``engine`` is the service's database (unused so far)."""
    registry = CollectorRegistry()
    if ingest is not None:
        registry.register(_IngestCollector(ingest))
    if media is not None:
        registry.register(_MediaCollector(media))
    ProcessCollector(registry=registry)
    return registry


class _RequestTimer:
    """Pure ASGI middleware: observes each HTTP request's duration under its route template."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            # The router puts the matched route in the scope: its template, not the raw URL,
            # so ids in paths never become label values.
            path = getattr(scope.get("route"), "path", None)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.histogram.labels(path if isinstance(path, str) else "unmatched", method).observe(
                time.perf_counter() - start
            )


def instrument(app: Starlette, registry: CollectorRegistry) -> None:
    """Time every HTTP request of app into registry (call before the app starts)."""
    histogram = Histogram(
        "streetwatch_http_request_duration_seconds",
        "HTTP request duration, by route template and method.",
        ["route", "method"],
        registry=registry,
    )
    app.add_middleware(_RequestTimer, histogram=histogram)
