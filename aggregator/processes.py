"""The aggregator's processes: `serve` (HTTP API and ingest in one, for small sites and the
demo), and `ingest` and `api` (each alone, run as many replicas as needed on one database).

Every process migrates the database on start (replicas take turns, aggregator/migrations/
env.py), keeps its row in `replicas` (aggregator/replicas.py) and runs the maintenance loop:
time partitions ahead and retention. The processes that serve the API also escalate overdue
cases and deliver webhooks (aggregator/notify/runner.py). Nothing is shared between
processes but the database, the evidence store and the ingest's server key.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn
from sqlalchemy import Engine
from uvicorn.config import LOGGING_CONFIG

from aggregator.api.deps import Services
from aggregator.core.config import AggregatorConfig
from aggregator.core.http import uvicorn_config
from aggregator.db.engine import make_engine, migrate
from aggregator.edges import EdgeRegistry
from aggregator.grid.catalogue import load_catalogue
from aggregator.ingest import IngestServer
from aggregator.main import create_app, create_probe_app
from aggregator.maintenance import Maintenance
from aggregator.media import MediaStore
from aggregator.notify.runner import Notifier
from aggregator.replicas import Beacon, default_id
from aggregator.store import EventStore
from contract.cli import json_logging
from contract.errors import StreetwatchError
from contract.vocabulary import EVENT_TYPES

log = logging.getLogger(__name__)


def _database(cfg: AggregatorConfig) -> Engine:
    migrate(cfg.database_url)
    return make_engine(cfg.database_url)


def _start_ingest(cfg: AggregatorConfig, engine: Engine, registry: EdgeRegistry) -> IngestServer:
    # Event types the catalogue files are known too: counted under their own name.
    known_types = (*EVENT_TYPES, *load_catalogue(cfg.cases.catalogue).event_types)
    ingest = IngestServer(
        cfg.ingest,
        EventStore(engine),
        registry,
        known_types=known_types,
        fleet_cfg=cfg.fleet,
        modes=cfg.modes,
    )
    ingest.start()
    ingest.ready.wait(10)
    if ingest.error is not None:
        raise StreetwatchError(f"ingest could not start on {cfg.ingest.bind}: {ingest.error}")
    return ingest


def _ingest_beacon(engine: Engine, ingest: IngestServer, replica_id: str) -> Beacon:
    def heard() -> dict[str, dict[str, object]]:
        return dict(ingest.snapshot()["edges"])

    def stats() -> dict[str, object]:
        snap = ingest.snapshot()
        snap.pop("edges")  # per edge: in the edges table, whichever replica heard it last
        return snap

    return Beacon(engine, replica_id, "ingest", ingest.cfg.bind, stats, heard, ingest.fleet.inbox)


class _Terminate:
    """SIGTERM and SIGINT end the HTTP server like Ctrl-C, and then the process carries on
    to its orderly stop (uvicorn raises the signal again once it has stopped serving: with
    the default handler the process would die there, before the ingest and beacons stop)."""

    def __init__(self) -> None:
        self.received: int | None = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum


def _run_http(server: uvicorn.Server, also_stop_when: Callable[[], None] | None = None) -> None:
    """Serve until a signal, or until also_stop_when returns (a watchdog thread)."""
    _Terminate()
    if also_stop_when is not None:

        def watchdog() -> None:
            also_stop_when()
            server.should_exit = True

        threading.Thread(target=watchdog, name="watchdog", daemon=True).start()
    server.run()


def _log_config() -> object:
    # With JSON logs, uvicorn's loggers go through the root handler, not its own text ones.
    return None if json_logging() else LOGGING_CONFIG


def _notifier(services: Services, replica_id: str) -> Notifier:
    """The escalation sweep and the webhook delivery of a process that serves the API."""
    return Notifier(services.engine, services.catalogue, services.grid, replica_id)


def _serve_with_ingest(
    server: uvicorn.Server,
    ingest: IngestServer,
    maintenance: Maintenance,
    beacon: Beacon,
    notifier: Notifier | None = None,
) -> None:
    """Serve HTTP until a signal or until the ingest dies (the process is useless without
    it), then stop the notifier, maintenance, the ingest and the beacon, in that order."""
    try:
        _run_http(server, also_stop_when=ingest.join)
    finally:
        if notifier is not None:
            notifier.stop()
        maintenance.stop()
        ingest.stop()
        ingest.join(5)
        beacon.stop()
    if ingest.error is not None:
        raise StreetwatchError(f"ingest failed: {ingest.error}")


def serve(cfg: AggregatorConfig, replica_id: str | None = None) -> None:
    """The HTTP API and the ZeroMQ ingest in one process."""
    engine = _database(cfg)
    registry = EdgeRegistry(engine)
    media = MediaStore(
        cfg.media, engine, max_age_days_by_mode=cfg.modes.evidence_max_age_days()
    )  # first: a wrong bucket stops the start right away
    ingest = _start_ingest(cfg, engine, registry)
    services = Services(
        engine, registry, ingest, media, cfg.cases, cfg.http, cfg.modes, cfg.fleet, cfg.grid
    )
    app = create_app(services)
    rid = replica_id or default_id("ingest", cfg.ingest.bind)
    beacon = _ingest_beacon(engine, ingest, rid)
    maintenance = Maintenance(cfg, engine, media, keep_going=ingest.is_alive)
    notifier = _notifier(services, rid)
    beacon.start()
    maintenance.start()
    notifier.start()
    server = uvicorn.Server(uvicorn_config(app, cfg.http, _log_config()))
    log.info("aggregator: http://%s:%d, ingest %s", cfg.http.host, cfg.http.port, cfg.ingest.bind)
    _serve_with_ingest(server, ingest, maintenance, beacon, notifier)


def run_ingest(cfg: AggregatorConfig, replica_id: str | None = None) -> None:
    """One ingest replica: the ZeroMQ ingest, with /healthz, /readyz and /metrics on
    ingest.health_host:health_port. Run as many as needed, each on its own bind."""
    engine = _database(cfg)
    registry = EdgeRegistry(engine)
    ingest = _start_ingest(cfg, engine, registry)
    rid = replica_id or default_id("ingest", cfg.ingest.bind)
    beacon = _ingest_beacon(engine, ingest, rid)
    maintenance = Maintenance(cfg, engine, None, keep_going=ingest.is_alive)
    beacon.start()
    maintenance.start()
    probes = cfg.http.model_copy(
        update={
            "host": cfg.ingest.health_host,
            "port": cfg.ingest.health_port,
            "tls_cert_file": None,
            "tls_key_file": None,
        }
    )
    app = create_probe_app(Services(engine, registry, ingest, None, cfg.cases, probes))
    server = uvicorn.Server(uvicorn_config(app, probes, _log_config()))
    log.info(
        "ingest replica %s: %s, probes http://%s:%d",
        rid,
        cfg.ingest.bind,
        probes.host,
        probes.port,
    )
    _serve_with_ingest(server, ingest, maintenance, beacon)


def run_api(cfg: AggregatorConfig, replica_id: str | None = None) -> None:
    """One API replica: HTTP API, review UI and evidence, no ingest. Any number of them
    answer any user: sessions, login limits and evidence live in the database and the
    evidence store."""
    engine = _database(cfg)
    registry = EdgeRegistry(engine)
    media = MediaStore(cfg.media, engine, max_age_days_by_mode=cfg.modes.evidence_max_age_days())
    services = Services(
        engine, registry, None, media, cfg.cases, cfg.http, cfg.modes, cfg.fleet, cfg.grid
    )
    app = create_app(services)
    endpoint = f"{cfg.http.host}:{cfg.http.port}"
    rid = replica_id or default_id("api", endpoint)
    beacon = Beacon(engine, rid, "api", endpoint, dict)  # no counters: /metrics has them
    maintenance = Maintenance(cfg, engine, media, keep_going=lambda: True)
    notifier = _notifier(services, rid)
    beacon.start()
    maintenance.start()
    notifier.start()
    server = uvicorn.Server(uvicorn_config(app, cfg.http, _log_config()))
    log.info("API replica %s: http://%s:%d", rid, cfg.http.host, cfg.http.port)
    try:
        _run_http(server)
    finally:
        notifier.stop()
        maintenance.stop()
        beacon.stop()
