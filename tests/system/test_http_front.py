"""The aggregator's HTTP front against the real `aggregator serve` process (uvicorn on
loopback, SQLite): bodies are capped and refused before they are read, credentials are
checked before the body, logins are limited per (user, address) and cannot be raced, client
addresses come from the socket unless a proxy is trusted, slow request heads are cut off,
and every answer carries the security headers. Memory figures come from /proc/PID/status."""

from __future__ import annotations

import concurrent.futures
import json
import select
import time
from typing import Any

import httpx
import pytest

from tests.deploy import Deployment
from tests.system.rawhttp import (
    body_chunks,
    connect,
    exchange,
    head,
    parse,
    proc_status_kb,
    read_answer,
    trickle,
)

# Each test starts the real service (a few seconds): the fast subset leaves them out.
pytestmark = pytest.mark.slow

MiB = 1024 * 1024
JSON_LIMIT = 1024 * 1024  # http.max_body_bytes by default
BULK = "/api/v1/events/bulk"


def _start(d: Deployment, **http: Any) -> int:
    """Start the aggregator with extra ``http:`` settings; its pid."""
    with (d.root / "aggregator.yaml").open("a") as f:
        for key, value in http.items():
            f.write(f"  {key}: {json.dumps(value)}\n")
    return d.start_aggregator().pid


def _login(
    d: Deployment, user: str, password: str, source: str = "127.0.0.1", **headers: str
) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=d.url, transport=transport, timeout=30) as c:
        return c.post(
            "/api/v1/auth/login", json={"username": user, "password": password}, headers=headers
        )


def _token(d: Deployment) -> str:
    return str(d.client().headers["Authorization"])


# Finding 2: request bodies of any size were read before authentication.


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_huge_unauthenticated_post_is_refused_before_its_body_is_read(
    deployment: Deployment, chunked: bool
) -> None:
    pid = _start(deployment)
    rss_before_kb = proc_status_kb(pid, "VmRSS")
    total = 150 * MiB
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(total)}
    answer = exchange(
        deployment.http_port,
        head("POST", BULK, {"Content-Type": "application/json", **framing}),
        body_chunks(total, chunked),
    )
    grown_kb = proc_status_kb(pid, "VmRSS") - rss_before_kb
    print(f"unauthenticated 150 MB POST ({'chunked' if chunked else 'content-length'}): {answer}")
    print(f"RSS grew {grown_kb / 1024:.1f} MiB")
    assert answer.status in (401, 413), str(answer)
    assert answer.sent_bytes < 16 * MiB, str(answer)  # answered long before the body was in
    assert answer.elapsed_s < 10, str(answer)
    assert grown_kb < 64 * 1024, f"RSS grew {grown_kb} KiB"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_logged_in_json_body_over_the_limit_is_413_naming_it(
    deployment: Deployment, chunked: bool
) -> None:
    _start(deployment)
    total = 64 * MiB
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(total)}
    answer = exchange(
        deployment.http_port,
        head(
            "POST",
            BULK,
            {"Content-Type": "application/json", "Authorization": _token(deployment), **framing},
        ),
        body_chunks(total, chunked),
    )
    assert answer.status == 413, str(answer)
    assert str(JSON_LIMIT) in answer.body.decode(), str(answer)
    # Answered once the limit was passed: what was sent beyond it sat in socket buffers.
    assert answer.sent_bytes < 16 * MiB, str(answer)


def test_the_json_limit_is_configurable(deployment: Deployment) -> None:
    _start(deployment, max_body_bytes=4096)
    c = deployment.client()
    r = c.post(
        BULK,
        content=b'{"event_ids": ["' + b"a" * 5000 + b'"], "action": "confirm"}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text
    assert "4096" in r.json()["detail"]
    small = c.post(BULK, json={"event_ids": ["nope"], "action": "confirm"})
    assert small.status_code == 200, small.text  # within the limit: handled as before


# Finding 6: five wrong passwords for a user locked that user out from every address.


def test_failed_logins_from_one_address_do_not_lock_out_another(deployment: Deployment) -> None:
    _start(deployment)
    deployment.client()  # creates admin
    statuses = [
        _login(deployment, "admin", "wrong", source="127.0.0.2").status_code for _ in range(8)
    ]
    assert 429 in statuses, statuses  # the guessing address is slowed down...
    right = _login(deployment, "admin", Deployment.ADMIN_PASSWORD, source="127.0.0.1")
    assert right.status_code == 200, right.text  # ...and the owner elsewhere is not


def test_delays_grow_for_the_guessing_address(deployment: Deployment) -> None:
    _start(deployment)
    deployment.client()
    waits_s = []
    for _ in range(20):  # bounded: three delays of 1, 2 and 4 s are waited out
        r = _login(deployment, "admin", "wrong", source="127.0.0.3")
        if r.status_code == 429:
            assert "too many failed logins" in r.json()["detail"]
            wait_s = int(r.headers["Retry-After"])
            assert wait_s <= 60, f"a hard lock-out of {wait_s} s, not a growing delay"
            waits_s.append(wait_s)
            if len(waits_s) == 3:
                break
            time.sleep(wait_s + 0.2)
        else:
            assert r.status_code == 401, r.text
    print(f"delays after each failed login past the free ones: {waits_s} s")
    assert len(waits_s) == 3, waits_s
    assert waits_s[0] < waits_s[1] < waits_s[2], waits_s


# Finding 7: concurrent wrong passwords raced the limiter, and each verify takes 64 MiB.


def _burst(d: Deployment, logins: list[tuple[str, str]]) -> list[int]:
    with concurrent.futures.ThreadPoolExecutor(len(logins)) as pool:
        futures = [
            pool.submit(_login, d, user, "wrong-password", source) for user, source in logins
        ]
        return [f.result().status_code for f in futures]


def test_concurrent_wrong_passwords_from_one_address_are_counted_first(
    deployment: Deployment,
) -> None:
    _start(deployment)
    deployment.client()
    statuses = _burst(deployment, [("admin", "127.0.0.4")] * 15)
    print(f"15 concurrent wrong passwords from one address: {sorted(statuses)}")
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(429) >= 10, statuses


def test_concurrent_password_checks_are_bounded_in_memory(deployment: Deployment) -> None:
    pid = _start(deployment)
    deployment.client()  # one verify already: its 64 MiB is in the baseline peak
    peak_before_kb = proc_status_kb(pid, "VmHWM")
    logins = [(f"user{i}", f"127.0.1.{i + 1}") for i in range(15)]  # 15 addresses: no 429
    statuses = _burst(deployment, logins)
    grown_kb = proc_status_kb(pid, "VmHWM") - peak_before_kb
    print(
        f"15 concurrent logins from 15 addresses: {sorted(statuses)}, peak RSS +{grown_kb // 1024} MiB"
    )
    assert set(statuses) <= {401, 429}, statuses
    assert grown_kb < 200 * 1024, f"peak RSS grew {grown_kb // 1024} MiB (64 MiB per verify)"


# Finding 8: X-Forwarded-For from loopback was trusted, so a local client rotated its address.


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(deployment: Deployment) -> None:
    _start(deployment)
    statuses = [
        _login(
            deployment, f"ghost{i}", "wrong", **{"X-Forwarded-For": f"198.51.100.{i}"}
        ).status_code
        for i in range(15)
    ]
    assert 429 in statuses, statuses  # one address, however it names itself


def test_a_trusted_proxy_names_the_client(deployment: Deployment) -> None:
    _start(deployment, trusted_proxies=["127.0.0.1"])
    deployment.client()
    proxied = {"X-Forwarded-For": "198.51.100.7"}
    statuses = []
    for _ in range(10):  # until the delay starts: four failures
        statuses.append(_login(deployment, "admin", "wrong", **proxied).status_code)
        if statuses[-1] == 429:
            break
    assert statuses[-1] == 429, statuses
    limited = _login(deployment, "admin", Deployment.ADMIN_PASSWORD, **proxied)
    assert limited.status_code == 429, limited.text
    other = _login(
        deployment, "admin", Deployment.ADMIN_PASSWORD, **{"X-Forwarded-For": "198.51.100.8"}
    )
    assert other.status_code == 200, other.text
    # A client that is not the proxy cannot name itself: it is its own address.
    spoofed = _login(deployment, "admin", Deployment.ADMIN_PASSWORD, "127.0.0.5", **proxied)
    assert spoofed.status_code == 200, spoofed.text


# Uvicorn's limits: a request head sent a byte at a time is cut off.


def test_a_slow_request_head_is_cut_off(deployment: Deployment) -> None:
    _start(deployment, header_timeout_s=2)
    answer = trickle(
        deployment.http_port,
        head("GET", "/healthz", {"X-Padding": "p" * 200}),
        every_s=0.2,
        deadline_s=20,
    )
    print(f"slow head: {answer}")
    assert answer.closed or answer.status == 408, str(answer)
    assert answer.status in (None, 408), str(answer)
    assert answer.elapsed_s < 8, str(answer)


def test_a_slow_second_head_on_a_kept_alive_connection_is_cut_off(deployment: Deployment) -> None:
    _start(deployment, header_timeout_s=2, keep_alive_s=60)
    with connect(deployment.http_port) as s:
        s.sendall(head("GET", "/healthz", {}))
        first, closed = read_answer(s, time.monotonic() + 10)
        assert parse(first)[0] == 200, first
        assert not closed
        start = time.monotonic()
        second = head("GET", "/healthz", {"X-Padding": "p" * 200})
        for byte in second:  # a byte every 0.2 s: each restarts uvicorn's keep-alive timer
            if select.select([s], [], [], 0.2)[0]:
                break
            s.send(bytes([byte]))
        raw, _ = read_answer(s, time.monotonic() + 10)
    took_s = time.monotonic() - start
    assert parse(raw)[0] == 408, raw
    assert took_s < 8, f"cut off after {took_s:.1f} s"


# Finding 13: headers, /docs and /openapi.json.


def test_security_headers_docs_and_spec(deployment: Deployment) -> None:
    _start(deployment)
    for path in ("/ui/", "/healthz", "/api/v1/events", "/nope"):
        r = httpx.get(deployment.url + path)
        assert (
            r.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"
        ), path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "no-referrer", path
    assert httpx.get(deployment.url + "/docs").status_code == 404
    assert httpx.get(deployment.url + "/redoc").status_code == 404
    assert httpx.get(deployment.url + "/openapi.json").status_code == 401
    spec = deployment.client().get("/openapi.json")
    assert spec.status_code == 200, spec.text
    assert BULK in spec.json()["paths"]
    r = _login(deployment, "admin", Deployment.ADMIN_PASSWORD)
    assert "secure" not in r.headers["set-cookie"].lower()  # plain HTTP, nothing configured


def test_cookies_are_secure_behind_a_tls_proxy(deployment: Deployment) -> None:
    _start(deployment, trusted_proxies=["127.0.0.1"])
    deployment.client()
    r = _login(deployment, "admin", Deployment.ADMIN_PASSWORD, **{"X-Forwarded-Proto": "https"})
    assert r.status_code == 200, r.text
    assert "; secure" in r.headers["set-cookie"].lower(), r.headers["set-cookie"]
    plain = _login(deployment, "admin", Deployment.ADMIN_PASSWORD)
    assert "secure" not in plain.headers["set-cookie"].lower()
    # (http.secure_cookies: true marks it on plain HTTP too: tests/aggregator/test_http_gate.py)
