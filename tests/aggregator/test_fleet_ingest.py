"""The ingest side of fleet control, with a real IngestServer on SQLite and PostgreSQL and a
real CurveZMQ DEALER as the edge: heartbeats bring pushes of the desired state, reports are
recorded, retries wait push_retry_s, refusals are not pushed again, other edges' cameras and
local-config edges are respected, and the beacon writes what the edges said."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine, select

from aggregator.cameras import CameraBindings
from aggregator.core.config import IngestConfig
from aggregator.core.fleet_config import FleetConfig, ModesConfig
from aggregator.db.engine import make_engine, migrate
from aggregator.db.models import CAMERA_CONFIGS, CAMERAS, EDGES, FLEET_CAMERAS
from aggregator.edges import EdgeRegistry
from aggregator.fleet.desired import DesiredCache
from aggregator.fleet.inventory import FleetInbox, write_inventory
from aggregator.fleet.modes import ModeSwitches, desired_for
from aggregator.ingest import IngestServer
from aggregator.metrics import metrics_registry
from aggregator.replicas import Beacon
from aggregator.store import EventStore
from contract import fleet, wire
from contract.fleet import Applied, CameraStatus, ConfigPush, ConfigReport, Heartbeat
from contract.keys import generate, load_pair, load_public
from tests.deploy import database, free_port

# Slow: real CurveZMQ round trips that wait out pushes and resends of seconds.
pytestmark = pytest.mark.slow

RETRY_S = 1.0
MODES = ModesConfig()
DOC: dict[str, Any] = {"id": "cam-1", "name": "Camera one", "zones": []}
OLD = Applied(config_version=None, mode="peacetime", mode_rev=0)


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Rig:
    engine: Engine
    server: IngestServer
    beacon: Beacon
    keys: Path
    endpoint: str

    def edge(self, name: str) -> zmq.Socket[bytes]:
        """A registered edge's DEALER, connected."""
        public, _ = generate(self.keys, name)
        key = load_public(public).decode()
        EdgeRegistry(self.engine).add(name, key)
        # Connect once the server's allowlist has it: a refused handshake is not retried.
        _wait(lambda: self.server.registry.edge_for_key(key) == name, f"{name} allowed")
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        s = ctx.socket(zmq.DEALER)
        s.curve_publickey, s.curve_secretkey = load_pair(self.keys / f"{name}.key_secret")
        s.curve_serverkey = load_public(self.keys / "aggregator.key")
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDTIMEO, 5000)
        s.connect(self.endpoint)
        return s


@pytest.fixture
def rig(kind: str, tmp_path: Path) -> Iterator[Rig]:
    with database(kind, tmp_path) as url:
        migrate(url)
        engine = make_engine(url)
        keys = tmp_path / "keys"
        generate(keys, "aggregator")
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        cfg = IngestConfig(
            bind=endpoint, server_secret_key=keys / "aggregator.key_secret", batch_ms=5
        )
        fleet_cfg = FleetConfig(push_retry_s=RETRY_S, desired_refresh_s=0.1)
        server = IngestServer(
            cfg, EventStore(engine), EdgeRegistry(engine), fleet_cfg=fleet_cfg, modes=MODES
        )
        server.start()
        assert server.ready.wait(10)
        assert server.error is None
        # Not started: each test writes with beat() when it wants the rows.
        beacon = Beacon(
            engine,
            "test/ingest",
            "ingest",
            endpoint,
            dict,
            lambda: dict(server.snapshot()["edges"]),
            server.fleet.inbox,
        )
        try:
            yield Rig(engine, server, beacon, keys, endpoint)
        finally:
            server.stop()
            server.join(5)
            engine.dispose()


def _hb(*cams: tuple[str, Applied], source: Any = "central", error: str | None = None) -> bytes:
    return fleet.encode_heartbeat(
        Heartbeat(
            depth=3,
            software="1.4.2",
            source=source,
            cameras=tuple(
                CameraStatus(c, "online", 4.5, a, last_event_wall=1234.5, error=error)
                for c, a in cams
            ),
        )
    )


def _collect(sock: zmq.Socket[bytes], seconds: float) -> list[wire.Envelope]:
    out = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if sock.poll(max(1, int(left * 1000))):
            out.append(wire.parse(sock.recv_multipart()))
    return out


def _pushes(envs: list[wire.Envelope]) -> list[tuple[int, ConfigPush]]:
    return [(e.seq, fleet.decode_push(e.payload)) for e in envs if e.kind == wire.KIND_CONFIG]


def _beat_until_push(
    sock: zmq.Socket[bytes], edge: str, hb: bytes, timeout_s: float = 10.0
) -> tuple[int, ConfigPush, float]:
    """Heartbeat every 0.1 s until a C comes: its seq, push and monotonic arrival time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.send_multipart(wire.frames(wire.KIND_HEARTBEAT, edge, 0, hb))
        got = _pushes(_collect(sock, 0.1))
        if got:
            return (*got[0], time.monotonic())
    raise AssertionError(f"no config push to {edge} within {timeout_s} s")


def _beat_for(sock: zmq.Socket[bytes], edge: str, hb: bytes, seconds: float) -> list[Any]:
    """Heartbeat every 0.1 s for seconds: the pushes got, and whether every H was answered."""
    envs: list[wire.Envelope] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.send_multipart(wire.frames(wire.KIND_HEARTBEAT, edge, 0, hb))
        envs += _collect(sock, 0.1)
    assert any(e.kind == wire.KIND_HEARTBEAT for e in envs), "heartbeats went unanswered"
    return _pushes(envs)


def _report(sock: zmq.Socket[bytes], edge: str, seq: int, report: ConfigReport) -> None:
    sock.send_multipart(wire.frames(wire.KIND_REPORT, edge, seq, fleet.encode_report(report)))


def _save_config(engine: Engine, camera: str, version: int, doc: dict[str, Any]) -> None:
    text = json.dumps(doc, sort_keys=True)
    with engine.begin() as conn:
        conn.execute(
            CAMERA_CONFIGS.insert().values(
                camera_id=camera,
                version=version,
                document=doc,
                sha256=hashlib.sha256(text.encode()).hexdigest(),
                author="test",
                reason="test",
                created_at=time.time(),
            )
        )


def _switch(engine: Engine, mode: str, scope: str = "city") -> int:
    return ModeSwitches(engine, MODES).switch(mode, scope, "test", "test").id


def _fleet_row(engine: Engine, edge: str, camera: str) -> dict[str, Any]:
    c = FLEET_CAMERAS.c
    with engine.connect() as conn:
        row = conn.execute(
            select(FLEET_CAMERAS).where(c.edge_id == edge, c.camera_id == camera)
        ).first()
    assert row is not None, f"no fleet_cameras row for {edge}/{camera}"
    return dict(row._mapping)


def _wait(cond: Any, what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_camera_behind_gets_its_state_and_the_report_is_recorded(rig: Rig) -> None:
    _save_config(rig.engine, "cam-1", 1, DOC)
    rev = _switch(rig.engine, "emergency")
    sock = rig.edge("box-a")
    seq, push, _ = _beat_until_push(sock, "box-a", _hb(("cam-1", OLD)))
    want = Applied(config_version=1, mode="emergency", mode_rev=rev)
    assert (push.camera, push.applied, push.drill, push.config) == ("cam-1", want, False, DOC)
    emergency = MODES.definitions["emergency"]
    assert push.overrides.tags == ("emergency",)
    assert push.overrides.rules == emergency.rules
    before = time.time()
    _report(sock, "box-a", seq, ConfigReport("cam-1", want, ok=True))
    _wait(lambda: rig.server.stats.reports_ok == 1, "the report")
    after = time.time()
    rig.beacon.beat()
    row = _fleet_row(rig.engine, "box-a", "cam-1")
    assert (row["config_version"], row["mode"], row["mode_rev"]) == (1, "emergency", rev)
    assert before <= row["applied_at"] <= after
    assert row["error"] is None
    # In sync now: nothing more is pushed.
    assert _beat_for(sock, "box-a", _hb(("cam-1", want)), RETRY_S + 0.3) == []
    rig.beacon.beat()
    assert _fleet_row(rig.engine, "box-a", "cam-1")["applied_at"] == row["applied_at"]
    assert rig.server.stats.pushes_sent == 1
    assert _push_metrics(rig) == {"pushed": 1, "applied": 1, "refused": 0}
    sock.close(0)


def _push_metrics(rig: Rig) -> dict[str, float]:
    text = generate_latest(metrics_registry(rig.server, rig.engine)).decode()
    return {
        s.labels["outcome"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "streetwatch_ingest_config_pushes_total"
    }


def test_a_push_is_repeated_only_after_push_retry_s(rig: Rig) -> None:
    rev = _switch(rig.engine, "alert")
    sock = rig.edge("box-a")
    hb = _hb(("cam-1", OLD))
    _, first, sent_at = _beat_until_push(sock, "box-a", hb)
    assert first.applied == Applied(None, "alert", rev)
    assert _beat_for(sock, "box-a", hb, RETRY_S * 0.6) == []
    _, again, again_at = _beat_until_push(sock, "box-a", hb)
    assert again == first
    assert again_at - sent_at >= RETRY_S - 0.15  # the first arrival was up to 0.1 s late
    sock.close(0)


def test_a_refused_state_is_not_pushed_again_but_a_newer_one_is(rig: Rig) -> None:
    _save_config(rig.engine, "cam-1", 1, DOC)
    sock = rig.edge("box-a")
    hb = _hb(("cam-1", OLD))
    seq, push, _ = _beat_until_push(sock, "box-a", hb)
    assert push.applied == Applied(1, "peacetime", 0)
    error = "zones[0].rules[0].classes: 'unicorn' is not a class of model yolox_nano"
    _report(sock, "box-a", seq, ConfigReport("cam-1", push.applied, ok=False, error=error))
    _wait(lambda: rig.server.stats.reports_refused == 1, "the refusal")
    assert _beat_for(sock, "box-a", hb, RETRY_S * 2) == []
    rig.beacon.beat()
    row = _fleet_row(rig.engine, "box-a", "cam-1")
    assert (row["failed_config_version"], row["failed_mode_rev"], row["error"]) == (1, 0, error)
    assert row["config_version"] is None  # it still runs what it ran
    # Every replica knows now: the desired cache reads the refusal back.
    _wait(
        lambda: rig.server.fleet.desired.outlook().refused.get(("box-a", "cam-1")) == (1, 0), "it"
    )
    _save_config(rig.engine, "cam-1", 2, {**DOC, "name": "fixed"})
    _, newer, _ = _beat_until_push(sock, "box-a", hb)
    assert newer.applied == Applied(2, "peacetime", 0)
    assert newer.config == {**DOC, "name": "fixed"}
    sock.close(0)


def test_a_camera_bound_to_another_edge_gets_no_push(rig: Rig) -> None:
    _save_config(rig.engine, "cam-1", 1, DOC)
    _save_config(rig.engine, "cam-2", 1, {**DOC, "id": "cam-2"})
    a, b = rig.edge("box-a"), rig.edge("box-b")
    CameraBindings(rig.engine).bind("cam-1", "box-b")
    hb = _hb(("cam-1", OLD), ("cam-2", OLD))
    _, push, _ = _beat_until_push(a, "box-a", hb)
    assert push.camera == "cam-2"
    assert all(p.camera == "cam-2" for _, p in _beat_for(a, "box-a", hb, RETRY_S * 1.5))
    # Its own edge gets it.
    _, push, _ = _beat_until_push(b, "box-b", _hb(("cam-1", OLD)))
    assert (push.camera, push.config) == ("cam-1", DOC)
    a.close(0)
    b.close(0)


def test_an_edge_on_local_configs_gets_the_mode_without_a_config(rig: Rig) -> None:
    _save_config(rig.engine, "cam-1", 1, DOC)
    rev = _switch(rig.engine, "drill")
    sock = rig.edge("box-a")
    _, push, _ = _beat_until_push(sock, "box-a", _hb(("cam-1", OLD), source="local"))
    assert push.config is None
    assert (push.applied, push.drill) == (Applied(None, "drill", rev), True)
    assert push.overrides.tags == ("drill", "emergency")
    sock.close(0)


def test_malformed_reports_and_pushes_from_an_edge_are_counted_and_dropped(rig: Rig) -> None:
    _switch(rig.engine, "alert")
    sock = rig.edge("box-a")
    bad = [
        wire.frames(wire.KIND_REPORT, "box-a", 1, b"\xc1garbage"),
        wire.frames(wire.KIND_REPORT, "box-a", 2, b"\x81\xa1x\x01"),  # {"x": 1}
        wire.frames(wire.KIND_CONFIG, "box-a", 3, b""),  # pushes go the other way
    ]
    for frames in bad:
        sock.send_multipart(frames)
    _wait(lambda: rig.server.stats.malformed == 3, "three malformed messages")
    # The loop goes on: heartbeats are answered and pushes still go out.
    _, push, _ = _beat_until_push(sock, "box-a", _hb(("cam-1", OLD)))
    assert push.applied.mode == "alert"
    assert rig.server.is_alive()
    assert rig.server.stats.malformed == 3
    sock.close(0)


def test_the_beacon_writes_software_source_and_cameras(rig: Rig) -> None:
    sock = rig.edge("box-a")
    applied = Applied(config_version=None, mode="peacetime", mode_rev=0)
    hb = _hb(("cam-1", applied), ("cam-2", applied), source="local", error="bad zone")
    _beat_for(sock, "box-a", hb, 0.3)
    rig.beacon.beat()
    with rig.engine.connect() as conn:
        edge = conn.execute(select(EDGES).where(EDGES.c.edge_id == "box-a")).one()
        rows = conn.execute(select(FLEET_CAMERAS).order_by(FLEET_CAMERAS.c.camera_id)).all()
    assert (edge.software, edge.config_source, edge.outbox_depth) == ("1.4.2", "local", 3)
    assert [r.camera_id for r in rows] == ["cam-1", "cam-2"]
    for r in rows:
        assert (r.edge_id, r.state, r.fps, r.mode, r.mode_rev) == (
            "box-a",
            "online",
            4.5,
            "peacetime",
            0,
        )
        assert (r.last_event_wall, r.error) == (1234.5, "bad zone")
        assert r.reported_at > 0
    # A later heartbeat moves the rows forward; a camera gone from it keeps its last row.
    later = fleet.encode_heartbeat(
        Heartbeat(
            depth=0,
            software="1.5.0",
            source="central",
            cameras=(CameraStatus("cam-1", "offline", 0.0, applied),),
        )
    )
    _beat_for(sock, "box-a", later, 0.3)
    rig.beacon.beat()
    assert _fleet_row(rig.engine, "box-a", "cam-1")["state"] == "offline"
    assert _fleet_row(rig.engine, "box-a", "cam-2")["state"] == "online"
    with rig.engine.connect() as conn:
        edge = conn.execute(select(EDGES).where(EDGES.c.edge_id == "box-a")).one()
    assert (edge.software, edge.config_source) == ("1.5.0", "central")
    sock.close(0)


def test_the_desired_cache_agrees_with_desired_for_and_survives_a_lost_database(
    rig: Rig,
) -> None:
    engine = rig.engine
    with engine.begin() as conn:
        conn.execute(
            CAMERAS.insert(),
            [
                {"camera_id": "cam-g", "camera_group": "river", "grid_cell": "c1"},
                {"camera_id": "cam-a", "camera_group": "", "grid_cell": "c2"},
            ],
        )
    for camera, versions in {"cam-g": 3, "cam-a": 1, "cam-x": 2}.items():
        for v in range(1, versions + 1):
            _save_config(engine, camera, v, {**DOC, "id": camera, "name": f"v{v}"})
    _switch(engine, "alert")
    _switch(engine, "emergency", "area:c2")
    _switch(engine, "drill", "group:river")
    _switch(engine, "peacetime", "camera:cam-x")
    now = time.time()
    cache = DesiredCache(engine, MODES, 0.1, clock=lambda: now)
    cameras = frozenset({"cam-g", "cam-a", "cam-x", "cam-none"})
    cache.watch("box-a", cameras)
    assert cache.refresh()
    with engine.connect() as conn:
        assert cache.outlook().desired == desired_for(conn, cameras, MODES, now)
    modes = {c: d.mode for c, d in cache.outlook().desired.items()}
    assert modes == {
        "cam-g": "drill",
        "cam-a": "emergency",
        "cam-x": "peacetime",
        "cam-none": "alert",
    }
    seen = cache.outlook()
    # The database goes away: the last outlook stays.
    cache.engine = create_engine("sqlite:////nonexistent/streetwatch.sqlite3")
    assert not cache.refresh()
    assert cache.outlook() is seen
    cache.engine = engine
    assert cache.refresh()


def _write(engine: Engine, inbox: FleetInbox) -> None:
    with engine.begin() as conn:
        write_inventory(conn, *inbox.take())


def test_inventory_rows_only_move_forward(rig: Rig) -> None:
    engine, inbox = rig.engine, FleetInbox()
    old, new = Applied(None, "peacetime", 0), Applied(4, "alert", 9)
    status = CameraStatus("cam-1", "online", 5.0, new)
    # An ok report and a later heartbeat that shows its state, in one write: the report's
    # time is when the state was applied.
    inbox.report("box-a", ConfigReport("cam-1", new, ok=True), 10.0)
    inbox.heartbeat("box-a", Heartbeat(cameras=(status,)), 12.0)
    _write(engine, inbox)
    row = _fleet_row(engine, "box-a", "cam-1")
    assert (row["config_version"], row["mode_rev"], row["applied_at"], row["reported_at"]) == (
        4,
        9,
        10.0,
        12.0,
    )
    # An older heartbeat (another replica heard the edge earlier) changes nothing.
    stale = CameraStatus("cam-1", "offline", 0.0, old)
    inbox.heartbeat("box-a", Heartbeat(cameras=(stale,)), 11.0)
    _write(engine, inbox)
    assert _fleet_row(engine, "box-a", "cam-1") == row
    # An ok report older than the heartbeat that shows another state changes nothing either.
    inbox.report("box-a", ConfigReport("cam-1", Applied(5, "alert", 9), ok=True), 11.5)
    _write(engine, inbox)
    assert _fleet_row(engine, "box-a", "cam-1") == row
    # A refusal is kept beside what the camera runs; the next heartbeat leaves it.
    inbox.report("box-a", ConfigReport("cam-1", Applied(6, "alert", 9), ok=False, error="no"), 13.0)
    inbox.heartbeat("box-a", Heartbeat(cameras=(status,)), 14.0)
    _write(engine, inbox)
    row = _fleet_row(engine, "box-a", "cam-1")
    assert (row["config_version"], row["failed_config_version"], row["failed_mode_rev"]) == (
        4,
        6,
        9,
    )
    assert (row["applied_at"], row["reported_at"]) == (10.0, 14.0)
    # A state change seen in a heartbeat alone (the box restarted from its last good config)
    # is dated by that heartbeat.
    inbox.heartbeat("box-a", Heartbeat(cameras=(CameraStatus("cam-1", "online", 5.0, old),)), 15.0)
    _write(engine, inbox)
    assert _fleet_row(engine, "box-a", "cam-1")["applied_at"] == 15.0


def test_inventory_survives_odd_reports_and_numbers(rig: Rig) -> None:
    engine, inbox = rig.engine, FleetInbox()
    # A refusal before any heartbeat named the camera: a row the first heartbeat takes over.
    inbox.report("box-a", ConfigReport("cam-2", Applied(3, "alert", 2), ok=False, error="x"), 5.0)
    _write(engine, inbox)
    assert _fleet_row(engine, "box-a", "cam-2")["state"] == "starting"
    live = CameraStatus("cam-2", "online", 2.0, Applied(None, "peacetime", 0))
    # A camera whose numbers do not fit the columns is skipped, not the whole write.
    huge = CameraStatus("cam-3", "online", 2.0, Applied(2**40, "alert", 1))
    inbox.heartbeat("box-a", Heartbeat(cameras=(live, huge)), 6.0)
    _write(engine, inbox)
    row = _fleet_row(engine, "box-a", "cam-2")
    assert (row["state"], row["failed_config_version"], row["applied_at"]) == ("online", 3, 6.0)
    with engine.connect() as conn:
        assert (
            conn.execute(select(FLEET_CAMERAS).where(FLEET_CAMERAS.c.camera_id == "cam-3")).first()
            is None
        )
    # A failed write gives everything back to the inbox; what came in since is newer and wins.
    inbox.heartbeat("box-a", Heartbeat(cameras=(live,)), 8.0)
    inbox.report("box-a", ConfigReport("cam-2", Applied(4, "alert", 2), ok=True), 8.0)
    taken = inbox.take()
    assert inbox.take() == ({}, {})
    inbox.heartbeat("box-a", Heartbeat(cameras=(live,)), 9.0)
    inbox.put_back(*taken)
    heartbeats, reports = inbox.take()
    assert heartbeats["box-a"][1] == 9.0
    assert reports[("box-a", "cam-2")].applied == Applied(4, "alert", 2)
