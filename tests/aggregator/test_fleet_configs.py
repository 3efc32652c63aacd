"""Central camera configs through the real API and database (SQLite and PostgreSQL): invalid
documents refused with the field named and nothing stored, versions with author and reason,
history, rollback, audit entries, roles; the presets and the snapshot for the zone editor."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from fastapi.testclient import TestClient
from sqlalchemy import select

from aggregator.db.models import AUDIT, CAMERA_EDGES
from tests.aggregator.fleethelpers import DB_KINDS, FleetApi, camera_document, fleet_api

URL = "/api/v1/cameras/cam-1/configs"
BAD = "/api/v1/cameras/cam-bad/configs"


# One app and database per kind for the module (accounts take seconds to make): each test
# works on cameras of its own.
@pytest.fixture(scope="module", params=DB_KINDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FleetApi]:
    with fleet_api(request.param, tmp_path_factory.mktemp(request.param)) as a:
        yield a


def _url(camera: str) -> str:
    return f"/api/v1/cameras/{camera}/configs"


def _save(api: FleetApi, doc: dict[str, Any], reason: str = "set-up") -> Any:
    return api.clients["admin"].post(_url(doc["id"]), json={"config": doc, "reason": reason})


def _refusal(api: FleetApi, doc: dict[str, Any], camera: str = "cam-bad") -> dict[str, str]:
    """{field: message} of a refused save."""
    r = api.clients["admin"].post(_url(camera), json={"config": doc, "reason": "x"})
    assert r.status_code == 422, r.text
    return {i["loc"]: i["msg"] for i in r.json()["detail"]}


def test_versions_history_and_rollback(api: FleetApi) -> None:
    admin = api.clients["admin"]
    first = _save(api, camera_document(min_count=8), "first zones")
    assert first.status_code == 201, first.text
    v1 = first.json()
    canonical = json.dumps(camera_document(min_count=8), sort_keys=True, separators=(",", ":"))
    assert (v1["version"], v1["author"], v1["reason"]) == (1, "admin", "first zones")
    assert v1["sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert v1["config"] == camera_document(min_count=8)
    v2 = _save(api, camera_document(min_count=6), "market day").json()
    assert v2["version"] == 2
    assert v2["sha256"] != v1["sha256"]

    history = api.clients["viewer"].get(URL).json()
    assert [(h["version"], h["reason"]) for h in history] == [(2, "market day"), (1, "first zones")]
    assert "config" not in history[0]
    latest = api.clients["viewer"].get(f"{URL}/latest").json()
    assert latest["config"]["zones"][0]["rules"][0]["min_count"] == 6
    assert api.clients["viewer"].get(f"{URL}/1").json()["config"] == v1["config"]
    missing = api.clients["viewer"].get(f"{URL}/9")
    assert missing.status_code == 404
    assert "version 9" in missing.json()["detail"]
    none = api.clients["viewer"].get("/api/v1/cameras/cam-2/configs/latest")
    assert none.status_code == 404
    assert "cam-2" in none.json()["detail"]

    back = admin.post(f"{URL}/rollback", json={"version": 1, "reason": "too many alarms"})
    assert back.status_code == 201, back.text
    v3 = back.json()
    assert (v3["version"], v3["sha256"], v3["config"]) == (3, v1["sha256"], v1["config"])
    gone = admin.post(f"{URL}/rollback", json={"version": 7, "reason": "x"})
    assert gone.status_code == 404

    with api.engine.connect() as conn:
        trail = conn.execute(
            select(
                AUDIT.c.action, AUDIT.c.username, AUDIT.c.entity_id, AUDIT.c.reason, AUDIT.c.detail
            )
            .where(AUDIT.c.entity == "camera", AUDIT.c.entity_id == "cam-1")
            .order_by(AUDIT.c.id)
        ).all()
    assert [(t.action, t.username, t.entity_id, t.reason) for t in trail] == [
        ("config_save", "admin", "cam-1", "first zones"),
        ("config_save", "admin", "cam-1", "market day"),
        ("config_rollback", "admin", "cam-1", "too many alarms"),
    ]
    assert trail[2].detail["from_version"] == 1
    assert trail[2].detail["version"] == 3


def test_invalid_configs_are_refused_naming_the_field(api: FleetApi) -> None:
    doc = camera_document("cam-bad")
    unknown_key = copy.deepcopy(doc)
    unknown_key["zones"][0]["colour"] = "red"
    assert _refusal(api, unknown_key) == {"zones[0].colour": "unknown key 'colour'"}

    crossing = copy.deepcopy(doc)
    crossing["zones"][0]["polygon"] = [[0, 0], [1, 1], [1, 0.5], [0, 1]]
    problems = _refusal(api, crossing)
    assert list(problems) == ["zones[0].polygon"]
    assert "crosses itself" in problems["zones[0].polygon"]

    typo = copy.deepcopy(doc)
    typo["zones"][0]["rules"][0]["classes"] = ["persn"]
    problems = _refusal(api, typo)
    assert list(problems) == ["zones[0].rules[0].classes"]
    assert "unknown class 'persn'" in problems["zones[0].rules[0].classes"]
    assert "did you mean 'person'" in problems["zones[0].rules[0].classes"]

    with_source = {**doc, "source": {"uri": "rtsp://10.0.0.7/stream"}}
    assert "stays in the box" in _refusal(api, with_source)["source"]

    other_camera = {**doc, "id": "cam-2"}
    assert "must be the camera 'cam-bad'" in _refusal(api, other_camera)["id"]

    huge = {**doc, "name": "x" * 13_000}
    assert "max_config_bytes" in _refusal(api, huge)[""]

    # Nothing refused was stored: the camera has no version at all.
    # Nothing was stored, and no edge reports cam-bad: its history is a 404 naming it, while a
    # camera an edge has reported but nobody configured has an empty history.
    unknown = api.clients["viewer"].get(BAD)
    assert unknown.status_code == 404, unknown.text
    assert "'cam-bad' is unknown" in unknown.json()["detail"]
    with api.engine.begin() as conn:
        conn.execute(CAMERA_EDGES.insert().values(camera_id="cam-seen", edge_id="e", bound_at=0))
    assert api.clients["viewer"].get(_url("cam-seen")).json() == []
    # The body itself keeps FastAPI's shape of errors.
    r = api.clients["admin"].post(BAD, json={"config": doc})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "reason"]


def test_only_admins_save_and_everyone_reads(api: FleetApi) -> None:
    url = _url("cam-roles")
    for role in ("viewer", "operator", "supervisor"):
        r = api.clients[role].post(
            url, json={"config": camera_document("cam-roles"), "reason": "x"}
        )
        assert r.status_code == 403, (role, r.text)
        rb = api.clients[role].post(f"{url}/rollback", json={"version": 1, "reason": "x"})
        assert rb.status_code == 403, role
    assert _save(api, camera_document("cam-roles")).status_code == 201
    for role in ("viewer", "operator", "supervisor", "admin"):
        assert [h["version"] for h in api.clients[role].get(url).json()] == [1]
    anonymous = TestClient(api.clients["viewer"].app)
    assert anonymous.get(url).status_code == 401


def test_presets_offer_every_rule_kind_and_its_parameters(api: FleetApi) -> None:
    body = api.clients["viewer"].get("/api/v1/presets").json()
    assert body["presets"]["crowding"]["kind"] == "count"
    assert body["presets"]["litter"]["classes"][0] == "bottle"
    count = {p["name"]: p for p in body["parameters"]["count"]}
    assert count["min_count"]["default"] == 5
    assert "Persons" in count["min_count"]["description"]
    assert count["classes"]["default"] is None  # required: no default
    assert {"dwell", "left_object"} <= set(body["parameters"])
    left = {p["name"]: p["default"] for p in body["parameters"]["left_object"]}
    assert left["evidence"] == ["detector"]


def test_snapshot_is_the_latest_uploaded_one(api: FleetApi) -> None:
    viewer = api.clients["viewer"]
    r = viewer.get("/api/v1/cameras/cam-snap/snapshot")
    assert r.status_code == 404
    assert r.json() == {"detail": "no snapshot of camera 'cam-snap' yet"}
    registry = api.services.registry
    registry.add("box-snap", zmq.curve_keypair()[0].decode())
    token = registry.new_token("box-snap")
    pictures = {}
    for n, started in enumerate((1000.0, 2000.0)):
        media_id = str(uuid.uuid4())
        ev = api.event("box-snap", camera="cam-snap", started_ts=started, snapshot_id=media_id)
        body = b"\xff\xd8\xff\xe0" + bytes([n]) * 200
        up = viewer.put(
            f"/api/v1/media/{media_id}",
            content=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "image/jpeg",
                "X-Event-Id": ev.event_id,
                "X-Media-Kind": "snapshot",
                "X-Content-SHA256": hashlib.sha256(body).hexdigest(),
            },
        )
        assert up.status_code == 201, up.text
        pictures[started] = body
    never_uploaded = str(uuid.uuid4())
    api.event("box-snap", camera="cam-snap", started_ts=3000.0, snapshot_id=never_uploaded)
    r = viewer.get("/api/v1/cameras/cam-snap/snapshot")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert r.content == pictures[2000.0]


def test_a_camera_id_of_the_longest_kind_is_saved_and_audited(api: FleetApi) -> None:
    """Camera ids take up to 64 characters; the audit trail names the camera (0009 widens
    audit_log.entity_id from event uuids' 36 on PostgreSQL)."""
    camera = "c" * 64
    assert _save(api, camera_document(camera)).status_code == 201
    with api.engine.connect() as conn:
        named = conn.execute(
            select(AUDIT.c.entity_id).where(AUDIT.c.entity == "camera", AUDIT.c.entity_id == camera)
        ).all()
    assert len(named) == 1
