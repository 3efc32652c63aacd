"""The real aggregator app in-process on a fresh database, with edges that upload
evidence over HTTP with their tokens and a supervisor who reviews and reads the ingest status."""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import zmq
from fastapi.testclient import TestClient
from sqlalchemy import select

from aggregator.api.deps import Services
from aggregator.core.config import MediaConfig
from aggregator.db.engine import make_engine, migrate
from aggregator.db.models import MEDIA
from aggregator.edges import EdgeRegistry
from aggregator.main import create_app
from aggregator.media import MediaStore
from aggregator.store import EventStore, Received
from contract import wire
from edge.tools.loadgen import message

KB4 = 4000


class World:
    """The real app on a fresh database (SQLite in tmp unless url names another): edges
    with upload tokens, a supervisor."""

    def __init__(self, tmp: Path, url: str | None = None, **media: object) -> None:
        url = url or f"sqlite:///{tmp / 'a.sqlite3'}"
        migrate(url)
        self.engine = make_engine(url)
        self.media = MediaStore(MediaConfig(dir=tmp / "media", **media), self.engine)  # type: ignore[arg-type]
        self.services = Services(self.engine, EdgeRegistry(self.engine), None, self.media)
        self.services.accounts.add_user("olga", "supervisor-password", "supervisor")
        self.client = TestClient(create_app(self.services))
        r = self.client.post(
            "/api/v1/auth/login", json={"username": "olga", "password": "supervisor-password"}
        )
        self.session = {"Authorization": f"Bearer {r.json()['token']}"}
        self.tokens: dict[str, str] = {}
        self.events = EventStore(self.engine)
        self._seq: dict[str, int] = {}

    def edge(self, edge_id: str) -> None:
        self.services.registry.add(edge_id, zmq.curve_keypair()[0].decode())
        self.tokens[edge_id] = self.services.registry.new_token(edge_id)

    def event(self, edge_id: str, mode: str = "peacetime") -> str:
        """A new event from edge_id (raised in ``mode``), stored as the ingest would."""
        seq = self._seq.get(edge_id, 0)
        self._seq[edge_id] = seq + 1
        ev = replace(wire.decode_event(message(edge_id, 3 * seq)[0]), mode=mode)
        self.events.ingest([Received(edge_id, seq + 1, ev)])
        return ev.event_id

    def upload(
        self, edge_id: str, event_id: str, size: int, media_id: str | None = None
    ) -> httpx.Response:
        body = b"\xff\xd8\xff\xe0" + os.urandom(size - 4)
        return self.client.put(
            f"/api/v1/media/{media_id or uuid.uuid4()}",
            content=body,
            headers={
                "Authorization": f"Bearer {self.tokens[edge_id]}",
                "Content-Type": "image/jpeg",
                "X-Event-Id": event_id,
                "X-Media-Kind": "snapshot",
                "X-Content-SHA256": hashlib.sha256(body).hexdigest(),
            },
        )

    def stored(self, edge_id: str, event_id: str, size: int) -> str:
        r = self.upload(edge_id, event_id, size)
        assert r.status_code == 201, r.text
        return str(r.json()["media_id"])

    def review(self, event_id: str, action: str) -> None:
        body = {"reason": "false_positive"} if action == "dismiss" else {}
        r = self.client.post(f"/api/v1/events/{event_id}/{action}", json=body, headers=self.session)
        assert r.status_code == 200, r.text

    def present(self, media_id: str) -> bool:
        return self.media.present(uuid.UUID(media_id))

    def total(self) -> int:
        with self.engine.connect() as conn:
            return sum(conn.execute(select(MEDIA.c.size)).scalars())
