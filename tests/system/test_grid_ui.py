"""The grid map in headless Chromium against a real aggregator (uvicorn on loopback, SQLite):
cells coloured by real cases filed through the API, camera markers, and a click on a cell
opening the cases board filtered to it."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright
from sqlalchemy import update

from aggregator.api.deps import Services
from aggregator.db.models import CAMERAS, CASES
from aggregator.grid.cells import Grid, read_grid
from aggregator.store import EventStore, Received
from contract import wire
from tests.apihelpers import CHROMIUM_ARGS, chromium_executable, make_services, serving

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
#: camera -> (lon, lat, the cell that contains it)
CAMERAS_AT = {
    "cam-old": (4.295, 52.085, "G-0102"),  # an overdue case
    "cam-river": (4.315, 52.105, "G-0304"),  # an open case on time
    "cam-quiet": (4.285, 52.095, "G-0201"),  # no case
}


@dataclass(frozen=True)
class Site:
    url: str
    cases: dict[str, int]  # camera -> its case id


def _login(url: str, role: str) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=30)
    r = c.post("/api/v1/auth/login", json={"username": role, "password": f"{role}-password"})
    r.raise_for_status()
    c.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return c


def _seed(services: Services, url: str) -> dict[str, int]:
    """The sample grid, three placed cameras and a case on two of them, filed through the API."""
    Grid(services.engine).import_cells(read_grid(REPO / "configs" / "grid.geojson"))
    with services.engine.begin() as conn:
        for cam, (lon, lat, _) in CAMERAS_AT.items():
            cell = Grid.cell_at(conn, lon, lat)
            assert cell is not None, cam
            conn.execute(
                CAMERAS.insert().values(camera_id=cam, lat=lat, lon=lon, grid_cell=cell.code)
            )
    operator = _login(url, "operator")
    cases = {}
    for seq, (cam, kind) in enumerate([("cam-old", "litter"), ("cam-river", "illegal_parking")]):
        ev = wire.WireEvent(
            event_id=str(uuid.uuid4()), type=kind, phase="start", camera=cam, zone="kerb",
            rule="r", ts=time.time(), started_ts=time.time(), value=1.0, unit="objects",
            severity="medium", boxes=(), labels=(), stage=None, peak=None,
            created_wall=time.time(),
        )  # fmt: skip
        EventStore(services.engine).ingest([Received("box", seq + 1, ev)])
        r = operator.post(f"/api/v1/events/{ev.event_id}/confirm", json={})
        assert r.status_code == 200, r.text
        cases[cam] = int(r.json()["case_id"])
    with services.engine.begin() as conn:  # the litter case ran past its deadline
        conn.execute(
            update(CASES)
            .where(CASES.c.id == cases["cam-old"])
            .values(deadline_at=time.time() - 60, stage_due_at=time.time() - 60)
        )
    return cases


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    services = make_services(tmp_path_factory.mktemp("grid-ui"))
    with serving(services, "grid-ui") as url:
        yield Site(url, _seed(services, url))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_map_colours_cells_by_cases_and_a_click_filters_the_board(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site.url}/")
    page.fill("input[name=username]", "viewer")
    page.fill("input[name=password]", "viewer-password")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#who")).to_contain_text("viewer")

    page.click("#nav a[data-view=map]")
    cells = page.locator("#map g.cell")
    expect(cells).to_have_count(12)
    for cam, (_, _, code) in CAMERAS_AT.items():
        kind = {"cam-old": "overdue", "cam-river": "open", "cam-quiet": "clear"}[cam]
        expect(page.locator(f"#map g.cell[data-cell='{code}']")).to_have_class(f"cell {kind}")
    expect(page.locator("#map g.cell.clear")).to_have_count(10)
    expect(page.locator("#map circle.camera-marker")).to_have_count(3)
    # The fill the stylesheet gives an overdue cell: red, not the default black.
    fill = page.locator("#map g.cell.overdue path").evaluate("p => getComputedStyle(p).fill")
    assert fill == "rgb(217, 83, 79)"
    # The README's picture: STREETWATCH_SCREENSHOT_DIR=docs/images pytest this file.
    shots = Path(os.environ.get("STREETWATCH_SCREENSHOT_DIR") or tmp_path)
    page.locator("main").screenshot(path=str(shots / "map.png"))

    page.click("#map g.cell[data-cell='G-0102']")
    expect(page).to_have_url(f"{site.url}/ui/#cases/grid_cell=G-0102")
    rows = page.locator("#cases tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-case", str(site.cases["cam-old"]))
    expect(rows.first.locator("td").nth(2)).to_have_text("G-0102")
    expect(rows.first.locator("td").last).to_have_class("error")  # past its deadline
    expect(page.locator("#case-filters input[name=grid_cell]")).to_have_value("G-0102")
    rows.first.click()
    expect(page.locator("#case-detail h2")).to_contain_text(
        "0101 city appearance / exposed garbage"
    )
    expect(page.locator("#case-detail .stages li.late")).to_contain_text("clear away")
    assert errors == []
