"""The aggregator service: FastAPI (uvicorn) and the ZeroMQ ingest in one process."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from uvicorn.config import LOGGING_CONFIG

from aggregator.api import auth, cases, events, health, media, metrics, open311, stats
from aggregator.api.deps import Services
from aggregator.core.config import AggregatorConfig
from aggregator.db.engine import make_engine, migrate
from aggregator.edges import EdgeRegistry
from aggregator.ingest import IngestServer
from aggregator.media import MediaStore
from aggregator.metrics import instrument, metrics_registry
from aggregator.store import EventStore
from contract.cli import json_logging
from contract.errors import StreetwatchError

log = logging.getLogger(__name__)


UI_DIR = Path(__file__).resolve().parent / "ui"

#: Every router of the API, in the order they are mounted (the route-walking test reads it).
ROUTERS = (
    health.router,
    metrics.router,
    auth.router,
    auth.users_router,
    events.router,
    cases.router,
    media.router,
    open311.router,
    stats.router,
)


def create_app(services: Services) -> FastAPI:
    app = FastAPI(title="Streetwatch aggregator", version="0.1.0")
    app.state.services = services
    app.state.metrics = metrics_registry(services.ingest, services.engine)
    instrument(app, app.state.metrics)
    for router in ROUTERS:
        app.include_router(router)
    # The review UI: static files, no build step and nothing from the internet.
    app.mount("/ui", StaticFiles(directory=UI_DIR, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    return app


def serve(cfg: AggregatorConfig) -> None:
    migrate(cfg.database_url)
    engine = make_engine(cfg.database_url)
    registry = EdgeRegistry(engine)
    ingest = IngestServer(cfg.ingest, EventStore(engine), registry)
    ingest.start()
    ingest.ready.wait(10)
    if ingest.error is not None:
        raise StreetwatchError(f"ingest could not start on {cfg.ingest.bind}: {ingest.error}")
    store = MediaStore(cfg.media, engine)
    app = create_app(Services(engine, registry, ingest, store, cfg.cases))

    def retention() -> None:
        while ingest.is_alive():
            try:
                store.prune()
            except Exception:
                log.exception("media retention failed; will try again")
            time.sleep(cfg.media.prune_every_s)

    threading.Thread(target=retention, name="retention", daemon=True).start()
    # With JSON logs, uvicorn's loggers go through the root handler, not its own text ones.
    log_config = None if json_logging() else LOGGING_CONFIG
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=cfg.http.host, port=cfg.http.port, log_level="warning", log_config=log_config
        )
    )

    def watchdog() -> None:
        # The service is useless without its ingest: stop serving HTTP if it dies.
        ingest.join()
        server.should_exit = True

    threading.Thread(target=watchdog, daemon=True).start()
    log.info("aggregator: http://%s:%d, ingest %s", cfg.http.host, cfg.http.port, cfg.ingest.bind)
    server.run()
    ingest.stop()
    ingest.join(5)
    if ingest.error is not None:
        raise StreetwatchError(f"ingest failed: {ingest.error}")
