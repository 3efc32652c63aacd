"""Verification by camera through a real IngestServer on SQLite and PostgreSQL, with real
CurveZMQ DEALERs as the edges and the API on the same database: a request asked through the
API goes out (V) on the heartbeat connection of the edge the camera is bound to, and only to
it; it is asked again while unanswered; a malformed verdict and one from another edge change
nothing; the owner's verdict (W) is written to the case's verification."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from aggregator.api.deps import Services
from aggregator.cameras import CameraBindings
from aggregator.core.config import IngestConfig, MediaConfig
from aggregator.db.engine import make_engine, migrate
from aggregator.db.models import CASES
from aggregator.edges import EdgeRegistry
from aggregator.fleet.verify import RESEND_S
from aggregator.ingest import IngestServer
from aggregator.main import create_app
from aggregator.media import MediaStore
from aggregator.store import EventStore
from contract import fleet, verify, wire
from contract.keys import generate, load_pair, load_public
from tests.apihelpers import login
from tests.deploy import database, free_port

# Slow: it waits out the 3 s resend of an unanswered request on real sockets, twice.
pytestmark = pytest.mark.slow


@dataclass
class Rig:
    engine: Engine
    server: IngestServer
    operator: TestClient
    keys: Path
    endpoint: str

    def edge(self, name: str) -> zmq.Socket[bytes]:
        public, _ = generate(self.keys, name)
        key = load_public(public).decode()
        EdgeRegistry(self.engine).add(name, key)
        _wait(lambda: self.server.registry.edge_for_key(key) == name, f"{name} allowed")
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        s = ctx.socket(zmq.DEALER)
        s.curve_publickey, s.curve_secretkey = load_pair(self.keys / f"{name}.key_secret")
        s.curve_serverkey = load_public(self.keys / "aggregator.key")
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDTIMEO, 5000)
        s.connect(self.endpoint)
        return s


def _wait(ok: Callable[[], Any], what: str, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if got := ok():
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(params=["sqlite", "postgresql"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    with database(str(request.param), tmp_path) as url:
        migrate(url)
        engine = make_engine(url)
        keys = tmp_path / "keys"
        generate(keys, "aggregator")
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        cfg = IngestConfig(bind=endpoint, server_secret_key=keys / "aggregator.key_secret")
        server = IngestServer(cfg, EventStore(engine), EdgeRegistry(engine))
        server.start()
        assert server.ready.wait(10)
        services = Services(
            engine, EdgeRegistry(engine), None, MediaStore(MediaConfig(dir=tmp_path / "m"), engine)
        )
        services.accounts.add_user("operator", "operator-password", "operator")
        client = TestClient(create_app(services))
        client.headers["Authorization"] = f"Bearer {login(client, 'operator')}"
        try:
            yield Rig(engine, server, client, keys, endpoint)
        finally:
            server.stop()
            server.join(5)
            engine.dispose()


def _camera_case(engine: Engine) -> int:
    now = time.time()
    with engine.begin() as conn:
        inserted = conn.execute(
            CASES.insert().values(
                camera="cam-1",
                zone="kerb",
                type="illegal_parking",
                category="street order / illegal parking",
                department="traffic enforcement",
                priority="normal",
                status="resolved",
                deadline_at=now + 3600,
                created_at=now,
                updated_at=now,
                source="camera",
            )
        ).inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


_HB = fleet.encode_heartbeat(
    fleet.Heartbeat(cameras=(fleet.CameraStatus("cam-1", "online", 2.0),), source="central")
)


def _beat(socks: dict[str, zmq.Socket[bytes]], seconds: float) -> dict[str, list[wire.Envelope]]:
    """Heartbeats from every edge every 0.2 s for ``seconds``; what each received but H."""
    got: dict[str, list[wire.Envelope]] = {name: [] for name in socks}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, s in socks.items():
            s.send_multipart(wire.frames(wire.KIND_HEARTBEAT, name, 0, _HB))
        end = time.monotonic() + 0.2
        while (left := end - time.monotonic()) > 0:
            for name, s in socks.items():
                while s.poll(0):
                    env = wire.parse(s.recv_multipart())
                    if env.kind != wire.KIND_HEARTBEAT:
                        got[name].append(env)
            time.sleep(min(left, 0.02))
    return got


def _verdict(rig: Rig, case_id: int) -> dict[str, Any]:
    items: list[dict[str, Any]] = rig.operator.get(f"/api/v1/cases/{case_id}/verifications").json()[
        "items"
    ]
    return items[0]


def test_the_camera_owner_is_asked_and_its_verdict_is_recorded(rig: Rig) -> None:
    owner, other = rig.edge("box-1"), rig.edge("box-2")
    CameraBindings(rig.engine).bind("cam-1", "box-1")
    case_id = _camera_case(rig.engine)
    r = rig.operator.post(f"/api/v1/cases/{case_id}/verify", json={"look_s": 2})
    assert r.status_code == 202, r.text
    request_id = r.json()["request_id"]
    socks = {"box-1": owner, "box-2": other}

    # Asked on the owner's connection only; again after RESEND_S while unanswered.
    got = _beat(socks, RESEND_S + 2.5)
    assert got["box-2"] == []
    asked = [e for e in got["box-1"] if e.kind == wire.KIND_VERIFY]
    assert len(asked) >= 2, got
    request = verify.decode_request(asked[0].payload)
    assert request == verify.VerifyRequest(request_id, "cam-1", "kerb", "illegal_parking", 2.0)
    assert asked[0].seq == 0

    # A malformed verdict is counted; another edge's verdict is not taken.
    malformed = rig.server.stats.malformed
    owner.send_multipart(wire.frames(wire.KIND_VERDICT, "box-1", 0, b"\x81\xa1v\xa4gone"))
    seen = verify.VerifyAnswer(
        request_id, "cam-1", "still_present", frames=4, present_frames=4, peak=1.0, needed=1.0,
        rule="illegal_parking", mode="peacetime", looked_s=2.1, snapshot_id=str(uuid.uuid4()),
    )  # fmt: skip
    cleared = verify.VerifyAnswer(request_id, "cam-1", "cleared", frames=4)
    other.send_multipart(wire.frames(wire.KIND_VERDICT, "box-2", 0, verify.encode_answer(cleared)))
    _wait(lambda: rig.server.stats.malformed > malformed, "the malformed verdict counted")
    _beat(socks, 1.0)  # the desk writes what came in (the other edge's verdict: nothing)
    assert _verdict(rig, case_id)["verdict"] == "pending"

    owner.send_multipart(wire.frames(wire.KIND_VERDICT, "box-1", 0, verify.encode_answer(seen)))
    got = _wait(lambda: (v := _verdict(rig, case_id))["verdict"] != "pending" and v, "the verdict")
    assert (got["verdict"], got["snapshot_id"]) == ("still_present", seen.snapshot_id)
    assert (got["detail"]["edge"], got["detail"]["frames"]) == ("box-1", 4)
    # Answered: asked no more.
    later = _beat(socks, RESEND_S + 1.0)
    assert [e for e in later["box-1"] if e.kind == wire.KIND_VERIFY] == []
