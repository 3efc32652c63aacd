"""The API's contract: every answer is described in OpenAPI, GET /auth/me tells the UI what
the user may do, and each case lists the moves this user may make, by role, on the real app
and database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient

from aggregator.api.schemas.auth import Ability, Can, Role
from aggregator.api.schemas.cases import CaseStatus
from aggregator.api.schemas.events import DismissReason
from aggregator.api.schemas.health import IngestStatus, ReplicaPublic
from aggregator.auth import ROLES
from aggregator.ingest import IngestStats
from aggregator.main import create_app
from aggregator.replicas import KINDS
from aggregator.review import DISMISS_REASONS, TRANSITIONS
from aggregator.store import EventStore, Received
from contract import wire
from contract.vocabulary import EVENT_TYPES, SEVERITIES
from edge.tools.loadgen import message
from tests.aggregator.verifyhelpers import cleared
from tests.apihelpers import login, make_services

# What each role may do: the contract with the UI (review and case changes from operator,
# the ingest status from supervisor, accounts for admin).
CAN = {
    "viewer": {"review": False, "update_cases": False, "view_ingest": False, "manage_users": False},
    "operator": {"review": True, "update_cases": True, "view_ingest": False, "manage_users": False},
    "supervisor": {
        "review": True,
        "update_cases": True,
        "view_ingest": True,
        "manage_users": False,
    },
    "admin": {"review": True, "update_cases": True, "view_ingest": True, "manage_users": True},
}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The real app on a fresh database with one logged-in client per role and 4 events."""
    services = make_services(tmp_path)
    store = EventStore(services.engine)
    ids = []
    for i in range(4):
        ev = wire.decode_event(message("box", 3 * i)[0])
        store.ingest([Received("box", i + 1, ev)])
        ids.append(ev.event_id)
    app = create_app(services)
    clients = {}
    for role in ROLES:
        client = TestClient(app)
        client.headers["Authorization"] = f"Bearer {login(client, role)}"
        clients[role] = client
    yield {"app": app, "c": clients, "ids": ids}
    services.engine.dispose()


def test_every_operation_documents_its_answer(api: dict[str, Any]) -> None:
    """Each path and method has a success response with a schema, and each error it
    documents has FastAPI's {"detail": ...} shape."""
    doc = api["c"]["viewer"].get("/openapi.json").json()  # the spec needs a login
    schemas = doc["components"]["schemas"]
    operations = [(p, m, op) for p, ops in doc["paths"].items() for m, op in ops.items()]
    assert len(operations) >= 23
    undocumented = []
    for path, method, op in operations:
        ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        if not ok:
            undocumented.append((method, path, "no 2xx"))
        for code, response in ok.items():
            if code == "204":  # No Content: nothing to describe, and nothing must be sent
                assert "content" not in response, (method, path)
                continue
            content = response.get("content") or {}
            if not content or not all(c.get("schema") for c in content.values()):
                undocumented.append((method, path, code))
            for media in content.values():
                # A JSON answer is a named model (or a list of them), never a bare object.
                ref = media["schema"].get("$ref") or media["schema"].get("items", {}).get("$ref")
                if media["schema"].get("type") != "string":
                    assert ref, (method, path, code, media["schema"])
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert "detail" in schemas[ref.rsplit("/", 1)[1]]["properties"], (method, path)
    assert undocumented == []
    binary = doc["paths"]["/api/v1/media/{media_id}"]["get"]["responses"]["200"]["content"]
    assert set(binary) == {"video/mp4", "image/jpeg"}
    assert set(doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}


def test_the_answers_are_models_not_database_rows(api: dict[str, Any]) -> None:
    """The event list answers exactly the fields of its model: a new column stays internal."""
    doc = api["c"]["viewer"].get("/openapi.json").json()  # the spec needs a login
    declared = set(doc["components"]["schemas"]["EventPublic"]["properties"])
    items = api["c"]["viewer"].get("/api/v1/events").json()["items"]
    assert items
    assert all(set(i) == declared for i in items)


def test_literal_types_match_the_rules_they_copy() -> None:
    assert get_args(Role) == ROLES
    assert get_args(DismissReason) == DISMISS_REASONS
    assert set(get_args(CaseStatus)) == set(TRANSITIONS)
    assert set(get_args(Ability)) == set(Can.model_fields)
    counters = set(IngestStatus.model_fields) - {"running", "media", "scope", "replicas"}
    assert counters == {f.name for f in fields(IngestStats)}
    assert get_args(ReplicaPublic.model_fields["kind"].annotation) == KINDS


@pytest.mark.parametrize("role", ROLES)
def test_me_says_what_the_role_may_do_and_the_routes_agree(api: dict[str, Any], role: str) -> None:
    c = api["c"][role]
    me = c.get("/api/v1/auth/me").json()
    assert (me["username"], me["role"]) == (role, role)
    assert isinstance(me["id"], int)
    assert me["can"] == CAN[role]
    assert me["dismiss_reasons"] == list(DISMISS_REASONS)
    assert me["event_types"] == list(EVENT_TYPES)
    assert me["severities"] == list(SEVERITIES)
    # The routes behind each ability let this role through exactly when `can` says so.
    answers = {
        "review": c.post("/api/v1/events/no-such-event/dismiss", json={"reason": "duplicate"}),
        "update_cases": c.patch("/api/v1/cases/999999", json={"priority": "high"}),
        "view_ingest": c.get("/api/v1/ingest"),
        "manage_users": c.get("/api/v1/users"),
    }
    allowed = {ability: r.status_code != 403 for ability, r in answers.items()}
    assert allowed == me["can"], {a: (r.status_code, r.text[:80]) for a, r in answers.items()}
    assert {r.status_code for r in answers.values()} <= {200, 403, 404}


def _moves(api: dict[str, Any], case_id: int) -> dict[str, list[str]]:
    """The transitions each role is offered, from the case itself and from the board."""
    out = {}
    for role, c in api["c"].items():
        one = c.get(f"/api/v1/cases/{case_id}").json()["transitions"]
        board = c.get("/api/v1/cases").json()["items"]
        assert [x["transitions"] for x in board if x["id"] == case_id] == [one]
        out[role] = one
    return out


def test_each_case_offers_the_moves_this_user_may_make(api: dict[str, Any]) -> None:
    op, sup = api["c"]["operator"], api["c"]["supervisor"]
    case_id = op.post(f"/api/v1/events/{api['ids'][0]}/confirm", json={}).json()["case_id"]
    staff = ["dispatched", "cancelled"]
    assert _moves(api, case_id) == {
        "viewer": [],
        "operator": ["dispatched"],
        "supervisor": staff,
        "admin": staff,
    }
    for step in ("dispatched", "in_progress", "resolved"):
        r = op.patch(f"/api/v1/cases/{case_id}", json={"status": step})
        assert r.status_code == 200, r.text
    # The PATCH answer carries the moves from the new status for whoever made it.
    assert r.json()["transitions"] == []
    assert _moves(api, case_id) == {
        "viewer": [],
        "operator": [],
        "supervisor": ["verified", "in_progress"],
        "admin": ["verified", "in_progress"],
    }
    refused = op.patch(f"/api/v1/cases/{case_id}", json={"status": "verified"})
    assert refused.status_code == 403  # not offered, and the server refuses it
    assert set(refused.json()) == {"detail"}
    assert "supervisor" in refused.json()["detail"]
    cleared(op, case_id)  # its camera shows the problem gone (verification by camera)
    for step in ("verified", "closed"):
        assert sup.patch(f"/api/v1/cases/{case_id}", json={"status": step}).status_code == 200
    assert _moves(api, case_id) == {role: [] for role in ROLES}  # a closed case goes nowhere
    wrong = sup.patch(f"/api/v1/cases/{case_id}", json={"status": "filed"})
    assert wrong.status_code == 409
    assert wrong.json() == {"detail": f"case {case_id} is closed: it can go to nothing, not filed"}
