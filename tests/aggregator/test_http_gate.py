"""The HTTP front on the real app object (aggregator/core/http.py and create_app): the body
gate answers before reading a body that is too large or whose sender is not logged in,
counts streamed bodies and their time, and every answer carries the security headers.
Driven as an ASGI app with a receive() that records what the app read."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aggregator.api.deps import Services
from aggregator.core.config import HttpConfig
from aggregator.core.http import CSP
from aggregator.main import create_app
from tests.apihelpers import login, make_services

JSON_LIMIT = HttpConfig().max_body_bytes
BULK = "/api/v1/events/bulk"
CHUNK = 64 * 1024


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    s = make_services(tmp_path)
    yield s
    s.engine.dispose()


def _with_http(services: Services, **http: Any) -> Services:
    """The same database and media behind an app with other ``http`` settings."""
    return Services(
        services.engine,
        services.registry,
        None,
        services.media,
        http=HttpConfig(**http),
    )


@dataclass
class Sent:
    """What one ASGI request did: the app's reads of the body and the answer."""

    reads: int = 0
    read_bytes: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.messages[0]["headers"]}

    @property
    def detail(self) -> str:
        body = b"".join(m.get("body", b"") for m in self.messages[1:])
        return str(json.loads(body)["detail"])


def _call(
    app: Any,
    method: str,
    path: str,
    headers: dict[str, str],
    body_bytes: int,
    chunk_delay_s: float = 0.0,
) -> Sent:
    """One request straight into the ASGI app; the body comes in CHUNK pieces, each after
    ``chunk_delay_s``, and only as the app asks for it."""
    sent = Sent()
    left = body_bytes

    async def receive() -> dict[str, Any]:
        nonlocal left
        sent.reads += 1
        if chunk_delay_s:
            await asyncio.sleep(chunk_delay_s)
        n = min(left, CHUNK)
        left -= n
        sent.read_bytes += n
        return {"type": "http.request", "body": b"x" * n, "more_body": left > 0}

    async def send(message: dict[str, Any]) -> None:
        sent.messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    asyncio.run(app(scope, receive, send))
    return sent


def test_a_declared_body_over_the_limit_is_413_before_any_read(services: Services) -> None:
    app = create_app(services)
    token = login(TestClient(app), "operator")
    sent = _call(
        app,
        "POST",
        BULK,
        {"content-length": str(150 * 1024 * 1024), "authorization": f"Bearer {token}"},
        150 * 1024 * 1024,
    )
    assert sent.status == 413
    assert sent.reads == 0
    assert f"exceeds the limit of {JSON_LIMIT} bytes" in sent.detail
    assert sent.headers["connection"] == "close"  # the rest of the body is never drained
    assert sent.headers["content-security-policy"] == CSP


def test_no_login_is_401_before_any_read(services: Services) -> None:
    app = create_app(services)
    for headers in (
        {"transfer-encoding": "chunked"},
        {"content-length": "1000", "authorization": "Bearer not-a-session"},
        {"content-length": "1000", "cookie": "sw_session=forged"},
    ):
        sent = _call(app, "POST", BULK, headers, 1000)
        assert sent.status == 401, headers
        assert sent.reads == 0, headers
        assert sent.detail == "not logged in: POST /api/v1/auth/login first"
        assert sent.headers["www-authenticate"] == "Bearer"


def test_a_streamed_body_is_cut_at_the_limit(services: Services) -> None:
    app = create_app(services)
    token = login(TestClient(app), "operator")
    sent = _call(
        app,
        "POST",
        BULK,
        {"transfer-encoding": "chunked", "authorization": f"Bearer {token}"},
        50 * JSON_LIMIT,
    )
    assert sent.status == 413
    assert f"exceeds the limit of {JSON_LIMIT} bytes" in sent.detail
    assert sent.read_bytes <= JSON_LIMIT + CHUNK  # one piece past the limit, no more
    assert len(sent.messages) == 2  # the app's own answer after the refusal was dropped


def test_a_slow_body_is_408(services: Services) -> None:
    app = create_app(_with_http(services, body_timeout_s=0.3))
    token = login(TestClient(app), "operator")
    sent = _call(
        app,
        "POST",
        BULK,
        {"content-length": str(10 * CHUNK), "authorization": f"Bearer {token}"},
        10 * CHUNK,
        chunk_delay_s=0.1,
    )
    assert sent.status == 408
    assert "did not arrive within 0.3 s" in sent.detail
    assert sent.reads < 10


def test_the_login_route_and_uploads_have_their_own_rules(services: Services) -> None:
    app = create_app(services)
    # Login needs no session: its (bad) body is read and judged by the route.
    sent = _call(app, "POST", "/api/v1/auth/login", {"content-length": "100"}, 100)
    assert sent.status == 422
    assert sent.reads == 1
    # An upload may be larger than a JSON body: past the gate, the edge token is checked.
    size = 2 * JSON_LIMIT
    assert services.media is not None
    assert size < services.media.cfg.max_upload_bytes
    sent = _call(app, "PUT", f"/api/v1/media/{uuid.uuid4()}", {"content-length": str(size)}, size)
    assert sent.status == 401
    assert sent.reads == 0
    assert sent.headers["connection"] == "close"  # answered before the body: not drained
    over = services.media.cfg.max_upload_bytes + 1
    sent = _call(app, "PUT", f"/api/v1/media/{uuid.uuid4()}", {"content-length": str(over)}, 0)
    assert sent.status == 413
    assert str(services.media.cfg.max_upload_bytes) in sent.detail


def test_security_headers_on_every_answer(services: Services) -> None:
    client = TestClient(create_app(services))
    for path in ("/ui/", "/ui/app.js", "/healthz", "/api/v1/auth/me", "/nope"):
        r = client.get(path)
        assert r.headers["content-security-policy"] == CSP, path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "no-referrer", path
        assert r.headers["x-frame-options"] == "DENY", path


def test_the_spec_needs_a_login_and_docs_are_off_by_default(services: Services) -> None:
    client = TestClient(create_app(services))
    assert client.get("/openapi.json").status_code == 401
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    login(client, "viewer")
    assert BULK in client.get("/openapi.json").json()["paths"]
    docs = TestClient(create_app(_with_http(services, docs=True))).get("/docs")
    assert docs.status_code == 200
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]


def test_the_session_cookie_is_secure_over_https_or_when_configured(services: Services) -> None:
    plain = TestClient(create_app(services))
    login(plain, "viewer")
    tls = TestClient(create_app(services), base_url="https://testserver")
    login(tls, "viewer")
    configured = TestClient(create_app(_with_http(services, secure_cookies=True)))
    login(configured, "viewer")
    assert not next(iter(plain.cookies.jar)).secure
    assert next(iter(tls.cookies.jar)).secure
    assert next(iter(configured.cookies.jar)).secure
