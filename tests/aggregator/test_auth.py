"""Accounts and roles: login, rate limit, logout, and every route's 401 and 403."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from aggregator.api.deps import Services
from aggregator.auth import ROLES
from aggregator.db.models import USERS
from aggregator.main import ROUTERS, create_app
from tests.apihelpers import login, make_services

PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/auth/login",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}
EDGE_TOKEN = {("/api/v1/media/{media_id}", "PUT")}  # evidence uploads use the edge's token


@pytest.fixture
def app_and_services(tmp_path: Path) -> Iterator[tuple[Any, Services]]:
    services = make_services(tmp_path)
    yield create_app(services), services
    services.engine.dispose()


_login = login


def test_login_cookie_and_bearer_and_logout(app_and_services: tuple[Any, Services]) -> None:
    app, services = app_and_services
    client = TestClient(app)
    token = _login(client, "operator")
    assert "sw_session" in client.cookies
    assert client.get("/api/v1/auth/me").json()["role"] == "operator"  # by cookie
    bearer = TestClient(app)
    assert (
        bearer.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert (
        bearer.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    with services.engine.connect() as conn:
        hashes = conn.execute(select(USERS.c.password_hash)).scalars().all()
    assert all(h.startswith("$argon2id$") for h in hashes)


def test_wrong_password_and_unknown_user_look_the_same(
    app_and_services: tuple[Any, Services],
) -> None:
    client = TestClient(app_and_services[0])
    a = client.post("/api/v1/auth/login", json={"username": "admin", "password": "nope"})
    b = client.post("/api/v1/auth/login", json={"username": "ghost", "password": "nope"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json() == {"detail": "wrong username or password"}


def test_login_is_rate_limited(app_and_services: tuple[Any, Services]) -> None:
    client = TestClient(app_and_services[0])
    for _ in range(5):
        assert (
            client.post(
                "/api/v1/auth/login", json={"username": "admin", "password": "guess"}
            ).status_code
            == 401
        )
    r = client.post("/api/v1/auth/login", json={"username": "admin", "password": "admin-password"})
    assert r.status_code == 429  # even the right password waits out the window
    assert int(r.headers["Retry-After"]) > 0
    assert "too many failed logins" in r.json()["detail"]


def _required_role(route: APIRoute) -> str | None:
    found: list[str] = []

    def walk(dep: Any) -> None:
        role = getattr(dep.call, "required_role", None)
        if role:
            found.append(role)
        for sub in dep.dependencies:
            walk(sub)

    walk(route.dependant)
    return max(found, key=ROLES.index) if found else None


def test_every_route_needs_login_and_its_role(app_and_services: tuple[Any, Services]) -> None:
    app, _ = app_and_services
    tokens = {role: _login(TestClient(app), role) for role in ROLES}
    anon = TestClient(app)
    checked = 0
    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    walked = {(r.path, m) for r in routes for m in r.methods}
    documented = {(p, m.upper()) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert documented <= walked, documented - walked  # no route escapes the walk
    for route in routes:
        if route.path in PUBLIC:
            continue
        path = route.path.replace("{media_id}", str(uuid.uuid4())).replace(
            "{event_id}", str(uuid.uuid4())
        )
        for method in route.methods:
            r = anon.request(method, path, json={})
            assert r.status_code == 401, (method, route.path, r.status_code)
            if (route.path, method) in EDGE_TOKEN:
                continue
            role = _required_role(route)
            assert role is not None, f"{method} {route.path} has no role requirement"
            level = ROLES.index(role)
            if level > 0:
                below = ROLES[level - 1]
                r = anon.request(
                    method, path, json={}, headers={"Authorization": f"Bearer {tokens[below]}"}
                )
                assert r.status_code == 403, (method, route.path, below, r.status_code)
                assert f"needs the {role} role" in r.json()["detail"]
            fresh = _login(TestClient(app), role)  # a route may be logout: never reuse a token
            r = anon.request(method, path, json={}, headers={"Authorization": f"Bearer {fresh}"})
            assert r.status_code not in (401, 403), (method, route.path, role, r.status_code)
            checked += 1
    assert checked >= 7
