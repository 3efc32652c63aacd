"""Operating-mode switches on SQLite and PostgreSQL: each camera's desired mode by scope
precedence (camera > group > area > city, latest start within a scope) and by schedule,
cancelling, the audit trail, the API's roles and refusals, and the fleet page built on it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, event, select

from aggregator.core.fleet_config import ModesConfig
from aggregator.db.models import (
    AUDIT,
    CAMERA_CONFIGS,
    CAMERAS,
    EDGES,
    FLEET_CAMERAS,
    MODE_SWITCHES,
)
from aggregator.fleet.configs import CameraConfigs
from aggregator.fleet.errors import FleetError
from aggregator.fleet.modes import ModeSwitches, desired_for, parse_scope
from tests.aggregator.fleethelpers import DB_KINDS, FleetApi, camera_document, fleet_api

T = 1_800_000_000.0  # a fixed "now" for the resolution tests
MODES = ModesConfig()


@pytest.fixture(scope="module", params=DB_KINDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FleetApi]:
    with fleet_api(request.param, tmp_path_factory.mktemp(request.param)) as a:
        with a.engine.begin() as conn:
            conn.execute(
                CAMERAS.insert(),
                [
                    {"camera_id": "cam-a", "grid_cell": "G-1", "camera_group": "riverside"},
                    {"camera_id": "cam-b", "grid_cell": "G-1", "camera_group": ""},
                    {"camera_id": "cam-c", "grid_cell": "G-2", "camera_group": "riverside"},
                ],
            )
        yield a


@pytest.fixture
def switches(api: FleetApi) -> ModeSwitches:
    """The service on a mode_switches table emptied for the test."""
    with api.engine.begin() as conn:
        conn.execute(delete(MODE_SWITCHES))
        conn.execute(delete(AUDIT).where(AUDIT.c.entity == "mode"))
    return ModeSwitches(api.engine, MODES)


def _modes(
    api: FleetApi, at: float, cameras: tuple[str, ...] = ("cam-a", "cam-b", "cam-c", "cam-d")
) -> dict[str, tuple[str, int]]:
    with api.engine.connect() as conn:
        desired = desired_for(conn, set(cameras), MODES, at)
    return {c: (d.mode, d.mode_rev) for c, d in sorted(desired.items())}


def test_the_most_specific_scope_wins(api: FleetApi, switches: ModeSwitches) -> None:
    assert set(_modes(api, T).values()) == {("peacetime", 0)}
    city = switches.switch("alert", "city", "sup", "storm", starts_at=T - 50, now=T - 50)
    area = switches.switch("emergency", "area:G-1", "sup", "flood", starts_at=T - 40, now=T - 40)
    group = switches.switch("drill", "group:riverside", "sup", "exercise", T - 30, now=T - 30)
    cam = switches.switch("peacetime", "camera:cam-a", "sup", "dry spot", T - 60, now=T - 20)
    assert _modes(api, T) == {
        "cam-a": ("peacetime", cam.id),  # camera beats group, though it started earlier
        "cam-b": ("emergency", area.id),  # area beats city
        "cam-c": ("drill", group.id),  # group beats area (G-2 has none) and city
        "cam-d": ("alert", city.id),  # a camera nobody placed: the city's
    }
    # Within one scope the latest start wins, whatever order they were made in.
    later = switches.switch("emergency", "city", "sup", "worse", starts_at=T - 45, now=T - 10)
    earlier = switches.switch("peacetime", "city", "sup", "old", starts_at=T - 55, now=T - 5)
    assert _modes(api, T)["cam-d"] == ("emergency", later.id)
    assert earlier.id > later.id
    # Cancelled: the scope falls back to the next switch of the scope, or the wider scope.
    switches.cancel(later.id, "sup")
    switches.cancel(area.id, "sup")
    assert _modes(api, T)["cam-d"] == ("alert", city.id)
    assert _modes(api, T)["cam-b"] == ("alert", city.id)
    # In force: one per scope, latest first.
    assert [(s.mode, str(s.scope)) for s in switches.active(now=T)] == [
        ("drill", "group:riverside"),
        ("alert", "city"),
        ("peacetime", "camera:cam-a"),
    ]


def test_a_scheduled_switch_holds_from_its_start_to_its_end(
    api: FleetApi, switches: ModeSwitches
) -> None:
    market = switches.switch(
        "alert", "area:G-1", "sup", "market day", starts_at=T + 100, ends_at=T + 200, now=T
    )
    assert [s.id for s in switches.scheduled(now=T)] == [market.id]
    assert switches.active(now=T) == []
    assert _modes(api, T + 99.9)["cam-b"] == ("peacetime", 0)
    assert _modes(api, T + 100)["cam-b"] == ("alert", market.id)
    assert _modes(api, T + 100)["cam-c"] == ("peacetime", 0)  # another area
    assert _modes(api, T + 199.9)["cam-a"] == ("alert", market.id)
    assert _modes(api, T + 200)["cam-b"] == ("peacetime", 0)
    assert switches.scheduled(now=T + 100) == []


def test_desired_state_carries_config_and_overrides_in_three_queries(
    api: FleetApi, switches: ModeSwitches
) -> None:
    configs = CameraConfigs(api.engine, api.services.fleet, MODES)
    configs.save("cam-a", camera_document("cam-a", 8), "admin", "first")
    configs.save("cam-a", camera_document("cam-a", 7), "admin", "second")
    drill = switches.switch("drill", "camera:cam-a", "sup", "exercise", starts_at=T, now=T)
    with api.engine.connect() as conn:
        d = desired_for(conn, {"cam-a", "cam-b"}, MODES, T + 1)
    a = d["cam-a"]
    assert (a.config_version, a.mode, a.mode_rev, a.drill) == (2, "drill", drill.id, True)
    assert a.config is not None
    assert a.config["zones"][0]["rules"][0]["min_count"] == 7
    assert a.overrides.tags == ("drill", "emergency")
    assert a.overrides.rules["crowding"]["min_count"] == 4
    b = d["cam-b"]
    assert (b.config_version, b.config, b.mode, b.drill) == (None, None, "peacetime", False)
    assert b.overrides.tags == ("peacetime",)

    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    many = {f"cam-{i}" for i in range(300)}
    event.listen(api.engine, "before_cursor_execute", count)
    try:
        with api.engine.connect() as conn:
            for cameras in ({"cam-a"}, many):
                before = len(statements)
                desired_for(conn, cameras, MODES, T)
                assert len(statements) - before == 3
    finally:
        event.remove(api.engine, "before_cursor_execute", count)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [("city", "city", ""), ("area:G-17", "area", "G-17"), ("group:river", "group", "river")],
)
def test_scopes_parse(text: str, kind: str, value: str) -> None:
    scope = parse_scope(text)
    assert (scope.kind, scope.value, str(scope)) == (kind, value, text)


@pytest.mark.parametrize("text", ["town", "area:", "camera", "city:x", "group: ", "x:y"])
def test_bad_scopes_are_refused_naming_them(text: str) -> None:
    with pytest.raises(FleetError, match="scope"):
        parse_scope(text)


def test_switching_through_the_api_is_for_supervisors_and_audited(
    api: FleetApi, switches: ModeSwitches
) -> None:
    body = {"mode": "emergency", "scope": "city", "reason": "flood warning"}
    for role in ("viewer", "operator"):
        assert api.clients[role].post("/api/v1/modes/switches", json=body).status_code == 403
    sup = api.clients["supervisor"]
    r = sup.post("/api/v1/modes/switches", json=body)
    assert r.status_code == 201, r.text
    on = r.json()
    assert (on["mode"], on["scope"], on["actor"], on["label"], on["drill"]) == (
        "emergency",
        "city",
        "supervisor",
        "Emergency",
        False,
    )
    assert on["starts_at"] == pytest.approx(time.time(), abs=30)
    later = sup.post(
        "/api/v1/modes/switches",
        json={
            "mode": "alert",
            "scope": "group:riverside",
            "reason": "festival",
            "starts_at": time.time() + 3600,
            "ends_at": time.time() + 7200,
        },
    ).json()
    back = sup.post(
        "/api/v1/modes/switches", json={**body, "mode": "peacetime", "reason": "all clear"}
    ).json()
    view = api.clients["viewer"].get("/api/v1/modes").json()
    assert [a["id"] for a in view["active"]] == [back["id"]]  # superseded in its scope
    assert [s["id"] for s in view["scheduled"]] == [later["id"]]
    assert {d["name"] for d in view["definitions"]} == {"peacetime", "alert", "emergency", "drill"}
    emergency = next(d for d in view["definitions"] if d["name"] == "emergency")
    assert emergency["cases"]["crowding"] == {"time_limit_h": 0.5, "priority": "urgent"}

    assert (
        api.clients["operator"].delete(f"/api/v1/modes/switches/{later['id']}").status_code == 403
    )
    cancelled = sup.delete(f"/api/v1/modes/switches/{later['id']}")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancelled_at"] is not None
    again = sup.delete(f"/api/v1/modes/switches/{later['id']}")
    assert again.status_code == 409
    assert sup.delete("/api/v1/modes/switches/999999").status_code == 404
    assert api.clients["viewer"].get("/api/v1/modes").json()["scheduled"] == []

    trail = api.clients["viewer"].get("/api/v1/modes/switches").json()
    assert [(t["mode"], t["reason"]) for t in trail] == [
        ("peacetime", "all clear"),
        ("alert", "festival"),
        ("emergency", "flood warning"),
    ]
    assert trail[1]["cancelled_at"] is not None
    with api.engine.connect() as conn:
        audit = conn.execute(
            select(AUDIT.c.action, AUDIT.c.username, AUDIT.c.entity_id, AUDIT.c.reason)
            .where(AUDIT.c.entity == "mode")
            .order_by(AUDIT.c.id)
        ).all()
    assert [tuple(a) for a in audit] == [
        ("mode_switch", "supervisor", str(on["id"]), "flood warning"),
        ("mode_switch", "supervisor", str(later["id"]), "festival"),
        ("mode_switch", "supervisor", str(back["id"]), "all clear"),
        ("mode_cancel", "supervisor", str(later["id"]), None),
    ]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"mode": "panic"}, "unknown mode 'panic'"),
        ({"scope": "town"}, "scope 'town'"),
        ({"reason": "   "}, "reason must not be empty"),
        ({"starts_at": T, "ends_at": T - 1}, "ends_at"),
    ],
)
def test_bad_switches_are_refused_naming_the_field(
    api: FleetApi, switches: ModeSwitches, change: dict[str, Any], named: str
) -> None:
    body = {"mode": "alert", "scope": "city", "reason": "storm", **change}
    r = api.clients["supervisor"].post("/api/v1/modes/switches", json=body)
    assert r.status_code == 422, r.text
    assert named in r.json()["detail"]
    assert switches.history() == []


def test_an_empty_reason_is_refused_by_the_body_schema(api: FleetApi) -> None:
    body = {"mode": "alert", "scope": "city", "reason": ""}
    r = api.clients["supervisor"].post("/api/v1/modes/switches", json=body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "reason"]


def test_the_fleet_page_compares_what_runs_with_what_is_wanted(
    api: FleetApi, switches: ModeSwitches
) -> None:
    now = time.time()
    on = switches.switch("emergency", "area:G-1", "sup", "flood")
    with api.engine.begin() as conn:
        conn.execute(delete(CAMERA_CONFIGS).where(CAMERA_CONFIGS.c.camera_id == "cam-b"))
        conn.execute(delete(FLEET_CAMERAS))
        conn.execute(delete(EDGES))
        conn.execute(
            EDGES.insert(),
            [
                _edge("box-1", "central", now - 1, "1.4.0"),
                _edge("box-2", "local", now - 60, "1.3.9"),
                _edge("box-3", None, None, None),
            ],
        )
        conn.execute(
            FLEET_CAMERAS.insert(),
            [
                _camera("box-1", "cam-b", 1, "emergency", on.id, now - 1),
                _camera("box-1", "cam-c", None, "peacetime", 0, now - 30),
                _camera("box-2", "cam-a", None, "emergency", on.id, now - 60),
            ],
        )
    CameraConfigs(api.engine, api.services.fleet, MODES).save(
        "cam-b", camera_document("cam-b"), "admin", "set-up"
    )
    page = api.clients["viewer"].get("/api/v1/fleet").json()
    assert page["quiet_after_s"] == 15
    edges = {e["edge_id"]: e for e in page["edges"]}
    assert list(edges) == ["box-1", "box-2", "box-3"]
    assert [edges[e]["quiet"] for e in edges] == [False, True, True]
    assert (edges["box-1"]["software"], edges["box-1"]["config_source"]) == ("1.4.0", "central")
    cams = {c["camera"]: c for e in page["edges"] for c in e["cameras"]}
    b = cams["cam-b"]
    assert (b["desired_config_version"], b["desired_mode"], b["desired_mode_rev"]) == (
        1,
        "emergency",
        on.id,
    )
    assert b["in_sync"] is True
    assert b["quiet"] is False
    c = cams["cam-c"]  # another area, no config: peacetime is right, but it went quiet
    assert (c["desired_mode"], c["in_sync"], c["quiet"]) == ("peacetime", True, True)
    a = cams["cam-a"]  # a box on its own files: wanted the mode only, and the box is quiet
    assert (a["desired_config_version"], a["desired_mode"], a["in_sync"], a["quiet"]) == (
        None,
        "emergency",
        True,
        True,
    )
    assert a["error"] == "no model"


def _edge(edge_id: str, source: str | None, heard: float | None, sw: str | None) -> dict[str, Any]:
    return {
        "edge_id": edge_id,
        "public_key": edge_id.ljust(40, "k"),
        "created_at": 0.0,
        "max_seq": 0,
        "received": 0,
        "last_heard_at": heard,
        "outbox_depth": 0 if heard else None,
        "software": sw,
        "config_source": source,
    }


def _camera(
    edge_id: str, camera: str, version: int | None, mode: str, rev: int, at: float
) -> dict[str, Any]:
    return {
        "edge_id": edge_id,
        "camera_id": camera,
        "state": "online",
        "fps": 5.0,
        "config_version": version,
        "mode": mode,
        "mode_rev": rev,
        "last_event_wall": None,
        "error": "no model" if camera == "cam-a" else None,
        "reported_at": at,
        "applied_at": at,
        "failed_config_version": None,
        "failed_mode_rev": None,
    }
