"""Acceptance: only allowed keys get events stored; garbage never stops the service."""

from __future__ import annotations

import json
import random
import socket
import time
from pathlib import Path

import zmq
from sqlalchemy import create_engine, func, select

from aggregator.db.models import EventRow
from contract import wire
from contract.keys import load_pair, load_public
from edge.tools.loadgen import message
from tests.deploy import Deployment


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
    nacks = 0
    for i in range(10_000):
        kind = i % 4
        if kind == 0:  # random frames
            parts = [rng.randbytes(rng.randint(0, 40)) for _ in range(rng.randint(1, 8))]
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
    # Over the service's message limit: counted and dropped.
    sock.send_multipart(wire.frames(wire.KIND_EVENT, "fuzzer", 99_998, b"x" * 40_000))
    # Far over it: the transport itself drops the peer, which reconnects.
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
    assert int(status["oversized"]) == 1  # type: ignore[call-overload]
    assert int(status["rejected"]) == 2500  # type: ignore[call-overload]
    sock.close(0)
