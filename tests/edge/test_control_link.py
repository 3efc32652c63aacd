"""Fleet control over a real CurveZMQ connection: the publisher's heartbeats carry the box's
fleet status, a config push (C) reaches the detect stage's queue, its report (R) goes back
with the push's number, and a malformed push is counted and dropped.

``Router`` plays the aggregator's ingest here and in tests/system/test_worker_control.py."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq
from zmq.auth.thread import ThreadAuthenticator

from contract import fleet, wire
from contract.keys import generate, load_pair
from edge.config.edge_box import EdgeBoxConfig, load_edge_config
from edge.control.link import ControlLink
from edge.control.status import FleetStatus
from edge.delivery.publisher import Publisher
from tests.deploy import free_port


class Router:
    """A CurveZMQ ROUTER with a ZAP authenticator that lets in the public keys found in
    ``allowed``: it answers heartbeats and acks events like the ingest, keeps every decoded
    heartbeat and report, and sends config pushes to an edge over its last connection."""

    def __init__(self, keys: Path, allowed: Path, port: int) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.auth = ThreadAuthenticator(self.ctx)
        self.auth.start()
        self.auth.configure_curve(domain="*", location=str(allowed))
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.curve_server = True
        self.sock.curve_publickey, self.sock.curve_secretkey = load_pair(
            keys / "aggregator.key_secret"
        )
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(f"tcp://127.0.0.1:{port}")
        self.heartbeats: list[fleet.Heartbeat] = []
        self.reports: dict[int, fleet.ConfigReport] = {}
        self.events: list[wire.WireEvent] = []
        self._route: dict[str, bytes] = {}

    def pump(self, timeout_s: float) -> None:
        """Handle what arrives within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (left_ms := int((deadline - time.monotonic()) * 1000)) > 0:
            if not self.sock.poll(left_ms):
                return
            route, *parts = self.sock.recv_multipart()
            env = wire.parse(parts)
            self._route[env.edge_id] = route
            if env.kind == wire.KIND_HEARTBEAT:
                self.heartbeats.append(fleet.decode_heartbeat(env.payload))
                self.sock.send_multipart([route, *wire.frames(wire.KIND_HEARTBEAT, "agg", 0)])
            elif env.kind == wire.KIND_EVENT:
                self.events.append(wire.decode_event(env.payload))
                self.sock.send_multipart([route, *wire.frames(wire.KIND_ACK, "agg", env.seq)])
            elif env.kind == wire.KIND_REPORT:
                self.reports[env.seq] = fleet.decode_report(env.payload)

    def wait_heartbeat(
        self, ok: Callable[[fleet.Heartbeat], bool], timeout_s: float, what: str
    ) -> fleet.Heartbeat:
        deadline = time.monotonic() + timeout_s
        seen = len(self.heartbeats)
        while time.monotonic() < deadline:
            self.pump(0.2)
            for hb in self.heartbeats[seen:]:
                if ok(hb):
                    return hb
            seen = len(self.heartbeats)
        last = self.heartbeats[-1] if self.heartbeats else None
        raise AssertionError(f"no heartbeat with {what} in {timeout_s:.0f} s; last: {last}")

    def send(self, edge_id: str, seq: int, payload: bytes) -> None:
        route = self._route[edge_id]
        self.sock.send_multipart([route, *wire.frames(wire.KIND_CONFIG, "agg", seq, payload)])

    def push(self, edge_id: str, seq: int, push: fleet.ConfigPush) -> None:
        self.send(edge_id, seq, fleet.encode_push(push))

    def wait_report(self, seq: int, timeout_s: float) -> fleet.ConfigReport:
        deadline = time.monotonic() + timeout_s
        while seq not in self.reports and time.monotonic() < deadline:
            self.pump(0.2)
        if seq not in self.reports:
            raise AssertionError(f"no report on push {seq} in {timeout_s:.0f} s")
        return self.reports[seq]

    def close(self) -> None:
        self.sock.close(0)
        self.auth.stop()
        self.ctx.term()


def keys_for(root: Path, edge_id: str) -> tuple[Path, Path]:
    """The aggregator's and the edge's key pairs in root/keys; the edge's public key also
    in root/allowed, the folder the Router's authenticator reads."""
    keys, allowed = root / "keys", root / "allowed"
    generate(keys, "aggregator")
    generate(keys, edge_id)
    allowed.mkdir()
    shutil.copy(keys / f"{edge_id}.key", allowed / f"{edge_id}.key")
    return keys, allowed


def edge_config_text(edge_id: str, port: int) -> str:
    return (
        f"edge_id: {edge_id}\noutbox: {{path: outbox.sqlite3}}\n"
        f"aggregator:\n  endpoint: tcp://127.0.0.1:{port}\n"
        f"  server_public_key: keys/aggregator.key\n  secret_key: keys/{edge_id}.key_secret\n"
        "  heartbeat_s: 0.3\n"
    )


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[Router, EdgeBoxConfig, ControlLink, Publisher]]:
    port = free_port()
    keys, allowed = keys_for(tmp_path, "box-c")
    (tmp_path / "edge.yaml").write_text(edge_config_text("box-c", port))
    cfg = load_edge_config(tmp_path / "edge.yaml")
    router = Router(keys, allowed, port)
    wake = threading.Event()
    link = ControlLink(FleetStatus("central", ["cam-1"], lambda _c: "online"), wake)
    publisher = Publisher(cfg, control=link)
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield router, cfg, link, publisher
    finally:
        stop.set()
        thread.join(10)
        router.close()


def test_pushes_reach_the_stage_and_reports_go_back(
    wired: tuple[Router, EdgeBoxConfig, ControlLink, Publisher],
) -> None:
    router, cfg, link, publisher = wired
    link.status.applied("cam-1", fleet.Applied(2, "peacetime", 0))
    hb = router.wait_heartbeat(lambda h: bool(h.cameras), 10, "the camera")
    assert (hb.source, [c.camera for c in hb.cameras]) == ("central", ["cam-1"])
    assert hb.cameras[0].applied == fleet.Applied(2, "peacetime", 0)
    assert hb.depth == 0
    assert hb.software

    push = fleet.ConfigPush("cam-1", fleet.Applied(3, "emergency", 4), config={"id": "cam-1"})
    router.push(cfg.edge_id, 77, push)
    taken: list[tuple[int, fleet.ConfigPush]] = []
    deadline = time.monotonic() + 10
    while not taken and time.monotonic() < deadline:
        router.pump(0.1)
        taken = link.take()
    assert taken == [(77, push)]
    assert link._wake is not None
    assert link._wake.is_set()

    link.report(77, fleet.ConfigReport("cam-1", push.applied, ok=False, error="no good"))
    report = router.wait_report(77, 10)
    assert report == fleet.ConfigReport("cam-1", push.applied, ok=False, error="no good")
    assert (publisher.stats.pushes, publisher.stats.reports) == (1, 1)

    # The status the stage updates is what the next heartbeats say.
    link.status.applied("cam-1", push.applied)
    router.wait_heartbeat(
        lambda h: h.cameras[0].applied == push.applied, 10, "the applied emergency"
    )


def test_a_malformed_push_is_counted_and_dropped(
    wired: tuple[Router, EdgeBoxConfig, ControlLink, Publisher],
) -> None:
    router, cfg, link, publisher = wired
    router.wait_heartbeat(lambda h: True, 10, "anything")
    router.send(cfg.edge_id, 5, b"\x81\xa1c\x05")  # {"c": 5}: the camera is not text
    deadline = time.monotonic() + 10
    while publisher.stats.malformed_pushes == 0 and time.monotonic() < deadline:
        router.pump(0.1)
    assert publisher.stats.malformed_pushes == 1
    assert link.take() == []
    assert publisher.stats.pushes == 0
    # The link stays up: the next good push arrives.
    router.push(cfg.edge_id, 6, fleet.ConfigPush("cam-1", fleet.Applied()))
    deadline = time.monotonic() + 10
    taken: list[tuple[int, fleet.ConfigPush]] = []
    while not taken and time.monotonic() < deadline:
        router.pump(0.1)
        taken = link.take()
    assert [seq for seq, _ in taken] == [6]
