"""Evidence storage on its own: retention order and the 'clip pending' state."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import update

from aggregator.api.deps import Services
from aggregator.core.config import MediaConfig
from aggregator.db.engine import make_engine, migrate
from aggregator.db.models import EVENTS, MEDIA
from aggregator.edges import EdgeRegistry
from aggregator.main import create_app
from aggregator.media import MediaStore, Upload
from aggregator.store import EventStore, Received
from contract import wire
from edge.tools.loadgen import message

JPEG = b"\xff\xd8\xff\xe0" + b"0" * 1000


def _setup(tmp_path: Path, **media: object) -> tuple[MediaStore, EventStore]:
    url = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    return MediaStore(MediaConfig(dir=tmp_path / "media", **media), engine), EventStore(engine)  # type: ignore[arg-type]


def _event(store: EventStore, i: int, clip_id: str | None = None) -> str:
    ev = wire.decode_event(message("box", 3 * i)[0])
    if clip_id:
        ev = wire.WireEvent(**{**ev.__dict__, "clip_id": clip_id})
    store.ingest([Received("box", i + 1, ev)])
    return ev.event_id


def _save(media: MediaStore, event_id: str, body: bytes) -> str:
    mid = uuid.uuid4()
    media.save(
        Upload(
            mid,
            "box",
            uuid.UUID(event_id),
            "snapshot",
            "image/jpeg",
            hashlib.sha256(body).hexdigest(),
            0.0,
            0.0,
        ),
        body,
    )
    return str(mid)


def test_retention_by_age_then_size_dismissed_first(tmp_path: Path) -> None:
    media, events = _setup(tmp_path, max_total_bytes=2500, max_age_days=1)
    ids = [_event(events, i) for i in range(4)]
    saved = [_save(media, e, JPEG + bytes([i])) for i, e in enumerate(ids)]
    with media.engine.begin() as conn:
        # The oldest is past the age limit; the newest belongs to a dismissed event.
        conn.execute(
            update(MEDIA)
            .where(MEDIA.c.media_id == saved[0])
            .values(received_at=time.time() - 2 * 86400)
        )
        conn.execute(
            update(EVENTS).where(EVENTS.c.event_id == ids[3]).values(review_status="dismissed")
        )
    assert media.prune() == 2
    left = {m for m in saved if media.locate(uuid.UUID(m)) is not None}
    assert left == {saved[1], saved[2]}  # the aged one, then the dismissed one, went
    assert len(list((tmp_path / "media").rglob("*.jpg"))) == 2  # and their files


def test_event_shows_clip_pending_until_it_arrives(tmp_path: Path) -> None:
    media, events = _setup(tmp_path)
    clip_id = str(uuid.uuid4())
    event_id = _event(events, 0, clip_id=clip_id)
    services = Services(media.engine, EdgeRegistry(media.engine), None, media)
    services.accounts.add_user("olga", "operator-password", "operator")
    client = TestClient(create_app(services))
    token = client.post(
        "/api/v1/auth/login", json={"username": "olga", "password": "operator-password"}
    ).json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    assert client.get(f"/api/v1/events/{event_id}").json()["clip_status"] == "pending"
    assert client.get(f"/api/v1/media/{clip_id}").status_code == 404
    mp4 = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 2000
    media.save(
        Upload(
            uuid.UUID(clip_id),
            "box",
            uuid.UUID(event_id),
            "clip",
            "video/mp4",
            hashlib.sha256(mp4).hexdigest(),
            0.0,
            1.0,
        ),
        mp4,
    )
    assert client.get(f"/api/v1/events/{event_id}").json()["clip_status"] == "available"
    assert client.get("/api/v1/events").json()["items"][0]["clip_status"] == "available"
    assert client.get(f"/api/v1/media/{clip_id}").content == mp4
