"""The review workflow through the real API and database: queue filters, confirm into a
case (or join one), dismiss with a reason, bulk actions, case transitions, audit log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aggregator.auth import ROLES
from aggregator.db.models import CAMERAS
from aggregator.main import create_app
from aggregator.store import EventStore, Received
from contract import wire
from edge.tools.loadgen import message
from tests.aggregator.verifyhelpers import cleared
from tests.apihelpers import make_services


@pytest.fixture
def api(tmp_path: Path) -> Iterator[dict[str, Any]]:
    services = make_services(tmp_path)
    engine = services.engine
    with engine.begin() as conn:
        conn.execute(
            CAMERAS.insert().values(
                camera_id="cam-1", address="1 Main St", lat=52.1, lon=4.3, grid_cell="G-17"
            )
        )
    store = EventStore(engine)
    # 24 incidents (start messages): types cycle crowding, illegal_parking, litter (i % 3) and
    # cameras cam-0..3 (i % 4), so incidents i and i + 12 share camera, zone and type.
    ids = []
    for i in range(24):
        ev = wire.decode_event(message("box", 3 * i)[0])
        store.ingest([Received("box", i + 1, ev)])
        ids.append(ev.event_id)
    app = create_app(services)
    clients = {}
    for role in ROLES:
        c = TestClient(app)
        token = c.post(
            "/api/v1/auth/login", json={"username": role, "password": f"{role}-password"}
        ).json()["token"]
        c.headers["Authorization"] = f"Bearer {token}"
        clients[role] = c
    yield {"c": clients, "ids": ids}
    engine.dispose()


def test_queue_filters_and_pagination(api: dict[str, Any]) -> None:
    c = api["c"]["viewer"]
    all_ = c.get("/api/v1/events", params={"limit": 5}).json()
    assert all_["total"] == 24
    assert len(all_["items"]) == 5
    starts = [e["started_ts"] for e in all_["items"]]
    assert starts == sorted(starts, reverse=True)
    page2 = c.get("/api/v1/events", params={"limit": 5, "offset": 5}).json()["items"]
    assert not {e["event_id"] for e in page2} & {e["event_id"] for e in all_["items"]}
    parking = c.get("/api/v1/events", params={"type": "illegal_parking"}).json()
    assert parking["total"] == 8
    assert {e["type"] for e in parking["items"]} == {"illegal_parking"}
    cam = c.get("/api/v1/events", params={"camera": "cam-1", "type": "litter"}).json()
    assert [e["camera"] for e in cam["items"]] == ["cam-1"] * cam["total"]
    window = c.get("/api/v1/events", params={"since": 1003, "until": 1006}).json()
    assert window["total"] == 3
    assert c.get("/api/v1/events", params={"has_clip": True}).json()["total"] == 0
    assert c.get("/api/v1/events", params={"status": "new"}).json()["total"] == 24
    assert c.get("/api/v1/events", params={"status": "bogus"}).status_code == 422


def test_confirm_files_a_case_and_the_next_joins_it(api: dict[str, Any]) -> None:
    c, ids = api["c"]["operator"], api["ids"]
    # incidents 1 and 13 are both illegal_parking on cam-1
    first = c.post(f"/api/v1/events/{ids[1]}/confirm", json={"note": "car on the crossing"})
    assert first.status_code == 200, first.text
    case_id = first.json()["case_id"]
    second = c.post(f"/api/v1/events/{ids[13]}/confirm", json={})
    assert second.json()["case_id"] == case_id  # same camera, zone and type: same case
    case = c.get(f"/api/v1/cases/{case_id}").json()
    assert (case["category"], case["department"], case["status"]) == (
        "street order / illegal parking",
        "traffic enforcement",
        "filed",
    )
    assert (case["category_code"], case["stage"], case["source"]) == (
        "0302",
        "ticket or tow",
        "camera",
    )
    assert case["deadline_at"] == pytest.approx(time.time() + 24 * 3600, abs=60)
    assert (case["address"], case["grid_cell"], case["lat"]) == (
        "1 Main St",
        "G-17",
        52.1,
    )  # inherited
    assert [e["event_id"] for e in case["events"]] == [ids[1], ids[13]]
    assert [a["action"] for a in case["audit"]] == ["file_case", "join_case"]
    assert case["audit"][0]["username"] == "operator"
    assert case["audit"][0]["reason"] == "car on the crossing"
    ev = c.get(f"/api/v1/events/{ids[1]}").json()
    assert (ev["review_status"], ev["case_id"], ev["reviewed_by"]) == (
        "confirmed",
        case_id,
        "operator",
    )


def test_dismiss_needs_a_known_reason_and_viewers_cannot(api: dict[str, Any]) -> None:
    ids = api["ids"]
    op = api["c"]["operator"]
    assert (
        api["c"]["viewer"]
        .post(f"/api/v1/events/{ids[0]}/dismiss", json={"reason": "duplicate"})
        .status_code
        == 403
    )
    assert op.post(f"/api/v1/events/{ids[0]}/dismiss", json={"reason": "boring"}).status_code == 422
    r = op.post(
        f"/api/v1/events/{ids[0]}/dismiss", json={"reason": "false_positive", "note": "shadow"}
    )
    assert r.status_code == 200
    ev = op.get(f"/api/v1/events/{ids[0]}").json()
    assert (ev["review_status"], ev["review_reason"]) == ("dismissed", "false_positive")
    assert ev["audit"][-1]["action"] == "dismiss"
    assert op.post(f"/api/v1/events/{ids[1]}/confirm", json={}).status_code == 200
    assert (
        op.post(f"/api/v1/events/{ids[1]}/dismiss", json={"reason": "duplicate"}).status_code == 409
    )


def test_bulk_actions_report_each_event(api: dict[str, Any]) -> None:
    ids, op = api["ids"], api["c"]["operator"]
    r = op.post(
        "/api/v1/events/bulk",
        json={"event_ids": [*ids[2:5], "missing"], "action": "dismiss", "reason": "not_actionable"},
    ).json()["results"]
    assert [x.get("status") for x in r[:3]] == ["dismissed"] * 3
    assert r[3]["status_code"] == 404
    assert op.get("/api/v1/events", params={"status": "dismissed"}).json()["total"] == 3
    assert (
        op.post("/api/v1/events/bulk", json={"event_ids": ids[:1], "action": "dismiss"}).status_code
        == 422
    )


def test_case_moves_through_the_workflow_with_roles_and_audit(api: dict[str, Any]) -> None:
    ids, op, sup = api["ids"], api["c"]["operator"], api["c"]["supervisor"]
    case_id = op.post(f"/api/v1/events/{ids[0]}/confirm", json={}).json()["case_id"]
    assert op.patch(f"/api/v1/cases/{case_id}", json={"status": "resolved"}).status_code == 409
    r = op.patch(
        f"/api/v1/cases/{case_id}",
        json={"status": "dispatched", "assignee": "team-3", "note": "sent"},
    )
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["assignee"]) == ("dispatched", "team-3")
    for step in ("in_progress", "resolved"):
        assert op.patch(f"/api/v1/cases/{case_id}", json={"status": step}).status_code == 200
    denied = op.patch(f"/api/v1/cases/{case_id}", json={"status": "verified"})
    assert denied.status_code == 403
    assert "needs the supervisor role" in denied.json()["detail"]
    cleared(op, case_id)  # its camera shows the problem gone (verification by camera)
    assert sup.patch(f"/api/v1/cases/{case_id}", json={"status": "verified"}).status_code == 200
    closed = sup.patch(
        f"/api/v1/cases/{case_id}", json={"status": "closed", "note": "checked on site"}
    ).json()
    assert closed["status"] == "closed"
    assert closed["closed_at"] is not None
    trail = [
        (a["action"], a["username"], a["detail"].get("to", {}).get("status"))
        for a in closed["audit"]
    ]
    assert trail == [
        ("file_case", "operator", None),
        ("update_case", "operator", "dispatched"),
        ("update_case", "operator", "in_progress"),
        ("update_case", "operator", "resolved"),
        ("verify", "operator", None),
        ("update_case", "supervisor", "verified"),
        ("update_case", "supervisor", "closed"),
    ]
    assert closed["audit"][-1]["reason"] == "checked on site"
    board = op.get("/api/v1/cases", params={"status": "closed"}).json()
    assert [x["id"] for x in board["items"]] == [case_id]
    # A closed case takes no new events: the next confirmed one files a new case.
    new_case = op.post(f"/api/v1/events/{ids[12]}/confirm", json={}).json()["case_id"]
    assert new_case != case_id


# GeoReport v2 service request fields (https://wiki.open311.org/GeoReport_v2), as JSON types.
GEOREPORT_REQUEST = {
    "type": "object",
    "required": [
        "service_request_id",
        "status",
        "service_name",
        "service_code",
        "requested_datetime",
        "updated_datetime",
        "address",
        "lat",
        "long",
    ],
    "properties": {
        "service_request_id": {"type": "string"},
        "status": {"enum": ["open", "closed"]},
        "status_notes": {"type": ["string", "null"]},
        "service_name": {"type": "string"},
        "service_code": {"type": "string"},
        "description": {"type": ["string", "null"]},
        "agency_responsible": {"type": ["string", "null"]},
        "service_notice": {"type": ["string", "null"]},
        "requested_datetime": {"type": "string", "format": "date-time"},
        "updated_datetime": {"type": ["string", "null"], "format": "date-time"},
        "expected_datetime": {"type": ["string", "null"], "format": "date-time"},
        "address": {"type": ["string", "null"]},
        "address_id": {"type": ["string", "null"]},
        "zipcode": {"type": ["string", "null"]},
        "lat": {"type": ["number", "null"]},
        "long": {"type": ["number", "null"]},
        "media_url": {"type": ["string", "null"]},
    },
    "additionalProperties": False,
}


def test_open311_requests_follow_georeport_v2(api: dict[str, Any]) -> None:
    import jsonschema

    ids, op = api["ids"], api["c"]["operator"]
    for i in (1, 2, 13):
        op.post(f"/api/v1/events/{ids[i]}/confirm", json={})
    viewer = api["c"]["viewer"]
    services = viewer.get("/open311/v2/services.json").json()
    # Services are the catalogue's categories: 0501 crowding, 0302 illegal parking, 0101 litter.
    assert {s["service_code"] for s in services} >= {"0501", "0302", "0101"}
    assert next(s for s in services if s["service_code"] == "0101")["group"] == "city appearance"
    requests = viewer.get("/open311/v2/requests.json").json()
    assert len(requests) == 2  # events 1 and 13 share a case
    checker = jsonschema.Draft7Validator(
        {"type": "array", "items": GEOREPORT_REQUEST}, format_checker=jsonschema.FormatChecker()
    )
    errors = list(checker.iter_errors(requests))
    assert errors == []
    from datetime import datetime

    for r in requests:  # ISO 8601 with a zone, whatever format checkers jsonschema has here
        for key in ("requested_datetime", "updated_datetime", "expected_datetime"):
            assert datetime.fromisoformat(r[key]).tzinfo is not None
    parking = next(r for r in requests if r["service_code"] == "0302")
    assert parking["service_name"] == "street order / illegal parking"
    assert (parking["address"], parking["lat"], parking["long"]) == ("1 Main St", 52.1, 4.3)
    assert parking["agency_responsible"] == "traffic enforcement"
    one = viewer.get(f"/open311/v2/requests/{parking['service_request_id']}.json").json()
    assert one == [parking]
    assert viewer.get("/open311/v2/requests.json", params={"status": "closed"}).json() == []
    assert len(viewer.get("/open311/v2/requests.json", params={"service_code": "0101"}).json()) == 1
    assert api["c"]["viewer"].get("/open311/v2/requests/999.json").status_code == 404


def test_statistics(api: dict[str, Any]) -> None:
    ids, op = api["ids"], api["c"]["operator"]
    for i in (1, 13, 2):
        op.post(f"/api/v1/events/{ids[i]}/confirm", json={})
    op.post(f"/api/v1/events/{ids[0]}/dismiss", json={"reason": "duplicate"})
    s = api["c"]["viewer"].get("/api/v1/stats").json()
    assert s["events_by_type"] == {"crowding": 8, "illegal_parking": 8, "litter": 8}
    assert sum(s["events_by_camera"].values()) == 24
    assert sum(s["events_by_hour"].values()) == 24
    from collections import Counter
    from datetime import UTC, datetime

    items = api["c"]["viewer"].get("/api/v1/events", params={"limit": 100}).json()["items"]
    when = [datetime.fromtimestamp(e["received_at"], UTC) for e in items]
    assert s["events_by_day"] == dict(sorted(Counter(t.date().isoformat() for t in when).items()))
    hours = Counter(t.hour for t in when)
    assert s["events_by_hour"] == {str(h): hours.get(h, 0) for h in range(24)}
    assert s["open_cases"] == 2
    assert s["overdue_cases"] == 0
    assert s["hotspots"][0] == {"camera": "cam-1", "zone": "zone-a", "confirmed": 2}
    assert s["median_time_to_confirm_s"] >= 0
