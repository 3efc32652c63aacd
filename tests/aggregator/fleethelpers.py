"""The real aggregator app in-process for the fleet tests (issue 14), on a fresh SQLite or
PostgreSQL database, with one logged-in client per role; events stored as the ingest would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from aggregator.api.deps import Services
from aggregator.auth import ROLES
from aggregator.core.config import MediaConfig
from aggregator.db.engine import make_engine, migrate
from aggregator.edges import EdgeRegistry
from aggregator.main import create_app
from aggregator.media import MediaStore
from aggregator.store import EventStore, Received
from contract import wire
from tests.apihelpers import login
from tests.deploy import database

DB_KINDS = ["sqlite", "postgresql"]


@dataclass
class FleetApi:
    services: Services
    clients: dict[str, TestClient]
    _seq: dict[str, int] = field(default_factory=dict)

    @property
    def engine(self) -> Engine:
        return self.services.engine

    def event(self, edge_id: str = "box", **fields: Any) -> wire.WireEvent:
        """Store one start message as the ingest would; fields override the defaults."""
        seq = self._seq.get(edge_id, 0) + 1
        self._seq[edge_id] = seq
        values: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "type": "crowding",
            "phase": "start",
            "camera": "cam-1",
            "zone": "square",
            "rule": "crowding",
            "ts": 1000.0 + seq,
            "started_ts": 1000.0 + seq,
            "value": 6.0,
            "unit": "persons",
            "severity": "medium",
            "boxes": (),
            "labels": (),
            "stage": None,
            "peak": None,
            "created_wall": 0.0,
            **fields,
        }
        if "ts" not in fields:
            values["ts"] = values["started_ts"]
        ev = wire.WireEvent(**values)
        out = EventStore(self.engine).ingest([Received(edge_id, seq, ev)])
        assert out.new == 1, out.refused
        return ev


@contextmanager
def fleet_api(kind: str, root: Path) -> Iterator[FleetApi]:
    with database(kind, root) as url:
        migrate(url)
        engine = make_engine(url)
        try:
            media = MediaStore(MediaConfig(dir=root / "media"), engine)
            services = Services(engine, EdgeRegistry(engine), None, media)
            for role in ROLES:
                services.accounts.add_user(role, f"{role}-password", role)
            app = create_app(services)
            clients = {}
            for role in ROLES:
                client = TestClient(app)
                client.headers["Authorization"] = f"Bearer {login(client, role)}"
                clients[role] = client
            yield FleetApi(services, clients)
        finally:
            engine.dispose()


def camera_document(camera: str = "cam-1", min_count: int = 8) -> dict[str, Any]:
    """A valid central config: one zone over the whole picture with a crowding rule."""
    return {
        "id": camera,
        "name": "Market square",
        "zones": [
            {
                "name": "square",
                "units": "normalized",
                "polygon": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]],
                "rules": [{"preset": "crowding", "min_count": min_count}],
            }
        ],
    }
