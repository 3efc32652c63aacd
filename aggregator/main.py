"""The aggregator service: FastAPI (uvicorn) and the ZeroMQ ingest in one process."""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from pathlib import Path

import uvicorn
from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from uvicorn.config import LOGGING_CONFIG

from aggregator.api import auth, cases, events, health, media, metrics, open311, stats
from aggregator.api.auth import needs_login, require, session_refusal
from aggregator.api.deps import Services
from aggregator.core.config import AggregatorConfig
from aggregator.core.http import BodyRule, RequestGate, RouteBody, SecurityHeaders, uvicorn_config
from aggregator.db.engine import make_engine, migrate
from aggregator.edges import EdgeRegistry
from aggregator.ingest import IngestServer
from aggregator.media import MediaStore
from aggregator.metrics import instrument, metrics_registry
from aggregator.store import EventStore
from contract.cli import json_logging
from contract.errors import StreetwatchError
from contract.vocabulary import EVENT_TYPES

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


#: Routes that take an evidence upload as their body: media.max_upload_bytes, not the JSON limit.
UPLOADS = {("/api/v1/media/{media_id}", "PUT")}


def _body_rules(services: Services) -> list[RouteBody]:
    """The body rule of each route that reads a body: the upload limit for uploads, else
    the JSON one, and a session check before the body where the route needs a login."""
    http = services.http
    upload_bytes = services.media.cfg.max_upload_bytes if services.media else http.max_body_bytes
    rules = []
    for router in ROUTERS:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            for method in route.methods or ():
                if (route.path, method) in UPLOADS:
                    rule = BodyRule(upload_bytes, http.upload_timeout_s)
                elif route.dependant.body_params:
                    rule = BodyRule(http.max_body_bytes, http.body_timeout_s, needs_login(route))
                else:
                    continue
                rules.append(RouteBody(frozenset({method}), route.path_regex, rule))
    return rules


def _docs(app: FastAPI, enabled: bool) -> None:
    """The OpenAPI spec for logged-in users, and Swagger UI only when configured (it loads
    its scripts from a CDN)."""

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require("viewer"))])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    if enabled:

        @app.get("/docs", include_in_schema=False)
        def docs() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API")


def create_app(services: Services) -> FastAPI:
    http = services.http
    app = FastAPI(
        title="Streetwatch aggregator",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.services = services
    app.state.metrics = metrics_registry(services.ingest, services.engine, services.media)
    # Middleware added last runs first: headers on every answer, then the timer, then the
    # body gate, so refused requests are timed and carry the headers too.
    app.add_middleware(
        RequestGate,
        default=BodyRule(http.max_body_bytes, http.body_timeout_s),
        routes=_body_rules(services),
        check_login=partial(session_refusal, services),
        max_head_bytes=http.max_header_bytes,
    )
    instrument(app, app.state.metrics)
    app.add_middleware(SecurityHeaders, docs_path="/docs" if http.docs else None)
    for router in ROUTERS:
        app.include_router(router)
    _docs(app, http.docs)
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
    # Configured case categories are known event types too: counted under their own name.
    known_types = (*EVENT_TYPES, *cfg.cases.categories)
    ingest = IngestServer(cfg.ingest, EventStore(engine), registry, known_types=known_types)
    ingest.start()
    ingest.ready.wait(10)
    if ingest.error is not None:
        raise StreetwatchError(f"ingest could not start on {cfg.ingest.bind}: {ingest.error}")
    store = MediaStore(cfg.media, engine)
    app = create_app(Services(engine, registry, ingest, store, cfg.cases, cfg.http))

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
    server = uvicorn.Server(uvicorn_config(app, cfg.http, log_config))

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
