"""Two real `aggregator serve` processes on one PostgreSQL, as behind a balancer: any replica
answers any user. A session made on one works on the other and a logout on either ends it
everywhere; failed logins counted by one make the other refuse the same address, and a
burst of guesses spread over both is counted once, not once per replica."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import create_engine, select

from aggregator.db.models import LOGIN_FAILURES
from tests.deploy import Deployment, database

# Starts two aggregator processes (seconds): not in the fast subset.
pytestmark = pytest.mark.slow

COOKIE = "sw_session"


@dataclass(frozen=True)
class Replicas:
    deployment: Deployment
    one: str  # base URLs
    two: str


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    root = tmp_path_factory.mktemp("replicas")
    with database("postgresql", root) as url:
        d = Deployment(root, url)
        try:
            d.start_aggregator()  # first alone: it migrates the new database
            config, port = d.replica_config("aggregator-2")
            d.start_aggregator(config, http_port=port, log="aggregator-2.log")
            d.client().close()  # makes the admin account
            yield Replicas(d, d.url, f"http://127.0.0.1:{port}")
        finally:
            d.stop_all()


def _login(base_url: str, password: str, source: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=base_url, transport=transport, timeout=30) as c:
        return c.post("/api/v1/auth/login", json={"username": "admin", "password": password})


def _me(base_url: str, cookie: str) -> int:
    return httpx.get(f"{base_url}/api/v1/auth/me", cookies={COOKIE: cookie}, timeout=30).status_code


def test_a_session_works_on_both_replicas_and_a_logout_on_either_ends_it(
    replicas: Replicas,
) -> None:
    r = _login(replicas.one, Deployment.ADMIN_PASSWORD, "127.0.0.1")
    assert r.status_code == 200, r.text
    cookie = r.cookies[COOKIE]
    assert _me(replicas.two, cookie) == 200  # made on one, known to two
    bearer = {"Authorization": f"Bearer {r.json()['token']}"}
    assert httpx.get(f"{replicas.two}/api/v1/auth/me", headers=bearer).json()["role"] == "admin"
    out = httpx.post(f"{replicas.two}/api/v1/auth/logout", cookies={COOKIE: cookie}, timeout=30)
    assert out.status_code == 204, out.text
    assert _me(replicas.one, cookie) == 401  # logged out on two, refused on one
    assert _me(replicas.two, cookie) == 401


def test_failed_logins_on_one_replica_make_the_other_refuse(replicas: Replicas) -> None:
    source = "127.0.0.31"
    failures = 0
    for _ in range(12):  # bounded: the delays of 1 and 2 s are waited out
        r = _login(replicas.one, "wrong-password", source)
        if r.status_code == 429:
            time.sleep(int(r.headers["Retry-After"]) + 0.2)
            continue
        assert r.status_code == 401, r.text
        failures += 1
        if failures == 6:  # three free, then delays of 1, 2 and now 4 s
            break
    assert failures == 6
    refused = _login(replicas.two, Deployment.ADMIN_PASSWORD, source)  # even the right one
    print(f"replica two after six failures on one: {refused.status_code} {refused.headers}")
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 4
    assert "too many failed logins" in refused.json()["detail"]
    elsewhere = _login(replicas.two, Deployment.ADMIN_PASSWORD, "127.0.0.32")
    assert elsewhere.status_code == 200, elsewhere.text  # the owner elsewhere is not affected


def test_a_burst_of_guesses_over_both_replicas_is_counted_once(replicas: Replicas) -> None:
    """With a limiter per process each replica would let four through (eight in all)."""
    source = "127.0.0.33"
    urls = [replicas.one, replicas.two] * 8
    with concurrent.futures.ThreadPoolExecutor(len(urls)) as pool:
        statuses = list(pool.map(lambda u: _login(u, "wrong", source).status_code, urls))
    print(f"16 concurrent wrong passwords over two replicas, one address: {sorted(statuses)}")
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) <= 5, statuses  # 4, or 5 if the burst outlasted the 1 s delay
    engine = create_engine(replicas.deployment.db_url)
    try:
        with engine.connect() as conn:
            counted = conn.execute(
                select(LOGIN_FAILURES.c.count).where(
                    LOGIN_FAILURES.c.username == "admin", LOGIN_FAILURES.c.address == source
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert counted == statuses.count(401)  # every check was counted, no refusal was
