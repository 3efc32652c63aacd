"""Open supervision on the real database (SQLite and PostgreSQL) and API: the public figures
of seeded cases equal the figures worked out by hand; and tests that hunt for what must never
be published (a count from 1 to 4, a personal field, free text, a photo, drill data) and fail
if they find any. The public page and feed answer without a login."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aggregator.core.grid_config import GridConfig, PublicConfig
from aggregator.grid.public import FIGURE_FIELDS, ROW_FIELDS, month_start, public_figures
from tests.aggregator.casehelpers import clear_cases, seed_case, utc
from tests.aggregator.fleethelpers import DB_KINDS, FleetApi, fleet_api

NOW = utc("2025-04-15T12:00")
GARBAGE = "city appearance / exposed garbage"
PARKING = "street order / illegal parking"
TRAFFIC: dict[str, Any] = {
    "department": "traffic enforcement",
    "district": "Harbour",
    "category_code": "0302",
}
PHOTO = "5b0e6a52-6a0c-4c1e-9a8e-2f1d3c4b5a69"
PERSONAL: dict[str, Any] = {
    "source": "citizen",
    "reporter": "app-secret",
    "description": "SECRET free text: Jan at number 5 saw it",
    "assignee": "Officer Smith",
    "photo_id": PHOTO,
    "address": "Kerkstraat 5",
}
#: Names that must never be keys of the public figures: people, their words, photos, places.
FORBIDDEN_KEYS = {
    "reporter", "description", "assignee", "email", "first_name", "last_name", "phone",
    "photo", "photo_id", "media_url", "address", "lat", "lon", "long", "camera", "zone", "id",
}  # fmt: skip
FORBIDDEN_TEXT = ("app-secret", "SECRET", "Jan", "Officer Smith", PHOTO, "Kerkstraat", "cam-1")
COUNT_KEYS = {"filed", "closed", "cases", "overdue_open"}


@pytest.fixture(scope="module", params=DB_KINDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FleetApi]:
    with fleet_api(request.param, tmp_path_factory.mktemp(request.param)) as a:
        yield a


def _seed_by_hand(api: FleetApi) -> None:
    """The set the expected figures below were worked out from (NOW: 2025-04-15 12:00)."""
    with api.engine.begin() as conn:
        clear_cases(conn)
        # A: Old Town G-0101, March: closed after 10, 20, 30, 40, 5 h (deadline 24 h), rework
        # on two; one still open. A citizen's report, with everything personal filled in.
        a = utc("2025-03-03T08:00")
        for hours, rework in ((10, 0), (20, 1), (30, 0), (40, 2), (5, 0)):
            seed_case(conn, a, status="closed", closed_after_h=hours, rework_count=rework,
                      **PERSONAL)  # fmt: skip
        seed_case(conn, a, **PERSONAL)
        # B: Old Town G-0102, March: closed after 1, 2, 3, 4, 100 h; one cancelled, one open.
        b = utc("2025-03-10T08:00")
        for hours in (1, 2, 3, 4, 100):
            seed_case(conn, b, status="closed", closed_after_h=hours, grid_cell="G-0102")
        seed_case(conn, b, status="cancelled", closed_after_h=2, grid_cell="G-0102")
        seed_case(conn, b, status="in_progress", grid_cell="G-0102")
        # C: Harbour G-0201, March: 4 cases (suppressed), closed after 10, 10, 10, 50 h.
        c = utc("2025-03-12T08:00")
        for hours, rework in ((10, 1), (10, 0), (10, 0), (50, 0)):
            seed_case(conn, c, status="closed", closed_after_h=hours, rework_count=rework,
                      grid_cell="G-0201", **TRAFFIC)  # fmt: skip
        # D: Harbour G-0201, April: 5 cases but 2 closed (suppressed), after 6 and 60 h.
        d = utc("2025-04-02T08:00")
        for hours in (6, 60):
            seed_case(conn, d, status="closed", closed_after_h=hours, grid_cell="G-0201",
                      **TRAFFIC)  # fmt: skip
        for _ in range(3):
            seed_case(conn, d, grid_cell="G-0201", **TRAFFIC)
        # E: Harbour G-0202, April: 5 open cases.
        for _ in range(5):
            seed_case(conn, utc("2025-04-03T08:00"), grid_cell="G-0202", **TRAFFIC)
        # A drill in a cell and district of its own: 8 closed cases, never counted.
        for hours in range(1, 9):
            seed_case(conn, utc("2025-03-05T08:00"), status="closed", closed_after_h=hours,
                      drill=True, district="Drill Town", grid_cell="G-0999")  # fmt: skip
        # Before the 3 months asked for: never counted.
        for _ in range(5):
            seed_case(conn, utc("2025-01-10T08:00"), status="closed", closed_after_h=1)


def _figures(**kw: Any) -> dict[str, Any]:
    return {
        "filed": kw["filed"],
        "closed": kw["closed"],
        "on_time_rate": kw.get("on_time"),
        "median_hours_to_close": kw.get("median"),
        "rework_rate": kw.get("rework"),
    }


OLD_TOWN = _figures(filed=13, closed=10, on_time=0.7, median=7.5, rework=0.2)
HARBOUR = _figures(filed=14, closed=6, on_time=0.6667, median=10.0, rework=0.1667)


def test_the_figures_are_those_worked_out_by_hand(api: FleetApi) -> None:
    _seed_by_hand(api)
    with api.engine.connect() as conn:
        got = public_figures(conn, api.services.catalogue, NOW, months=3, weeks=8, k=5)
    cells = [(r["district"], r["grid_cell"], r["category_code"], r["month"]) for r in got["rows"]]
    assert cells == [
        ("Old Town", "G-0101", "0101", "2025-03"),
        ("Old Town", "G-0102", "0101", "2025-03"),
        ("Harbour", "G-0202", "0302", "2025-04"),
    ]
    # On time: 10, 20, 5 h of 5 closed; median of 5, 10, 20, 30, 40 h; rework 2 of 5.
    assert got["rows"][0] == {
        "district": "Old Town", "grid_cell": "G-0101", "category_code": "0101",
        "category": GARBAGE, "month": "2025-03",
        **_figures(filed=6, closed=5, on_time=0.6, median=20.0, rework=0.4),
    }  # fmt: skip
    # The cancelled case is filed but neither closed nor in a rate; 100 h is late.
    assert got["rows"][1] == {
        **got["rows"][1],
        **_figures(filed=7, closed=5, on_time=0.8, median=3.0, rework=0.0),
    }
    assert got["rows"][2] == {
        "district": "Harbour", "grid_cell": "G-0202", "category_code": "0302",
        "category": PARKING, "month": "2025-04", **_figures(filed=5, closed=0),
    }  # fmt: skip
    # Totals from every case, suppressed rows' too: Harbour's on time are 10, 10, 10, 6 h of
    # 6, its median that of 6, 10, 10, 10, 50, 60 h; Old Town's median of 1..5, 10..40, 100.
    assert got["districts"] == [{"district": "Harbour", **HARBOUR}, {"district": "Old Town", **OLD_TOWN}]  # fmt: skip
    assert got["categories"] == [
        {"category_code": "0101", "category": GARBAGE, **OLD_TOWN},
        {"category_code": "0302", "category": PARKING, **HARBOUR},
    ]
    # The scorecard: street cleaning (and Old Town) has 2 overdue open cases: suppressed.
    harbour = {
        "cases": 14, "closed": 6, "on_time_rate": 0.6667, "rework_rate": 0.1667,
        "overdue_open": 8, "first_time_pass_rate": 0.8333,
    }  # fmt: skip
    assert got["scorecard"] == {
        "by_department": [{"group": "traffic enforcement", **harbour}],
        "by_district": [{"group": "Harbour", **harbour}],
    }
    assert got["suppressed"] == {
        "rows": 2, "districts": 0, "categories": 0, "by_department": 1, "by_district": 1,
    }  # fmt: skip
    assert (got["since"], got["min_count"]) == ("2025-02", 5)


def _hunt(node: Any, where: str = "") -> list[str]:
    """Everything in the figures that must not be there: forbidden keys, counts of 1..4."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in FORBIDDEN_KEYS:
                found.append(f"{where}.{key}: a personal or free-text field")
            if key in COUNT_KEYS and isinstance(value, int) and 0 < value < 5:
                found.append(f"{where}.{key} = {value}: a count below 5")
            if key != "suppressed":
                found += _hunt(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _hunt(item, f"{where}[{i}]")
    return found


def _seed_this_month(api: FleetApi) -> None:
    """Cases of this month (so the API's default 12 months count them): a citizen cell that
    may be published, a small cell, one with 2 closed, and a large drill cell."""
    start = month_start(time.time(), 1) + 60
    with api.engine.begin() as conn:
        clear_cases(conn)
        for hours in (1, 2, 3, 30, 40):
            seed_case(conn, start, status="closed", closed_after_h=hours, **PERSONAL)
        seed_case(conn, start, status="dispatched", **PERSONAL)
        for _ in range(3):
            seed_case(conn, start, grid_cell="G-0102", assignee="Officer Smith")
        for i in range(6):
            closed: dict[str, Any] = {"status": "closed", "closed_after_h": 1} if i < 2 else {}
            seed_case(conn, start, grid_cell="G-0103", **closed)
        for hours in range(1, 13):
            seed_case(conn, start, status="closed", closed_after_h=hours, drill=True,
                      district="Drill Town", grid_cell="G-0999", department="drill squad",
                      **PERSONAL)  # fmt: skip


def test_the_feed_has_no_small_counts_no_personal_data_no_drills(api: FleetApi) -> None:
    _seed_this_month(api)
    anon = TestClient(api.clients["viewer"].app)
    r = anon.get("/public/v1/figures.json")
    assert r.status_code == 200, r.text
    feed = r.json()
    assert _hunt(feed) == []
    text = r.text
    for secret in (*FORBIDDEN_TEXT, "Drill Town", "G-0999", "drill squad"):
        assert secret not in text, secret
    # Something is published (the hunt must look at real rows): G-0101 with 6 cases.
    assert [(x["grid_cell"], x["filed"], x["closed"]) for x in feed["rows"]] == [("G-0101", 6, 5)]
    assert feed["suppressed"]["rows"] == 2  # G-0102 (3 cases), G-0103 (2 of 6 closed)
    assert r.headers["cache-control"] == "public, max-age=60"

    feed_csv = anon.get("/public/v1/figures.csv")
    assert feed_csv.status_code == 200
    assert feed_csv.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(feed_csv.text)))
    assert list(lines[0]) == [*ROW_FIELDS, *FIGURE_FIELDS]
    expected = [{k: "" if v is None else str(v) for k, v in row.items()} for row in feed["rows"]]
    assert lines == expected
    for secret in (*FORBIDDEN_TEXT, "Drill Town", "G-0999"):
        assert secret not in feed_csv.text, secret


def test_the_hunt_finds_what_it_looks_for() -> None:
    """The hunt itself can fail: a leak of each kind is found."""
    leaks = {"rows": [{"filed": 3, "description": "x"}], "scorecard": {"a": [{"cases": 1}]}}
    assert len(_hunt(leaks)) == 3
    assert _hunt({"suppressed": {"rows": 2}, "rows": [{"filed": 0, "closed": 5}]}) == []


def test_min_count_and_the_switch_come_from_the_config(api: FleetApi) -> None:
    _seed_this_month(api)
    anon = TestClient(api.clients["viewer"].app)
    saved = api.services.grid
    try:
        api.services.grid = GridConfig(public=PublicConfig(min_count=2))
        cells = {x["grid_cell"] for x in anon.get("/public/v1/figures.json").json()["rows"]}
        assert cells == {"G-0101", "G-0102", "G-0103"}  # 3 cases, and 2 closed, pass k = 2
        api.services.grid = GridConfig(public=PublicConfig(enabled=False))
        off = anon.get("/public/v1/figures.json")
        assert off.status_code == 404
        assert "grid.public.enabled" in off.json()["detail"]
    finally:
        api.services.grid = saved
    assert anon.get("/public/v1/figures.json?months=0").status_code == 422


def test_the_public_page_loads_without_login(api: FleetApi) -> None:
    anon = TestClient(api.clients["viewer"].app)
    page = anon.get("/ui/public.html")
    assert page.status_code == 200
    assert 'src="public.js"' in page.text
    script = anon.get("/ui/public.js")
    assert script.status_code == 200
    assert "/public/v1/figures.json" in script.text
    assert "/api/" not in script.text  # it asks nothing that needs a login
    assert json.loads(anon.get("/public/v1/figures.json").text)["min_count"] == 5
