"""Standing test, HTTP abuse: oversized, slow (slowloris, bounded) and malformed requests to
every route of a real `aggregator serve`, anonymous, logged in and with an edge's upload
token. Every answer is a 4xx within a bounded time, the server's memory stays bounded, and
a logged-in user's requests go on being answered meanwhile (their p95 is printed; the
figures under heavier load are bench/bench_http_abuse.py's)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.deploy import Deployment
from tests.system.httpabuse import (
    Limits,
    MemoryWatch,
    Victim,
    by_kind,
    cases,
    percentile_ms,
    refusals,
    routes,
    run,
)

# Slow: hundreds of abusive requests against a real server.
pytestmark = pytest.mark.slow

# Short deadlines so the slow cases end within the test's time; the defaults are longer.
HTTP = {"header_timeout_s": 2, "body_timeout_s": 2, "upload_timeout_s": 3}
UPLOAD_BYTES = 4 * 1024 * 1024
SLOW_DEADLINE_S = 10.0  # a slow request must be answered by then (timeouts + slack)
# Generous bounds for a loaded 2-core machine: the measured figures are printed.
P95_BOUND_MS = 2000.0
RSS_BOUND_MIB = 150


def _start(d: Deployment) -> tuple[int, str, str]:
    """The aggregator with short timeouts and a small upload limit; its pid, an admin
    session and an edge's upload token."""
    edge_cfg = d.add_edge("box")
    assert edge_cfg.is_file()
    with (d.root / "aggregator.yaml").open("a") as f:
        f.writelines(f"  {k}: {json.dumps(v)}\n" for k, v in HTTP.items())
        f.write(f"media:\n  max_upload_bytes: {UPLOAD_BYTES}\n")
    pid = d.start_aggregator().pid
    token = str(d.client().headers["Authorization"]).removeprefix("Bearer ")
    return pid, token, (d.root / "keys" / "box.token").read_text().strip()


@pytest.mark.slow
def test_abuse_of_every_route_gets_4xx_and_spares_other_users(deployment: Deployment) -> None:
    pid, session, edge_token = _start(deployment)
    todo = cases(
        {"anonymous": "", "user": session, "edge": edge_token},
        Limits(1024 * 1024, UPLOAD_BYTES, SLOW_DEADLINE_S),
    )
    assert len(routes()) >= 25
    with Victim(deployment.url, session) as victim:
        time.sleep(1.0)  # the victim's figures before the abuse
        idle = list(victim.latencies_s)
        with MemoryWatch(pid) as memory:
            baseline_kb = memory.peak_kb
            start = time.monotonic()
            outcomes = run(deployment.http_port, todo)
            took_s = time.monotonic() - start
        under_abuse = victim.latencies_s[len(idle) :]
    grown_mib = (memory.peak_kb - baseline_kb) / 1024
    print(f"\n{len(outcomes)} abusive requests to {len(routes())} routes in {took_s:.1f} s")
    for kind, n, statuses, slowest_s in by_kind(outcomes):
        print(f"  {kind:<28} {n:>4}  {statuses}  slowest {slowest_s:.2f} s")
    print(
        f"victim GET /api/v1/events: idle p95 {percentile_ms(idle, 95):.0f} ms, under abuse "
        f"p50 {percentile_ms(under_abuse, 50):.0f} ms, p95 {percentile_ms(under_abuse, 95):.0f} "
        f"ms, max {1000 * max(under_abuse):.0f} ms ({len(under_abuse)} requests)"
    )
    print(f"server RSS: peak {grown_mib:+.1f} MiB over {baseline_kb / 1024:.0f} MiB")

    bad = refusals(outcomes)
    assert not bad, "\n".join(str(o) for o in bad[:20])
    slow = [o for o in outcomes if o.answer.elapsed_s > SLOW_DEADLINE_S]
    assert not slow, "\n".join(str(o) for o in slow[:20])
    assert not victim.failures, victim.failures[:5]
    assert len(under_abuse) >= 10
    assert percentile_ms(under_abuse, 95) < P95_BOUND_MS
    assert grown_mib < RSS_BOUND_MIB
    log = (deployment.root / "aggregator.log").read_text()
    assert "Traceback" not in log, log[log.index("Traceback") - 300 :][:3000]
    # The server is still there and well.
    assert httpx.get(f"{deployment.url}/readyz", timeout=10).status_code == 200
    assert deployment.client().get("/api/v1/auth/me").status_code == 200
