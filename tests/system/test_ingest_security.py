"""Acceptance: only allowed keys get events stored; garbage never stops the service."""

from __future__ import annotations

import json
import random
import socket
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
import zmq
from sqlalchemy import create_engine, func, select
from zmq.utils.monitor import recv_monitor_message

from aggregator.db.models import EventRow
from contract import wire
from contract.keys import load_pair, load_public
from edge.delivery.outbox import Outbox
from edge.tools.loadgen import message
from tests.aggregator.ingest_helpers import (
    memory_kib,
    raw_event,
    replies,
    send_until_answered,
)
from tests.deploy import Deployment

# Slow: real edge and aggregator processes.
pytestmark = pytest.mark.slow


def _stored(d: Deployment) -> int:
    engine = create_engine(d.db_url)
    with engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(EventRow)).scalar_one())
    engine.dispose()
    return n


def _dealer(d: Deployment, name: str) -> zmq.Socket[bytes]:
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    public, secret = load_pair(d.root / "keys" / f"{name}.key_secret")
    s.curve_publickey, s.curve_secretkey = public, secret
    s.curve_serverkey = load_public(d.root / "keys" / "aggregator.key")
    s.setsockopt(zmq.LINGER, 0)
    s.connect(f"tcp://127.0.0.1:{d.zmq_port}")
    return s


def _outbox_status(d: Deployment, cfg: Path) -> dict[str, int]:
    out: dict[str, int] = json.loads(d.run("edge", "outbox", "status", "-c", cfg.name).stdout)
    return out


def test_unknown_key_gets_nothing_stored_and_loses_nothing(deployment: Deployment) -> None:
    d = deployment
    cfg = d.add_edge("stranger", register=False)
    d.start_aggregator()
    edge = d.spawn(
        "edge", "loadgen", "-c", cfg.name, "--count", "300", "--rate", "1000", log="edge.log"
    )
    time.sleep(4)
    edge.terminate()
    edge.wait(10)
    assert _stored(d) == 0
    status = _outbox_status(d, cfg)
    assert status["depth"] == 300  # everything still waits in the outbox
    assert status["publisher"]["acked"] == 0  # type: ignore[index]


def test_revoked_edge_is_refused_without_restart(deployment: Deployment) -> None:
    d = deployment
    cfg = d.add_edge("box-r")
    d.start_aggregator()
    d.spawn("edge", "loadgen", "-c", cfg.name, "--count", "60", "--rate", "200", log="edge.log")
    deadline = time.monotonic() + 20
    while _stored(d) < 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _stored(d) == 20
    d.run("aggregator", "edges", "revoke", "-c", "aggregator.yaml", "box-r")
    time.sleep(1.5)  # the allowlist cache
    edge2 = d.spawn(
        "edge", "loadgen", "-c", cfg.name, "--count", "120", "--rate", "200", log="edge.log"
    )
    time.sleep(3)
    edge2.terminate()
    assert _stored(d) == 20
    assert _outbox_status(d, cfg)["depth"] == 60


def test_garbage_and_oversize_are_counted_and_service_keeps_serving(deployment: Deployment) -> None:
    d = deployment
    d.add_edge("fuzzer")
    d.start_aggregator()
    rng = random.Random(42)
    sock = _dealer(d, "fuzzer")
    sent = 0
    too_many_frames = 0  # random messages of more frames than the protocol's six
    nacks = 0
    for i in range(10_000):
        kind = i % 4
        if kind == 0:  # random frames
            parts = [rng.randbytes(rng.randint(0, 40)) for _ in range(rng.randint(1, 8))]
            too_many_frames += len(parts) > wire.FRAMES
        elif kind == 1:  # right envelope, garbage payload: rejected with a NACK
            parts = wire.frames(
                wire.KIND_EVENT, "fuzzer", 10_000 + i, rng.randbytes(rng.randint(0, 300))
            )
        elif kind == 2:  # right envelope, wrong version / kind / magic
            parts = wire.frames(wire.KIND_EVENT, "fuzzer", i, b"")
            parts[rng.randint(0, 2)] = rng.randbytes(2)
        else:  # claims to be another edge
            parts = wire.frames(wire.KIND_EVENT, "someone-else", i, message("x", i)[0])
        sock.send_multipart(parts)
        sent += 1
        while sock.poll(0):  # read the NACKs as an edge would, or the ROUTER drops replies
            nacks += wire.parse(sock.recv_multipart()).kind == wire.KIND_NACK
    while sock.poll(1000):  # the last NACKs, before the oversized message drops the connection
        nacks += wire.parse(sock.recv_multipart()).kind == wire.KIND_NACK
    assert nacks == 2500  # every rejected message was answered, so an edge dead-letters it
    # More frames than the protocol's: counted and dropped.
    sock.send_multipart([*wire.frames(wire.KIND_EVENT, "fuzzer", 99_998, b"x"), b"7th"])
    # A frame over the largest legal one: the transport itself drops the peer, which
    # reconnects.
    sock.send_multipart(wire.frames(wire.KIND_EVENT, "fuzzer", 99_999, b"x" * 2_000_000))
    # Raw bytes on the TCP port from a client that never speaks CURVE.
    with socket.create_connection(("127.0.0.1", d.zmq_port)) as raw:
        raw.sendall(rng.randbytes(4096))
    # A good message afterwards is still stored and acknowledged. It is resent until acked,
    # as the edge publisher does: the dropped peer's queued messages are lost with it.
    payload, _ = message("fuzzer", 0)
    deadline = time.monotonic() + 30
    acked = False
    while time.monotonic() < deadline and not acked:
        sock.send_multipart(wire.frames(wire.KIND_EVENT, "fuzzer", 1, payload))
        while not acked and sock.poll(1000):
            env = wire.parse(sock.recv_multipart())
            acked = env.kind == wire.KIND_ACK and env.seq == 1
            nacks += env.kind == wire.KIND_NACK
    assert acked
    assert _stored(d) == 1
    status = d.ingest_status()
    bad = sum(int(status[k]) for k in ("malformed", "rejected", "oversized", "unauthorised"))  # type: ignore[call-overload]
    assert bad >= sent
    assert int(status["oversized"]) == too_many_frames + 1  # type: ignore[call-overload]
    assert int(status["rejected"]) == 2500  # type: ignore[call-overload]
    sock.close(0)


def _wait_disconnected(monitor: zmq.Socket[bytes], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if monitor.poll(100) and recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED:
            return True
    return False


def test_many_large_frames_drop_the_peer_before_they_are_buffered(deployment: Deployment) -> None:
    """1,700 frames of 60 KB in one message (issue 12, finding 5): each frame is over the
    largest legal one, so the transport drops the peer at the first, and the aggregator's peak
    memory does not grow by the 100 MB sent. Another edge is served throughout."""
    d = deployment
    d.add_edge("big")
    d.add_edge("other")
    agg = d.start_aggregator()
    d.ingest_status()  # the HTTP side warmed up: its memory is in the baseline
    sock = _dealer(d, "big")
    monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    sock.send_multipart(wire.frames(wire.KIND_HEARTBEAT, "big", 0))
    assert sock.poll(10_000), "no heartbeat answer: not connected"
    sock.recv_multipart()
    peak_before_kib = memory_kib(agg.pid, "VmHWM")
    frame = b"x" * 60_000
    sock.send_multipart([*wire.frames(wire.KIND_EVENT, "big", 1)[:5], *[frame] * 1_700])
    assert _wait_disconnected(monitor, 30), "the peer was not dropped"
    other = _dealer(d, "other")
    got = send_until_answered(other, "other", {1: message("other", 0)[0]}, timeout_s=20)
    assert got[1].kind == wire.KIND_ACK
    grown_kib = memory_kib(agg.pid, "VmHWM") - peak_before_kib
    assert grown_kib < 40 * 1024, f"peak memory grew by {grown_kib} KiB"
    assert agg.poll() is None
    for s in (monitor, sock, other):
        s.close(0)


def test_message_of_too_many_frames_is_discarded_and_counted(deployment: Deployment) -> None:
    """Frames of a legal size but more than six of them: read to the end, discarded, counted as
    oversized; the connection stays and the edge's next message is acknowledged."""
    d = deployment
    d.add_edge("many")
    d.start_aggregator()
    sock = _dealer(d, "many")
    monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    payload = message("many", 0)[0]
    sock.send_multipart([*wire.frames(wire.KIND_EVENT, "many", 1, payload), *[b"y" * 1000] * 2000])
    got = send_until_answered(sock, "many", {2: payload}, timeout_s=20)
    assert got[2].kind == wire.KIND_ACK
    assert not _wait_disconnected(monitor, 0.5)
    status = d.ingest_status()
    assert (status["oversized"], status["stored"]) == (1, 1)
    for s in (monitor, sock):
        s.close(0)


def test_edge_dead_letters_a_payload_over_the_protocols_limit(deployment: Deployment) -> None:
    """A payload over the largest legal frame would make the aggregator's transport drop the
    connection on every resend: the edge never sends it, and dead-letters it with a reason."""
    d = deployment
    cfg = d.add_edge("box-big")
    box = Outbox(d.root / "box-big-outbox.sqlite3")
    box.put(b"x" * (wire.MAX_PAYLOAD_BYTES + 1), "start")
    box.put(message("box-big", 0)[0], "start")
    box.close()
    d.start_aggregator()
    d.spawn("edge", "publish", "-c", cfg.name, log="edge.log")
    deadline = time.monotonic() + 30
    while _outbox_status(d, cfg)["depth"] and time.monotonic() < deadline:
        time.sleep(0.3)
    status = _outbox_status(d, cfg)
    assert (status["depth"], status["dead_letters"]) == (0, 1)
    assert _stored(d) == 1
    with closing(sqlite3.connect(d.root / "box-big-outbox.sqlite3")) as db:
        reasons = [r for (r,) in db.execute("SELECT reason FROM dead_letter")]
    limit = wire.MAX_PAYLOAD_BYTES
    assert reasons == [f"payload of {limit + 1} bytes exceeds the protocol's {limit}; not sent"]


def test_payload_over_the_configured_limit_is_nacked(deployment: Deployment) -> None:
    """Under the protocol's frame limit but over `ingest.max_message_bytes`: nacked with the
    sizes (so the edge dead-letters it instead of resending it forever), counted oversized."""
    d = deployment
    cfg = d.root / "aggregator.yaml"
    cfg.write_text(cfg.read_text().replace("ingest:\n", "ingest:\n  max_message_bytes: 2048\n"))
    d.add_edge("box-l")
    d.start_aggregator()
    sock = _dealer(d, "box-l")
    big = raw_event(l=["x" * 60] * 40)
    small = message("box-l", 0)[0]
    got = send_until_answered(sock, "box-l", {1: big, 2: small}, timeout_s=20)
    sock.close(0)
    assert got[1].kind == wire.KIND_NACK
    assert got[1].payload.decode() == f"payload of {len(big)} bytes exceeds 2048"
    assert got[2].kind == wire.KIND_ACK
    status = d.ingest_status()
    assert (status["oversized"], status["stored"]) == (1, 1)


def test_largest_legal_frame_passes_and_one_byte_more_drops_the_peer(
    deployment: Deployment,
) -> None:
    """The transport limit is the protocol's payload limit exactly (libzmq counts CurveZMQ's
    overhead in it): a payload of MAX_PAYLOAD_BYTES is answered, one byte more is not."""
    d = deployment
    d.add_edge("box-x")
    d.start_aggregator()
    sock = _dealer(d, "box-x")
    monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    limit = wire.MAX_PAYLOAD_BYTES
    sock.send_multipart(wire.frames(wire.KIND_EVENT, "box-x", 1, b"\xc1" * limit))
    got = replies(sock, {1}, 20)
    assert got[1].kind == wire.KIND_NACK  # read and refused: garbage, but not too large
    assert not _wait_disconnected(monitor, 0.5)
    sock.send_multipart(wire.frames(wire.KIND_EVENT, "box-x", 2, b"\xc1" * (limit + 1)))
    assert _wait_disconnected(monitor, 20)
    for s in (monitor, sock):
        s.close(0)
