"""The evaluation scorecard on the real database (SQLite and PostgreSQL) and API: figures and
the weekly trend of a seeded set equal those worked out by hand; drills never count; the CSV
parses to the same figures; the route needs a login."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aggregator.grid.scorecard import iso_week, scorecard, week_starts
from tests.aggregator.casehelpers import HOUR, clear_cases, seed_case, utc
from tests.aggregator.fleethelpers import DB_KINDS, FleetApi, fleet_api

# Wednesday of ISO week 2025-W16; weeks=3 is W14 (from Monday 31 March), W15 and W16.
NOW = utc("2025-04-16T12:00")
TRAFFIC: dict[str, Any] = {
    "department": "traffic enforcement",
    "district": "Harbour",
    "grid_cell": "G-0201",
    "category_code": "0302",
}


@pytest.fixture(scope="module", params=DB_KINDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FleetApi]:
    with fleet_api(request.param, tmp_path_factory.mktemp(request.param)) as a:
        yield a


def _seed_by_hand(api: FleetApi) -> None:
    with api.engine.begin() as conn:
        clear_cases(conn)
        # street cleaning, Old Town, G-0101 (the helper's defaults):
        seed_case(conn, utc("2025-04-01T10:00"), status="closed", closed_after_h=10)  # W14 on time
        seed_case(conn, utc("2025-04-02T00:00"), status="closed", closed_after_h=6 * 24,
                  rework_count=1)  # fmt: skip  # W15, late
        seed_case(conn, utc("2025-04-08T00:00"), status="closed", closed_after_h=30,
                  deadline_h=48)  # fmt: skip  # W15 on time
        seed_case(conn, utc("2025-04-15T00:00"), status="in_progress", deadline_h=1)  # overdue
        seed_case(conn, utc("2025-03-20T00:00"), status="dispatched")  # before: overdue only
        seed_case(conn, utc("2025-03-20T00:00"), status="closed", closed_after_h=5 * 24)  # before
        seed_case(conn, utc("2025-04-10T00:00"), status="cancelled", closed_after_h=24)
        seed_case(conn, utc("2025-04-14T00:00"), status="closed", closed_after_h=24,
                  deadline_h=48, rework_count=2)  # fmt: skip  # W16 on time
        # A drill of street cleaning, closed late in W16: never counted.
        for _ in range(3):
            seed_case(conn, utc("2025-04-14T00:00"), status="closed", closed_after_h=40,
                      drill=True)  # fmt: skip
        seed_case(conn, utc("2025-04-14T00:00"), status="filed", deadline_h=1, drill=True)
        # traffic enforcement, Harbour, G-0201:
        seed_case(conn, utc("2025-04-14T00:00"), deadline_h=6 * 24, **TRAFFIC)  # open, not late
        # closed at its deadline to the second: on time
        seed_case(conn, utc("2025-04-07T00:00"), status="closed", closed_after_h=7 * 24 - 1 / HOUR,
                  deadline_h=7 * 24 - 1 / HOUR, **TRAFFIC)  # fmt: skip
        seed_case(conn, utc("2025-04-03T00:00"), status="verified", deadline_h=1, **TRAFFIC)


STREET = {
    # filed in the period: the W14..W16 cases, the cancelled one too (not the March ones)
    "cases": 6,
    "closed": 4,
    "on_time_rate": 0.75,
    "rework_rate": 0.5,
    "overdue_open": 2,
    "first_time_pass_rate": 0.5,
}
TRAFFIC_SCORE = {
    "cases": 3,
    "closed": 1,
    "on_time_rate": 1.0,
    "rework_rate": 0.0,
    "overdue_open": 0,  # a verified case is not open work
    "first_time_pass_rate": 1.0,
}


def _trend(score: Any) -> list[tuple[str, int, float | None]]:
    return [(w.week, w.closed, w.on_time_rate) for w in score.trend]


def test_the_scorecard_is_the_one_worked_out_by_hand(api: FleetApi) -> None:
    _seed_by_hand(api)
    assert [iso_week(s) for s in week_starts(NOW, 3)] == ["2025-W14", "2025-W15", "2025-W16"]
    with api.engine.connect() as conn:
        by_department = scorecard(conn, "department", 3, NOW)
        by_district = scorecard(conn, "district", 3, NOW)
        by_cell = scorecard(conn, "grid_cell", 3, NOW)
    street, traffic = by_department
    assert street.summary() == {"group": "street cleaning", **STREET}
    assert traffic.summary() == {"group": "traffic enforcement", **TRAFFIC_SCORE}
    assert _trend(street) == [("2025-W14", 1, 1.0), ("2025-W15", 2, 0.5), ("2025-W16", 1, 1.0)]
    assert _trend(traffic) == [("2025-W14", 0, None), ("2025-W15", 1, 1.0), ("2025-W16", 0, None)]
    assert [s.summary() for s in by_district] == [
        {"group": "Harbour", **TRAFFIC_SCORE},
        {"group": "Old Town", **STREET},
    ]
    assert [s.group for s in by_cell] == ["G-0101", "G-0201"]
    assert by_cell[0].summary() == {"group": "G-0101", **STREET}


def test_a_longer_period_takes_in_earlier_cases(api: FleetApi) -> None:
    _seed_by_hand(api)
    with api.engine.connect() as conn:
        street = scorecard(conn, "department", 5, NOW)[0]  # from Monday 17 March
    # The two March cases join: 8 filed; the one closed on 25 March (W13, 4 days late) too.
    assert (street.cases, street.closed, street.on_time_rate) == (8, 5, 0.6)
    assert _trend(street)[1] == ("2025-W13", 1, 0.0)


def _seed_now(api: FleetApi) -> float:
    """Cases of the last hours (inside the current ISO week or the one before)."""
    now = time.time()
    with api.engine.begin() as conn:
        clear_cases(conn)
        for hours in (1, 2):  # closed on time
            seed_case(conn, now - 10 * HOUR, status="closed", closed_after_h=hours)
        seed_case(conn, now - 30 * HOUR, status="closed", closed_after_h=29, rework_count=1)
        seed_case(conn, now - 30 * HOUR)  # open, past its 24 h
        seed_case(conn, now - 2 * HOUR, status="closed", closed_after_h=1, **TRAFFIC)
        seed_case(conn, now - 2 * HOUR, status="closed", closed_after_h=1, drill=True)
    return now


def test_the_api_answers_json_and_csv_for_logged_in_users(api: FleetApi) -> None:
    _seed_now(api)
    viewer = api.clients["viewer"]
    r = viewer.get("/api/v1/scorecard?by=department&weeks=4")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["by"] == "department"
    assert len(body["weeks"]) == 4
    assert body["weeks"][-1] == iso_week(time.time())
    street, traffic = body["groups"]
    assert {k: street[k] for k in STREET} == {
        "cases": 4,
        "closed": 3,
        "on_time_rate": 0.6667,  # 29 h after filing is past 24 h
        "rework_rate": 0.3333,
        "overdue_open": 1,
        "first_time_pass_rate": 0.6667,
    }
    assert sum(w["closed"] for w in street["trend"]) == 3
    assert [w["week"] for w in street["trend"]] == body["weeks"]
    assert (traffic["group"], traffic["closed"]) == ("traffic enforcement", 1)

    sheet = viewer.get("/api/v1/scorecard.csv?by=department&weeks=4")
    assert sheet.status_code == 200
    assert sheet.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(sheet.text)))
    assert [r["department"] for r in rows] == ["street cleaning", "traffic enforcement"]
    assert (rows[0]["cases"], rows[0]["closed"], rows[0]["on_time_rate"]) == ("4", "3", "0.6667")
    assert rows[0]["overdue_open"] == "1"
    last = body["weeks"][-1]
    assert rows[0][f"closed {last}"] == str(street["trend"][-1]["closed"])
    assert rows[1][f"on_time_rate {body['weeks'][0]}"] == ""  # nothing closed: no rate

    cells = viewer.get("/api/v1/scorecard?by=grid_cell").json()
    assert [g["group"] for g in cells["groups"]] == ["G-0101", "G-0201"]
    assert len(cells["weeks"]) == 8  # the default period
    assert viewer.get("/api/v1/scorecard?by=camera").status_code == 422
    assert viewer.get("/api/v1/scorecard?weeks=0").status_code == 422
    anon = TestClient(viewer.app)
    assert anon.get("/api/v1/scorecard").status_code == 401
    assert anon.get("/api/v1/scorecard.csv").status_code == 401
