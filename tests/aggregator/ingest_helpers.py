"""Helpers for the ingest tests: an edge's own DEALER socket, raw event payloads (built without
the codec's checks, so they can be anything), replies, row counts and a process's memory."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgpack
import zmq
from sqlalchemy import create_engine, func, select

from aggregator.db.models import EventMessageRow
from contract import wire
from contract.keys import load_pair, load_public
from tests.deploy import Deployment


def dealer(d: Deployment, name: str) -> zmq.Socket[bytes]:
    """A DEALER socket with edge `name`'s CURVE key, connected to the deployment's ingest."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.curve_publickey, s.curve_secretkey = load_pair(d.root / "keys" / f"{name}.key_secret")
    s.curve_serverkey = load_public(d.root / "keys" / "aggregator.key")
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDTIMEO, 10_000)
    s.connect(f"tcp://127.0.0.1:{d.zmq_port}")
    return s


def raw_event(**change: Any) -> bytes:
    """A valid event payload (short wire keys) with fields replaced or, given None, removed;
    nothing is checked, so the result may be anything a hostile edge could send."""
    body: dict[str, Any] = {
        "i": uuid.uuid4().bytes,
        "t": "crowding",
        "p": 0,
        "c": "cam-x",
        "z": "zone-a",
        "r": "r",
        "ts": 1000.0,
        "st": 1000.0,
        "v": 5.0,
        "u": "persons",
        "s": 1,
        "b": [[1, 2, 3, 4]],
        "l": ["person"],
        "w": time.time(),
    }
    body.update(change)
    out: bytes = msgpack.packb({k: v for k, v in body.items() if v is not None}, use_bin_type=True)
    return out


def replies(
    sock: zmq.Socket[bytes], seqs: Iterable[int], timeout_s: float
) -> dict[int, wire.Envelope]:
    """Read replies until each of seqs has an ack or a nack (or timeout_s passes); heartbeats
    and replies to other seqs are skipped. Returns the answers got, by seq."""
    want = set(seqs)
    got: dict[int, wire.Envelope] = {}
    deadline = time.monotonic() + timeout_s
    while want - set(got) and time.monotonic() < deadline:
        if not sock.poll(100):
            continue
        env = wire.parse(sock.recv_multipart())
        if env.kind in (wire.KIND_ACK, wire.KIND_NACK) and env.seq in want:
            got[env.seq] = env
    return got


def send_until_answered(
    sock: zmq.Socket[bytes], edge_id: str, messages: dict[int, bytes], timeout_s: float
) -> dict[int, wire.Envelope]:
    """Send each (seq, payload) and resend what is unanswered every second, as an edge does,
    until every seq has an ack or a nack or timeout_s passes."""
    got: dict[int, wire.Envelope] = {}
    deadline = time.monotonic() + timeout_s
    while set(messages) - set(got) and time.monotonic() < deadline:
        for seq, payload in messages.items():
            if seq not in got:
                sock.send_multipart(wire.frames(wire.KIND_EVENT, edge_id, seq, payload))
        left = max(0.1, min(1.0, deadline - time.monotonic()))
        got.update(replies(sock, set(messages) - set(got), left))
    return got


def stored_messages(url: str, edge_id: str | None = None) -> int:
    """Rows in event_messages, of one edge or all."""
    engine = create_engine(url)
    query = select(func.count()).select_from(EventMessageRow)
    if edge_id is not None:
        query = query.where(EventMessageRow.edge_id == edge_id)
    with engine.connect() as conn:
        n = int(conn.execute(query).scalar_one())
    engine.dispose()
    return n


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of a live process from /proc/PID/status (VmRSS now, VmHWM its peak), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(f"{field} not in /proc/{pid}/status")
