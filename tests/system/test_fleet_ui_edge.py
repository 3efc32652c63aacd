"""The zone editor against a real box: an admin draws a zone in headless Chromium, saves it,
and the fleet page shows the box running the new version (reported by a real `edge run`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from contract.vocabulary import CROWDING
from tests.apihelpers import CHROMIUM_ARGS, chromium_executable
from tests.fleet import Fleet
from tests.system.test_fleet_ui import _draw, _open_camera, _save

# Slow: a real edge worker, an aggregator and Chromium.
pytestmark = pytest.mark.slow

ENTRANCE = [(0.55, 0.25), (0.95, 0.25), (0.95, 0.9), (0.55, 0.9)]


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        yield b
        b.close()


def test_a_zone_drawn_in_the_browser_runs_on_the_box(
    deployment: Any, generated_clips: Path, browser: Browser
) -> None:
    deployment.start_aggregator()
    fleet = Fleet(deployment)
    box = fleet.add_box(0, generated_clips / "crowding.mp4")
    first = fleet.push_configs()[box.camera]
    fleet.start(box)
    try:
        fleet.wait_cameras(
            lambda c: c["config_version"] == first and c["in_sync"], [box.camera], 90, "v1 runs"
        )
        errors: list[str] = []
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{deployment.url}/")
        deployment.client()  # makes the admin account
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", deployment.ADMIN_PASSWORD)
        page.click("#login-form button[type=submit]")
        expect(page.locator("#who")).to_contain_text("admin")

        overlay = _open_camera(page, deployment.url, box.camera)
        expect(page.locator("#overlay polygon.zone")).to_have_count(1)  # v1's square
        _draw(page, overlay, ENTRANCE, close="finish")
        card = page.locator("#zones .zone-card").nth(1)
        card.locator("input.zone-name").fill("entrance")
        card.locator(".rule-add").click()
        card.locator("select.preset").select_option(CROWDING)
        card.locator("input[data-param=min_count]").fill("3")
        assert _save(page, "watch the entrance too").status == 201

        page.click("#nav a[data-view=fleet]")
        row = page.locator(f"#fleet tr.camera[data-camera='{box.camera}']")
        expect(row.locator(".desired-version")).to_have_text(f"v{first + 1}")
        # Applied by the box, as its report says: the page refreshes every 2 s.
        expect(row.locator(".applied-version")).to_have_text(f"v{first + 1}", timeout=30_000)
        expect(row.locator(".sync")).to_have_class(re.compile(r"\bin-sync\b"))
        cams = fleet.cameras()
        assert cams[box.camera]["config_version"] == first + 1
        latest = fleet.admin.get(f"/api/v1/cameras/{box.camera}/configs/latest").json()
        assert [z["name"] for z in latest["config"]["zones"]] == ["square", "entrance"]
        assert errors == []
    finally:
        fleet.stop(box)
