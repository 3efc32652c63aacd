"""The ingest fuzzer (issue 12, standing test), used by tests/aggregator/test_ingest_fuzz.py and
bench/bench_ingest_fuzz.py.

A child process sends mutated and random messages through a real CurveZMQ DEALER with an
allowed edge's key: wrong frame counts, frame and payload lengths, msgpack types, boundary
numbers, NUL and other control characters, huge sequence numbers, other edges' ids and
cameras, and now and then a frame over the largest legal one (the aggregator drops the peer,
which reconnects). tests/aggregator/fuzz_run.py runs it beside well-behaved edges.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack
import zmq
from zmq.utils.monitor import recv_monitor_message

from contract import wire
from contract.keys import load_pair, load_public
from tests.aggregator.ingest_helpers import raw_event

INTERESTING_INTS = (
    0, 1, -1, 2, 3, 255, 256, 65535, 65536, 2**31 - 1, 2**31, -(2**31), 2**32, 2**53,
    2**62, 2**63 - 1, 2**63, 2**64 - 1, -(2**63),
)  # fmt: skip
INTERESTING_FLOATS = (
    0.0, -0.0, 1e308, -1e308, 5e-324, float("nan"), float("inf"), float("-inf"), 1.5, 2.0**63,
)  # fmt: skip
INTERESTING_TEXTS = (
    "", "\x00", "a\x00b", "\x07", "\n", "\x7f", "\x9b", "\u202e", "\ufeff", "\U0001f600" * 17,
    "x" * 31, "x" * 32, "x" * 33, "x" * 63, "x" * 64, "x" * 65, "x" * 1000, "\u00e9" * 64,
    "crowding", "start", "cam-0", "' OR 1=1 --", "<script>",
)  # fmt: skip
KEYS = ("i", "t", "p", "c", "z", "r", "ts", "st", "v", "u", "s", "b", "l", "g", "k", "w", "m", "n")
KINDS = (
    ("valid", 10), ("field", 25), ("bytes", 15), ("envelope", 15), ("frames", 8),
    ("random", 10), ("heartbeat", 5), ("foreign", 7), ("huge", 0.01),
)  # fmt: skip


class Mutator:
    """Message generator: `next()` gives (kind, frames)."""

    def __init__(self, edge_id: str, seed: int, foreign_cameras: tuple[str, ...]) -> None:
        self.edge_id = edge_id
        self.rng = random.Random(seed)
        self.foreign = foreign_cameras
        self.seq = 0
        self._kinds = [k for k, _ in KINDS]
        self._weights = [w for _, w in KINDS]

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _value(self) -> Any:
        r = self.rng
        pick = r.randrange(9)
        if pick == 0:
            return r.choice(INTERESTING_INTS)
        if pick == 1:
            return r.choice(INTERESTING_FLOATS)
        if pick == 2:
            return r.choice(INTERESTING_TEXTS)
        if pick == 3:
            return r.randbytes(r.choice((0, 1, 15, 16, 17, 64)))
        if pick == 4:
            return [r.choice(INTERESTING_INTS) for _ in range(r.choice((0, 3, 4, 5)))]
        if pick == 5:
            return [[r.randint(-5, 5000) for _ in range(4)]] * r.choice((1, 64, 65))
        if pick == 6:
            return {"x": 1} if r.random() < 0.5 else [[[[]]]]
        if pick == 7:
            return r.choice((None, True, False))
        return "".join(chr(r.randrange(0, 0x3000)) for _ in range(r.randint(1, 40)))

    def _payload(self, camera: str) -> bytes:
        return raw_event(c=camera, p=self.rng.randrange(3), ts=self.rng.uniform(0, 2e9))

    def _mutated_fields(self) -> bytes:
        body = msgpack.unpackb(self._payload(f"fz-{self.rng.randrange(10)}"))
        for _ in range(self.rng.choice((1, 1, 1, 2, 3))):
            action = self.rng.randrange(10)
            if action == 0:
                body.pop(self.rng.choice(KEYS), None)
            elif action == 1:
                body[self.rng.choice(("edge", "x", "\x00", "camera"))] = self._value()
            else:
                body[self.rng.choice(KEYS)] = self._value()
        try:
            out: bytes = msgpack.packb(body, use_bin_type=True)
        except (ValueError, TypeError, OverflowError):  # a value msgpack cannot pack
            out = self._payload("fz-0")
        return out

    def _mutated_bytes(self) -> bytes:
        b = bytearray(self._payload(f"fz-{self.rng.randrange(10)}"))
        for _ in range(self.rng.randint(1, 4)):
            if not b:
                break
            at = self.rng.randrange(len(b))
            op = self.rng.randrange(4)
            if op == 0:
                b[at] ^= 1 << self.rng.randrange(8)
            elif op == 1:
                del b[at:]
            elif op == 2:
                b[at:at] = self.rng.randbytes(self.rng.randint(1, 8))
            else:
                b[at] = self.rng.choice((0x00, 0xC1, 0xDD, 0xDF, 0xCF, 0xFF, 0xA5))
        return bytes(b)

    def _envelope(self) -> list[bytes]:
        parts = wire.frames(wire.KIND_EVENT, self.edge_id, self._next_seq(), self._payload("fz-1"))
        r = self.rng
        at = r.randrange(5)
        if at == 4:  # sequence frame: boundary numbers and wrong lengths
            n = r.choice(INTERESTING_INTS)
            parts[4] = (n % 2**64).to_bytes(8, "big") if r.random() < 0.8 else r.randbytes(7)
        elif at == 3:  # edge id: another edge, empty, NUL, long, not UTF-8
            parts[3] = r.choice((b"box-a", b"", b"e\x00", b"e" * 65, b"\xff\xfe", b"good"))
        else:
            parts[at] = r.choice((b"", b"SW", b"\x01", b"\x02", b"E", b"A", b"N", b"Z", b"HH"))
        return parts

    def next(self) -> tuple[str, list[bytes]]:
        r = self.rng
        kind = r.choices(self._kinds, self._weights)[0]
        seq = self._next_seq()
        if kind == "valid":
            return kind, wire.frames(wire.KIND_EVENT, self.edge_id, seq, self._payload("fz-2"))
        if kind == "field":
            return kind, wire.frames(wire.KIND_EVENT, self.edge_id, seq, self._mutated_fields())
        if kind == "bytes":
            return kind, wire.frames(wire.KIND_EVENT, self.edge_id, seq, self._mutated_bytes())
        if kind == "envelope":
            return kind, self._envelope()
        if kind == "frames":
            parts = wire.frames(wire.KIND_EVENT, self.edge_id, seq, self._payload("fz-3"))
            n = r.choice((0, 1, 5, 7, 8, 64, 500))
            parts = (parts * (n // 6 + 1))[:n] if n else [b""]
            return kind, parts
        if kind == "random":
            return kind, [r.randbytes(r.randint(0, 64)) for _ in range(r.randint(1, 9))]
        if kind == "heartbeat":
            body = r.choice((b"", msgpack.packb({"depth": self._value()}), r.randbytes(9)))
            return kind, wire.frames(wire.KIND_HEARTBEAT, self.edge_id, 0, body)
        if kind == "foreign":
            camera = r.choice(self.foreign) if self.foreign else "cam-0"
            return kind, wire.frames(wire.KIND_EVENT, self.edge_id, seq, self._payload(camera))
        # huge: a frame over the largest legal one (16 KiB); the transport drops the peer
        size = r.choice((wire.MAX_PAYLOAD_BYTES + 1, 60_000, 1_000_000))
        return kind, wire.frames(wire.KIND_EVENT, self.edge_id, seq, b"x" * size)


def edge_socket(keys: Path, edge_id: str, endpoint: str) -> zmq.Socket[bytes]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.curve_publickey, s.curve_secretkey = load_pair(keys / f"{edge_id}.key_secret")
    s.curve_serverkey = load_public(keys / "aggregator.key")
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDTIMEO, 30_000)
    s.connect(endpoint)
    return s


class _Client:
    """The fuzzer's connection and what came back on it. A send that waits more than
    SEND_TIMEOUT_MS (the connection is stuck) opens a new socket, as the edge publisher
    renews its socket when the aggregator goes quiet; such stalls are counted."""

    SEND_TIMEOUT_MS = 5000

    def __init__(self, keys: Path, edge_id: str, endpoint: str) -> None:
        self.args = (keys, edge_id, endpoint)
        self.replies: Counter[str] = Counter()
        self.acked: list[int] = []
        self.disconnects = 0
        self.stalls = 0
        self._open()

    def _open(self) -> None:
        self.sock = edge_socket(*self.args)
        self.sock.setsockopt(zmq.SNDTIMEO, self.SEND_TIMEOUT_MS)
        self.monitor = self.sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)

    def close(self) -> None:
        self.monitor.close(0)
        self.sock.close(0)

    def send(self, parts: list[bytes]) -> None:
        try:
            self.sock.send_multipart(parts)
        except zmq.Again:
            self.stalls += 1
            self.close()
            self._open()
        self.drain(0)
        while self.monitor.poll(0):
            self.disconnects += (
                recv_monitor_message(self.monitor)["event"] == zmq.EVENT_DISCONNECTED
            )

    def drain(self, wait_ms: int) -> None:
        while self.sock.poll(wait_ms):
            wait_ms = 0
            env = wire.parse(self.sock.recv_multipart())
            self.replies[env.kind.decode()] += 1
            if env.kind == wire.KIND_ACK:
                self.acked.append(env.seq)


def fuzz(
    keys: Path, edge_id: str, endpoint: str, count: int, seconds: float, seed: int, out: Any
) -> None:
    """Child process: send `count` fuzzed messages (or for `seconds`), reading every reply.
    Puts a dict of figures on out: sent by kind, replies by kind, acked seqs, disconnects,
    stalls and the error that stopped it, if any."""
    client = _Client(keys, edge_id, endpoint)
    mutator = Mutator(edge_id, seed, ("cam-0", "cam-1", "probe-cam"))
    sent: Counter[str] = Counter()
    error = ""
    deadline = time.monotonic() + seconds
    try:
        while sum(sent.values()) < count and time.monotonic() < deadline:
            kind, parts = mutator.next()
            client.send(parts)
            sent[kind] += 1
        client.drain(2000)  # the last replies
    except Exception as exc:  # reported, not raised: the parent waits for this report
        error = f"{type(exc).__name__}: {exc}"
    out.put(
        {
            "sent": dict(sent),
            "replies": dict(client.replies),
            "acked": client.acked,
            "disconnects": client.disconnects,
            "stalls": client.stalls,
            "error": error,
        }
    )
    client.close()


def start_fuzzer(
    keys: Path, edge_id: str, endpoint: str, count: int, seconds: float, seed: int
) -> tuple[mp.process.BaseProcess, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    p = ctx.Process(target=fuzz, args=(keys, edge_id, endpoint, count, seconds, seed, out))
    p.start()
    return p, out
