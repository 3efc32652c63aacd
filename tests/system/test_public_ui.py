"""The open-supervision page in headless Chromium against a real aggregator (uvicorn on
loopback, SQLite): it loads with no login, draws on-time closure by district and the
scorecard from the real feed, and shows none of the drill cases or small counts seeded."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.aggregator.casehelpers import HOUR, seed_case
from tests.apihelpers import CHROMIUM_ARGS, chromium_executable, make_services, serving

pytestmark = pytest.mark.slow

DAY = 24 * HOUR


def _seed(services: object) -> None:
    """Over the last weeks: Old Town's street cleaning closes 8 of 10 on time, Harbour's
    traffic enforcement 3 of 6; 3 cases in Riverside (too few: suppressed); 7 drill cases."""
    engine = services.engine  # type: ignore[attr-defined]
    start = time.time() - 20 * DAY
    with engine.begin() as conn:
        for i in range(10):
            late = i >= 8
            seed_case(
                conn, start + i * DAY, status="closed", closed_after_h=30 if late else 10,
                deadline_h=24, rework_count=1 if i == 0 else 0,
            )  # fmt: skip
        for i in range(6):
            seed_case(
                conn, start + i * DAY, status="closed", closed_after_h=30 if i < 3 else 5,
                department="traffic enforcement", district="Harbour", grid_cell="G-0201",
                category_code="0302", category="street order / illegal parking",
            )  # fmt: skip
        for i in range(3):
            seed_case(  # open, not yet due: an overdue count of 3 would hide street cleaning
                conn, start + i * DAY, district="Riverside", grid_cell="G-0304", deadline_h=900
            )
        for i in range(7):
            seed_case(
                conn, start + i * DAY, status="closed", closed_after_h=1, district="Drillton",
                grid_cell="G-0303", drill=True,
            )  # fmt: skip


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    services = make_services(tmp_path_factory.mktemp("public-ui"))
    _seed(services)
    with serving(services, "public-ui") as base_url:
        yield base_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_public_page_loads_without_login_and_shows_the_scorecard(
    url: str, browser: Browser, tmp_path: Path
) -> None:
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1400, "height": 1100})  # no login at all
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/ui/public.html")
    expect(page.locator("#public-status")).not_to_contain_text("Loading")
    expect(page.locator("#public-status")).not_to_have_class("error")
    districts = page.locator("#public-districts")
    expect(districts).to_contain_text("Old Town")
    expect(districts).to_contain_text("Harbour")
    # The chart has a bar per published district.
    expect(page.locator("#public-chart svg rect.bar")).to_have_count(2)
    departments = page.locator("#scorecard-departments")
    expect(departments).to_contain_text("street cleaning")
    expect(departments).to_contain_text("traffic enforcement")
    old_town = page.locator("#scorecard-districts tr", has_text="Old Town")
    expect(old_town).to_contain_text("80")  # 8 of 10 closed on time: 80 %
    body = page.locator("body").inner_text()
    assert "Riverside" not in body  # 3 cases: under the k = 5 threshold
    assert "Drillton" not in body  # drills never count
    assert page.locator("#login-form").count() == 0
    shots = Path(os.environ.get("STREETWATCH_SCREENSHOT_DIR") or tmp_path)
    page.screenshot(path=str(shots / "public.png"), full_page=False)
    assert errors == []


def test_statistics_show_the_scorecard_with_weekly_trends(url: str, browser: Browser) -> None:
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/")
    page.fill("input[name=username]", "viewer")
    page.fill("input[name=password]", "viewer-password")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#who")).to_contain_text("viewer")
    page.click("#nav a[data-view=stats]")
    cleaning = page.locator("#scorecard tr[data-group='street cleaning']")
    expect(cleaning).to_contain_text("80 %")  # 8 of 10 on time
    expect(cleaning).to_contain_text("90 %")  # first-time pass: 1 of 10 reworked
    # A week with closures is a point of the trend line; two such weeks make a line.
    expect(cleaning.locator("svg.trend circle")).to_have_count(2)
    expect(cleaning.locator("svg.trend polyline")).to_have_count(1)
    page.select_option("#scorecard-by", "district")
    expect(page.locator("#scorecard tr[data-group='Harbour']")).to_contain_text("50 %")
    expect(page.locator("#scorecard tr[data-group='Drillton']")).to_have_count(0)
    href = page.locator("#scorecard-csv").get_attribute("href")
    assert href == "/api/v1/scorecard.csv?by=district&weeks=8"
    shots = os.environ.get("STREETWATCH_SCREENSHOT_DIR")
    if shots:
        page.locator("#scorecard").screenshot(path=str(Path(shots) / "scorecard.png"))
    assert errors == []
