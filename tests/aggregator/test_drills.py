"""Events and cases under operating modes, on SQLite and PostgreSQL: an event keeps the mode
and drill flag it was raised under; a case takes its deadline and priority from the mode;
drill events and cases stay out of Open311 and the real statistics; the drill report times
detection, review and dispatch."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from aggregator.db.models import AUDIT, CAMERAS, CASES, EVENTS
from aggregator.fleet.modes import ModeSwitches
from tests.aggregator.fleethelpers import DB_KINDS, FleetApi, fleet_api


@pytest.fixture(params=DB_KINDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FleetApi]:
    # A database per test: statistics and Open311 count everything in it.
    with fleet_api(request.param, tmp_path_factory.mktemp(request.param)) as a:
        yield a


def _row(api: FleetApi, event_id: str) -> tuple[str, bool]:
    with api.engine.connect() as conn:
        row = conn.execute(
            select(EVENTS.c.mode, EVENTS.c.drill).where(EVENTS.c.event_id == event_id)
        ).one()
    return row.mode, row.drill


def test_events_keep_the_mode_they_were_raised_under(api: FleetApi) -> None:
    real = api.event(mode="emergency")
    drill = api.event(mode="drill", drill=True)
    plain = api.event()
    assert _row(api, real.event_id) == ("emergency", False)
    assert _row(api, drill.event_id) == ("drill", True)
    assert _row(api, plain.event_id) == ("peacetime", False)
    # A later message of the event (raised before a switch back) does not move it.
    api.event(
        event_id=real.event_id, phase="end", ts=real.started_ts + 9, started_ts=real.started_ts
    )
    assert _row(api, real.event_id) == ("emergency", False)
    listed = api.clients["viewer"].get(f"/api/v1/events/{drill.event_id}").json()
    assert (listed["mode"], listed["drill"]) == ("drill", True)


def test_a_case_opened_in_an_emergency_is_urgent_and_short(api: FleetApi) -> None:
    op = api.clients["operator"]
    calm = api.event(camera="cam-1")
    storm = api.event(camera="cam-2", mode="emergency")
    rehearsal = api.event(camera="cam-2", mode="drill", drill=True)
    ids = {}
    for name, ev in (("calm", calm), ("storm", storm), ("rehearsal", rehearsal)):
        r = op.post(f"/api/v1/events/{ev.event_id}/confirm", json={})
        assert r.status_code == 200, r.text
        ids[name] = r.json()["case_id"]
    assert ids["rehearsal"] != ids["storm"]  # a drill never joins a real case
    cases = {n: op.get(f"/api/v1/cases/{i}").json() for n, i in ids.items()}
    now = time.time()
    # Category "public order" (crowding): normal deadline and priority in peacetime...
    assert (cases["calm"]["mode"], cases["calm"]["drill"]) == ("peacetime", False)
    assert cases["calm"]["deadline_at"] - cases["calm"]["created_at"] > 3600
    # ...half an hour and urgent under emergency (and its drill), as modes.definitions say.
    for name in ("storm", "rehearsal"):
        case = cases[name]
        assert case["priority"] == "urgent"
        assert case["deadline_at"] - case["created_at"] == pytest.approx(1800, abs=1)
        assert case["created_at"] == pytest.approx(now, abs=60)
    assert (cases["storm"]["mode"], cases["storm"]["drill"]) == ("emergency", False)
    assert (cases["rehearsal"]["mode"], cases["rehearsal"]["drill"]) == ("drill", True)


def test_drills_stay_out_of_open311_and_the_real_statistics(api: FleetApi) -> None:
    op, viewer = api.clients["operator"], api.clients["viewer"]
    real = [api.event(camera="cam-1"), api.event(camera="cam-1", mode="emergency")]
    drills = [api.event(camera="cam-9", mode="drill", drill=True) for _ in range(3)]
    real_case = op.post(f"/api/v1/events/{real[0].event_id}/confirm", json={}).json()["case_id"]
    drill_case = op.post(f"/api/v1/events/{drills[0].event_id}/confirm", json={}).json()["case_id"]

    listed = viewer.get("/open311/v2/requests.json").json()
    assert [r["service_request_id"] for r in listed] == [str(real_case)]
    assert viewer.get(f"/open311/v2/requests/{real_case}.json").status_code == 200
    assert viewer.get(f"/open311/v2/requests/{drill_case}.json").status_code == 404

    stats = viewer.get("/api/v1/stats").json()
    assert stats["events_by_camera"] == {"cam-1": 2}
    assert stats["events_by_mode"] == {"peacetime": 1, "emergency": 1}
    assert sum(stats["events_by_hour"].values()) == 2
    assert stats["open_cases"] == 1
    assert [h["camera"] for h in stats["hotspots"]] == ["cam-1"]
    drill_stats = viewer.get("/api/v1/stats", params={"drill": True}).json()
    assert drill_stats["events_by_camera"] == {"cam-9": 3}
    assert drill_stats["events_by_mode"] == {"drill": 3}
    assert drill_stats["open_cases"] == 1
    assert [h["camera"] for h in drill_stats["hotspots"]] == ["cam-9"]


def test_the_drill_report_times_each_step(api: FleetApi) -> None:
    t0 = time.time() - 3600
    switches = ModeSwitches(api.engine, api.services.modes)
    drill = switches.switch("drill", "area:G-9", "sup", "flood exercise", starts_at=t0, now=t0)
    real = switches.switch("emergency", "city", "sup", "real", starts_at=t0, now=t0)
    with api.engine.begin() as conn:
        conn.execute(CAMERAS.insert().values(camera_id="cam-9", grid_cell="G-9"))
    # Three drill events in the area with known times, one outside it, one real one.
    evs = [
        api.event(camera="cam-9", mode="drill", drill=True, started_ts=t0 + 10 * (i + 1))
        for i in range(3)
    ]
    api.event(camera="cam-elsewhere", mode="drill", drill=True, started_ts=t0 + 5)
    api.event(camera="cam-9", mode="emergency", started_ts=t0 + 15)
    op = api.clients["operator"]
    case_id = op.post(f"/api/v1/events/{evs[0].event_id}/confirm", json={}).json()["case_id"]
    assert (
        op.post(f"/api/v1/events/{evs[1].event_id}/confirm", json={}).json()["case_id"] == case_id
    )
    assert op.patch(f"/api/v1/cases/{case_id}", json={"status": "dispatched"}).status_code == 200
    # Known times: received 2, 4, 6 s after the start; reviewed 30 and 90 s after receipt;
    # the case filed at t0 + 100 and dispatched at t0 + 400.
    with api.engine.begin() as conn:
        for i, ev in enumerate(evs):
            received = t0 + 10 * (i + 1) + 2 * (i + 1)
            reviewed = received + (30, 90)[i] if i < 2 else None
            conn.execute(
                update(EVENTS)
                .where(EVENTS.c.event_id == ev.event_id)
                .values(received_at=received, reviewed_at=reviewed)
            )
        conn.execute(update(CASES).where(CASES.c.id == case_id).values(created_at=t0 + 100))
        conn.execute(
            update(AUDIT)
            .where(AUDIT.c.entity == "case", AUDIT.c.action == "update_case")
            .values(at=t0 + 400)
        )

    assert api.clients["operator"].get(f"/api/v1/drills/{drill.id}/report").status_code == 403
    sup = api.clients["supervisor"]
    r = sup.get(f"/api/v1/drills/{drill.id}/report")
    assert r.status_code == 200, r.text
    rep = r.json()
    assert (rep["switch"]["id"], rep["switch"]["scope"], rep["events"]) == (drill.id, "area:G-9", 3)
    assert [row["event_id"] for row in rep["rows"]] == [e.event_id for e in evs]
    assert [row["detection_s"] for row in rep["rows"]] == pytest.approx([2, 4, 6])
    assert [row["review_s"] for row in rep["rows"]][:2] == pytest.approx([30, 90])
    assert rep["rows"][2]["review_s"] is None
    assert [row["dispatch_s"] for row in rep["rows"]] == [pytest.approx(300)] * 2 + [None]
    steps = rep["steps"]
    assert steps["detection_s"] == {"count": 3, "median": 4.0, "p95": 6.0, "max": 6.0}
    assert steps["review_s"]["count"] == 2
    assert steps["review_s"]["median"] == pytest.approx(60)
    assert steps["review_s"]["max"] == pytest.approx(90)
    assert steps["dispatch_s"]["count"] == 2

    not_drill = sup.get(f"/api/v1/drills/{real.id}/report")
    assert not_drill.status_code == 409
    assert "not a drill" in not_drill.json()["detail"]
    assert sup.get("/api/v1/drills/999999/report").status_code == 404
