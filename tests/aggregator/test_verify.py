"""Verification by camera in the aggregator (aggregator/api/verify.py, verifications.py,
fleet/verify.py record_answer, review.py's close guard), on SQLite and PostgreSQL: an
operator asks, the edge's verdict (written as the ingest's verify desk writes it) shows with
its snapshot and is audited; a camera case is verified or closed only when its camera says
cleared, or a supervisor overrides with a note (audited); a request nobody answers reads as
failed after ANSWER_TIMEOUT_S; citizen and closed cases cannot be verified by camera."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update

from aggregator.db.grid_models import VERIFICATIONS
from aggregator.db.models import CASES
from aggregator.fleet.verify import record_answer
from contract.verify import ANSWER_TIMEOUT_S, VerifyAnswer
from tests.aggregator.fleethelpers import DB_KINDS, FleetApi, fleet_api


@pytest.fixture(scope="module", params=DB_KINDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FleetApi]:
    """One app per database kind for the module (logins are slow): each test makes its own
    cases."""
    with fleet_api(str(request.param), tmp_path_factory.mktemp("verify")) as a:
        yield a


def _case(api: FleetApi, status: str = "resolved", **event: Any) -> int:
    """A camera case of box's cam-1 (filed by confirming an event), moved on to status; a
    zone of its own, so it does not join another test's open case."""
    ev = api.event("box", **{"zone": f"z-{uuid.uuid4().hex[:8]}", **event})
    op = api.clients["operator"]
    case_id = int(op.post(f"/api/v1/events/{ev.event_id}/confirm", json={}).json()["case_id"])
    steps = ["dispatched", "in_progress", "resolved"]
    for step in steps[: steps.index(status) + 1] if status in steps else []:
        assert op.patch(f"/api/v1/cases/{case_id}", json={"status": step}).status_code == 200
    return case_id


def _ask(api: FleetApi, case_id: int, **body: Any) -> dict[str, Any]:
    r = api.clients["operator"].post(f"/api/v1/cases/{case_id}/verify", json=body)
    assert r.status_code == 202, r.text
    out: dict[str, Any] = r.json()
    return out


def _answer(
    api: FleetApi, asked: dict[str, Any], verdict: str, edge: str = "box", **kw: Any
) -> bool:
    seen = {"frames": 10, "present_frames": 9 if verdict == "still_present" else 0}
    if verdict == "failed":
        seen = {"reason": "camera 'cam-1' is offline"}
    answer = VerifyAnswer(
        asked["request_id"], kw.pop("camera", asked["camera"]), verdict, **seen, **kw
    )  # type: ignore[arg-type]
    with api.engine.begin() as conn:
        return record_answer(conn, edge, answer, time.time())


def _verifications(api: FleetApi, case_id: int, role: str = "viewer") -> list[dict[str, Any]]:
    r = api.clients[role].get(f"/api/v1/cases/{case_id}/verifications")
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def _move(api: FleetApi, case_id: int, status: str, **body: Any) -> Any:
    return api.clients["supervisor"].patch(
        f"/api/v1/cases/{case_id}", json={"status": status, **body}
    )


def test_an_operator_asks_and_the_edges_verdict_is_attached(api: FleetApi) -> None:
    case_id = _case(api, zone="square")
    denied = api.clients["viewer"].post(f"/api/v1/cases/{case_id}/verify", json={})
    assert denied.status_code == 403
    asked = _ask(api, case_id, look_s=4)
    assert (asked["camera"], asked["zone"], asked["rule_type"]) == ("cam-1", "square", "crowding")
    assert (asked["verdict"], asked["requested_by"], asked["detail"]) == (
        "pending",
        "operator",
        {"look_s": 4.0},
    )
    again = api.clients["operator"].post(f"/api/v1/cases/{case_id}/verify", json={})
    assert again.status_code == 409
    assert f"request {asked['request_id']}" in again.json()["detail"]
    bad = api.clients["operator"].post(f"/api/v1/cases/{case_id}/verify", json={"look_s": 60})
    assert bad.status_code == 422
    # Only the camera's own edge answers, about the camera it was asked about, once.
    assert not _answer(api, asked, "cleared", edge="intruder")
    assert not _answer(api, asked, "cleared", camera="cam-2")
    snapshot = str(uuid.uuid4())
    assert _answer(
        api,
        asked,
        "still_present",
        snapshot_id=snapshot,
        peak=9.0,
        needed=8.0,
        rule="crowding",
        mode="peacetime",
        looked_s=4.1,
    )
    assert not _answer(api, asked, "cleared")
    (got,) = _verifications(api, case_id)
    assert (got["verdict"], got["snapshot_id"], got["request_id"]) == (
        "still_present",
        snapshot,
        asked["request_id"],
    )
    assert got["answered_at"] >= got["requested_at"]
    assert got["detail"] == {
        "frames": 10,
        "present_frames": 9,
        "peak": 9.0,
        "needed": 8.0,
        "rule": "crowding",
        "mode": "peacetime",
        "looked_s": 4.1,
        "look_s": 4.0,
        "edge": "box",
    }
    trail = api.clients["viewer"].get(f"/api/v1/cases/{case_id}").json()["audit"]
    verify = [a for a in trail if a["action"] == "verify"]
    assert [
        (a["username"], a["detail"]["verdict"], a["detail"]["edge"], a["detail"]["snapshot_id"])
        for a in verify
    ] == [("operator", "still_present", "box", snapshot)]
    # The next request is allowed once the first is answered; newest first.
    second = _ask(api, case_id)
    assert [v["request_id"] for v in _verifications(api, case_id)] == [
        second["request_id"],
        asked["request_id"],
    ]


def test_a_problem_still_visible_needs_a_supervisor_override_to_close(api: FleetApi) -> None:
    case_id = _case(api)
    never = _move(api, case_id, "verified")
    assert never.status_code == 409
    assert f"case {case_id} has not been verified by camera" in never.json()["detail"]
    _answer(api, _ask(api, case_id), "still_present")
    seen = _move(api, case_id, "verified")
    assert seen.status_code == 409
    assert "its camera still shows the problem" in seen.json()["detail"]
    assert "present in 9 of 10 frames" in seen.json()["detail"]
    assert "override" in seen.json()["detail"]
    assert _move(api, case_id, "verified", override=True).status_code == 422  # no note
    detail = api.clients["viewer"].get(f"/api/v1/cases/{case_id}").json()
    assert detail["status"] == "resolved"
    assert "verify_override" not in [a["action"] for a in detail["audit"]]
    done = _move(
        api, case_id, "verified", override=True, note="the car is a permitted delivery van"
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "verified"
    # The override stands for the close, until a newer verification.
    closed = _move(api, case_id, "closed")
    assert closed.status_code == 200, closed.text
    overrides = [a for a in closed.json()["audit"] if a["action"] == "verify_override"]
    assert [
        (a["username"], a["reason"], a["detail"]["to"], a["detail"]["verdict"]) for a in overrides
    ] == [("supervisor", "the car is a permitted delivery van", "verified", "still_present")]


def test_a_cleared_view_closes_without_override_and_a_newer_look_counts(api: FleetApi) -> None:
    case_id = _case(api)
    _answer(api, _ask(api, case_id), "cleared")
    assert _move(api, case_id, "verified").status_code == 200
    # Seen again before closing: the newest verification is what counts.
    _answer(api, _ask(api, case_id), "still_present")
    assert _move(api, case_id, "closed").status_code == 409
    _answer(api, _ask(api, case_id), "cleared")
    closed = _move(api, case_id, "closed")
    assert closed.status_code == 200, closed.text
    actions = [a["action"] for a in closed.json()["audit"]]
    assert actions.count("verify") == 3
    assert "verify_override" not in actions


def test_an_unanswered_request_reads_as_failed_and_a_late_answer_is_not_taken(
    api: FleetApi,
) -> None:
    case_id = _case(api)
    asked = _ask(api, case_id)
    (pending,) = _verifications(api, case_id)
    assert pending["verdict"] == "pending"
    assert "is being verified by camera" in _move(api, case_id, "verified").json()["detail"]
    with api.engine.begin() as conn:  # the edge stayed silent for longer than the timeout
        conn.execute(
            update(VERIFICATIONS)
            .where(VERIFICATIONS.c.request_id == asked["request_id"])
            .values(requested_at=time.time() - ANSWER_TIMEOUT_S - 1)
        )
    (failed,) = _verifications(api, case_id)
    assert failed["verdict"] == "failed"
    assert failed["detail"]["reason"].startswith("no answer from the camera's edge within 30 s")
    assert failed["answered_at"] is None
    assert not _answer(api, asked, "cleared")
    refused = _move(api, case_id, "verified")
    assert refused.status_code == 409
    assert "its last verification by camera failed (no answer" in refused.json()["detail"]
    # Failed, so a new request may be made at once.
    assert _ask(api, case_id)["verdict"] == "pending"


def test_an_edges_failure_is_kept_with_its_reason(api: FleetApi) -> None:
    case_id = _case(api)
    assert _answer(api, _ask(api, case_id), "failed")
    (got,) = _verifications(api, case_id)
    assert (got["verdict"], got["detail"]["reason"], got["snapshot_id"]) == (
        "failed",
        "camera 'cam-1' is offline",
        None,
    )


def test_cases_without_a_camera_or_closed_cannot_be_verified(api: FleetApi) -> None:
    op = api.clients["operator"]
    now = time.time()
    with api.engine.begin() as conn:
        citizen = conn.execute(
            CASES.insert().values(
                camera="",
                zone="",
                type="litter",
                category="city appearance",
                department="street cleaning",
                priority="normal",
                status="resolved",
                deadline_at=now + 3600,
                created_at=now,
                updated_at=now,
                source="citizen",
                category_code="0101",
            )
        ).inserted_primary_key[0]
    r = op.post(f"/api/v1/cases/{citizen}/verify", json={})
    assert r.status_code == 409
    assert (
        r.json()["detail"]
        == f"case {citizen} is a citizen report: it has no camera to verify by; check it on site"
    )
    # A citizen case is closed on a person's word: no camera guard.
    assert _move(api, citizen, "verified").status_code == 200
    assert _move(api, citizen, "closed").status_code == 200
    cancelled = _case(api, status="filed")
    assert _move(api, cancelled, "cancelled").status_code == 200
    r = op.post(f"/api/v1/cases/{cancelled}/verify", json={})
    assert (r.status_code, r.json()["detail"]) == (
        409,
        f"case {cancelled} is cancelled: nothing to verify",
    )
    assert op.post("/api/v1/cases/999999/verify", json={}).status_code == 404
    assert api.clients["viewer"].get("/api/v1/cases/999999/verifications").status_code == 404
