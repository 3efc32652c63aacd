"""GET /metrics of a real aggregator fed by a real edge, and JSON logs from both CLIs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import msgpack
import pytest
import zmq
from prometheus_client.parser import text_string_to_metric_families

from contract import wire
from contract.keys import load_pair, load_public
from contract.vocabulary import ILLEGAL_PARKING
from edge.tools.loadgen import message
from tests.aggregator.ingest_helpers import raw_event, send_until_answered
from tests.deploy import Deployment

# Slow: real aggregator and edge processes.
pytestmark = pytest.mark.slow

EDGE = "box-m"
AGGREGATOR = [sys.executable, "-m", "aggregator.cli"]
N = 30  # 10 incidents: 4 crowding, 3 illegal_parking, 3 litter; 3 messages each


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(d: Deployment) -> Samples:
    """Every sample of GET /metrics, fetched without credentials, by (name, sorted labels)."""
    r = httpx.get(f"{d.url}/metrics", timeout=5)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def _labelled(samples: Samples, name: str) -> dict[str, float]:
    """{label value: sample value} of a metric with one label."""
    return {labels[0][1]: v for (n, labels), v in samples.items() if n == name and labels}


def _json_lines(text: str) -> list[dict[str, object]]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # every line is one JSON object


def _dealer(d: Deployment, name: str) -> zmq.Socket[bytes]:
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.curve_publickey, s.curve_secretkey = load_pair(d.root / "keys" / f"{name}.key_secret")
    s.curve_serverkey = load_public(d.root / "keys" / "aggregator.key")
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDTIMEO, 5000)
    s.connect(f"tcp://127.0.0.1:{d.zmq_port}")
    return s


def test_metrics_count_real_events_edges_and_rejects(deployment: Deployment) -> None:
    d = deployment
    cfg = d.add_edge(EDGE)
    agg = d.spawn(
        "aggregator",
        "--log-format",
        "json",
        "--log-level",
        "info",
        "serve",
        "-c",
        "aggregator.yaml",
        log="aggregator.log",
    )
    d.wait_ready(agg)
    before = _scrape(d)  # public: no session, no token
    assert before[("streetwatch_ingest_messages_total", (("outcome", "stored"),))] == 0
    assert _labelled(before, "streetwatch_ingest_edge_outbox_depth") == {}

    started = time.time()
    # 30 messages at 20/s: 1.5 s of generating, so the edge sends several heartbeats.
    res = d.run(
        "edge",
        "--log-format",
        "json",
        "--log-level",
        "info",
        "loadgen",
        "-c",
        cfg.name,
        "--count",
        str(N),
        "--rate",
        "20",
        "--exit-when-done",
    )
    m = _scrape(d)  # every message was acknowledged, so committed before the edge exited
    assert m[("streetwatch_ingest_messages_total", (("outcome", "stored"),))] == N
    assert _labelled(m, "streetwatch_events_total") == {
        "crowding": 12,
        "illegal_parking": 9,
        "litter": 9,
    }
    assert m[("streetwatch_ingest_batches_total", ())] >= 1
    assert m[("streetwatch_ingest_db_errors_total", ())] == 0
    assert 0 <= _labelled(m, "streetwatch_ingest_edge_outbox_depth")[EDGE] <= N  # at its last beat
    assert started <= _labelled(m, "streetwatch_ingest_edge_last_seen_seconds")[EDGE] <= time.time()
    timed = {
        labels: v
        for (name, labels), v in m.items()
        if name == "streetwatch_http_request_duration_seconds_count"
    }
    assert timed[(("method", "GET"), ("route", "/readyz"))] >= 1  # d.wait_ready polled it
    assert timed[(("method", "GET"), ("route", "/metrics"))] >= 1

    # Bad messages from the edge's own key: each is counted under its reason.
    sock = _dealer(d, EDGE)
    bad = [
        [b"garbage"],  # not six frames: malformed
        [b"garbage", b"again"],
        wire.frames(wire.KIND_EVENT, "someone-else", 1, message("x", 0)[0]),  # unauthorised
        wire.frames(wire.KIND_EVENT, EDGE, 10_001, b"\xc1 not msgpack"),  # rejected, NACKed
        wire.frames(wire.KIND_EVENT, EDGE, 10_002, b"\xc1 nor this"),
        wire.frames(wire.KIND_EVENT, EDGE, 10_003, b"\xc1 nor that"),
        [*wire.frames(wire.KIND_EVENT, EDGE, 10_004, b"x"), b"7th"],  # oversized: 7 frames
    ]
    for parts in bad:
        sock.send_multipart(parts)
    want = {"malformed": 2, "unauthorised": 1, "rejected": 3, "oversized": 1}
    old = _labelled(m, "streetwatch_ingest_rejects_total")
    deadline = time.monotonic() + 10
    while True:  # a reject is counted after its message is: wait for the last reject
        after = _scrape(d)
        new = _labelled(after, "streetwatch_ingest_rejects_total")
        if sum(new.values()) - sum(old.values()) >= len(bad) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    sock.close(0)
    assert {k: new[k] - old[k] for k in new} == want
    received = ("streetwatch_ingest_messages_total", (("outcome", "received"),))
    assert after[received] == m[received] + len(bad)
    assert after[("streetwatch_ingest_messages_total", (("outcome", "stored"),))] == N

    # Both processes logged JSON, every line, with the agreed keys.
    d.kill(agg)
    agg_lines = _json_lines((d.root / "aggregator.log").read_text())
    assert any("ingest listening on" in str(x["message"]) for x in agg_lines)
    edge_lines = _json_lines(res.stderr)
    assert any(
        x["logger"] == "edge.delivery.publisher" and str(x["message"]).endswith(": connected")
        for x in edge_lines
    )
    for line in agg_lines + edge_lines:
        assert {"timestamp", "level", "logger", "message"} <= line.keys()
        stamp = datetime.fromisoformat(str(line["timestamp"]))
        assert stamp.utcoffset() == timedelta(0)


def test_edge_json_logs_with_extra_keys_and_envvar(tmp_path: Path) -> None:
    """`--log-format json` and STREETWATCH_LOG_FORMAT=json: one JSON object a line."""
    code = (
        "import logging, sys\n"
        "from contract.cli import setup_logging\n"
        "setup_logging('info', sys.argv[1])\n"
        "logging.getLogger('edge.test').warning('hello %s', 'there', extra={'camera': 'c1'})\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, "json"], capture_output=True, text=True, timeout=30
    )
    line = json.loads(res.stderr.strip())
    assert line["level"] == "WARNING"
    assert line["logger"] == "edge.test"
    assert line["message"] == "hello there"
    assert line["camera"] == "c1"
    assert datetime.fromisoformat(line["timestamp"]).utcoffset() == timedelta(0)

    # The real CLI, told by the environment; the database migration logs at INFO.
    (tmp_path / "a.yaml").write_text(
        f"database_url: sqlite:///{tmp_path / 'a.sqlite3'}\n"
        "ingest:\n  bind: tcp://127.0.0.1:1\n  server_secret_key: k.key_secret\n"
    )
    env = {**os.environ, "STREETWATCH_LOG_FORMAT": "json"}
    res = subprocess.run(
        [*AGGREGATOR, "--log-level", "info", "edges", "list", "-c", str(tmp_path / "a.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    lines = _json_lines(res.stderr)
    assert all(x["level"] == "INFO" and x["message"] for x in lines)


def _heartbeat_answered(sock: zmq.Socket[bytes], timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sock.poll(100) and wire.parse(sock.recv_multipart()).kind == wire.KIND_HEARTBEAT:
            return True
    return False


def test_bad_heartbeat_depth_keeps_metrics_and_status_up(deployment: Deployment) -> None:
    """A heartbeat depth that is text or bytes (issue 12, finding 9) once made /metrics and
    /api/v1/ingest answer 500 until a good heartbeat came: now the depth is simply unknown."""
    d = deployment
    d.add_edge(EDGE)
    d.start_aggregator()
    sock = _dealer(d, EDGE)
    admin = d.client()
    for depth in ("x", b"\x00", 7):
        payload = msgpack.packb({"depth": depth}, use_bin_type=True)
        sock.send_multipart(wire.frames(wire.KIND_HEARTBEAT, EDGE, 0, payload))
        assert _heartbeat_answered(sock)  # answered after the ingest has handled it
        scraped = _scrape(d)
        status = admin.get("/api/v1/ingest")
        assert status.status_code == 200, status.text
        want = 7 if depth == 7 else None
        assert status.json()["edges"][EDGE]["depth"] == want
        assert _labelled(scraped, "streetwatch_ingest_edge_outbox_depth").get(EDGE) == want
    sock.close(0)


def test_event_type_labels_are_bounded(deployment: Deployment) -> None:
    """3,000 edge-chosen event types (issue 12, finding 10) add no series: /metrics and
    /api/v1/ingest count types outside the vocabulary and the case categories as `other`."""
    d = deployment
    d.add_edge(EDGE)
    d.start_aggregator()
    sock = _dealer(d, EDGE)
    n = 3000
    messages = {i + 1: raw_event(t=f"type-{i:04d}", c="cam-m") for i in range(n)}
    messages[n + 1] = raw_event(t=ILLEGAL_PARKING, c="cam-m")
    got: dict[int, wire.Envelope] = {}
    for start in range(0, n + 1, 500):  # in slices, within the sockets' queues
        part = dict(list(messages.items())[start : start + 500])
        got.update(send_until_answered(sock, EDGE, part, timeout_s=60))
    sock.close(0)
    assert {e.kind for e in got.values()} == {wire.KIND_ACK}
    assert len(got) == n + 1
    by_type = _labelled(_scrape(d), "streetwatch_events_total")
    assert by_type == {"other": n, ILLEGAL_PARKING: 1}
    assert d.ingest_status()["by_type"] == {"other": n, ILLEGAL_PARKING: 1}
