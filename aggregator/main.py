"""The aggregator's HTTP apps: the API with the review UI, and an ingest replica's probes.
The processes that run them are in aggregator/processes.py."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from aggregator.api import (
    auth,
    cases,
    citizen,
    configs,
    drills,
    events,
    fleet,
    grid,
    health,
    media,
    metrics,
    modes,
    notifications,
    open311,
    public,
    scorecard,
    stats,
    verify,
)
from aggregator.api.auth import needs_login, require, session_refusal
from aggregator.api.deps import Services
from aggregator.core.http import BodyRule, RequestGate, RouteBody, SecurityHeaders
from aggregator.grid.citizen import FORM_OVERHEAD_BYTES
from aggregator.metrics import instrument, metrics_registry

log = logging.getLogger(__name__)


UI_DIR = Path(__file__).resolve().parent / "ui"

#: Every router of the API, in the order they are mounted (the route-walking test reads it).
ROUTERS = (
    health.probes,
    health.router,
    metrics.router,
    auth.router,
    auth.users_router,
    events.router,
    cases.router,
    verify.router,
    media.router,
    open311.router,
    stats.router,
    fleet.router,
    configs.router,
    modes.router,
    drills.router,
    grid.router,
    notifications.router,
    citizen.router,
    public.router,
    scorecard.router,
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
                elif (route.path, method) == (citizen.REQUESTS_PATH, "POST"):
                    # No login (an api_key in the form); room for a photo and the fields.
                    photo = services.grid.citizen.max_photo_bytes + FORM_OVERHEAD_BYTES
                    rule = BodyRule(max(photo, http.max_body_bytes), http.body_timeout_s)
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


def _redirect_origin(services: Services) -> str | None:
    """Where browsers fetch evidence from when downloads redirect to presigned URLs: the
    bucket's origin, which the review UI's CSP must then allow."""
    media = services.media.cfg if services.media else None
    if media is None or media.s3 is None or media.store != "s3" or media.s3.serve != "redirect":
        return None
    if media.s3.endpoint_url is None:
        return "https://*.amazonaws.com"
    url = urlsplit(media.s3.endpoint_url)
    return f"{url.scheme}://{url.netloc}"


def _tile_origin(services: Services) -> str | None:
    """The origin of the map's tiles (grid.tile_url), which the review UI's CSP must allow."""
    if services.grid.tile_url is None:
        return None
    url = urlsplit(services.grid.tile_url)
    return f"{url.scheme}://{url.netloc}"


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
    app.add_middleware(
        SecurityHeaders,
        docs_path="/docs" if http.docs else None,
        media_origin=_redirect_origin(services),
        image_origin=_tile_origin(services),
    )
    for router in ROUTERS:
        app.include_router(router)
    _docs(app, http.docs)
    # The review UI: static files, no build step and nothing from the internet.
    app.mount("/ui", StaticFiles(directory=UI_DIR, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    return app


def create_probe_app(services: Services) -> FastAPI:
    """An ingest replica's HTTP side: /healthz, /readyz and /metrics only (GET, no bodies,
    no logins): for the orchestrator's probes and Prometheus, on an internal port."""
    app = FastAPI(
        title="Streetwatch ingest replica", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.services = services
    app.state.metrics = metrics_registry(services.ingest, services.engine, None)
    instrument(app, app.state.metrics)
    app.add_middleware(SecurityHeaders, docs_path=None)
    app.include_router(health.probes)
    app.include_router(metrics.router)
    return app
