"""The fleet, zone editor and operating-mode views in headless Chromium against a real
aggregator (uvicorn on loopback, SQLite, one account per role): an admin draws a zone on a
camera's snapshot and saves it as a version, a bad zone shows the server's own message, a
supervisor switches the city to emergency and every view shows it, and a viewer is offered
no way to change anything."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import zmq
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from sqlalchemy import update

from aggregator.api.deps import Services
from aggregator.db.models import EDGES
from aggregator.fleet.inventory import write_inventory
from aggregator.store import EventStore, Received
from contract import wire
from contract.fleet import Applied, CameraStatus, Heartbeat
from contract.vocabulary import CROWDING
from tests.apihelpers import CHROMIUM_ARGS, chromium_executable, make_services, serving

# Slow: headless Chromium against a real aggregator.
pytestmark = pytest.mark.slow

EDGE = "box-1"
CAM_SNAP = "cam-snap"  # has a snapshot
CAM_BARE = "cam-bare"  # has none: the editor shows the placeholder
FRAME_WH = (640, 360)
#: A zone drawn clockwise (fractions of the picture), and one whose edges cross (a bow tie).
SQUARE = [(0.2, 0.2), (0.6, 0.2), (0.6, 0.7), (0.2, 0.7)]
BOW_TIE = [(0.1, 0.1), (0.5, 0.4), (0.5, 0.1), (0.1, 0.3)]  # lopsided: its area is not zero
FLOOD = "flood warning on the river"


@dataclass(frozen=True)
class Site:
    url: str

    def client(self, role: str) -> httpx.Client:
        """An API client logged in as the account named after ``role``."""
        c = httpx.Client(base_url=self.url, timeout=30)
        r = c.post("/api/v1/auth/login", json={"username": role, "password": f"{role}-password"})
        r.raise_for_status()
        c.headers["Authorization"] = f"Bearer {r.json()['token']}"
        return c


def _jpeg() -> bytes:
    w, h = FRAME_WH
    img = np.full((h, w, 3), 90, np.uint8)
    cv2.rectangle(img, (w // 4, h // 4), (w // 2, h // 2), (40, 160, 220), -1)
    ok, data = cv2.imencode(".jpg", img)
    assert ok, "OpenCV could not encode the test snapshot"
    return bytes(data)


def _seed_snapshot(services: Services, url: str) -> None:
    """An event of EDGE on CAM_SNAP with a snapshot uploaded over HTTP with the edge's token."""
    services.registry.add(EDGE, zmq.curve_keypair()[0].decode())
    token = services.registry.new_token(EDGE)
    event_id, snap_id = str(uuid.uuid4()), str(uuid.uuid4())
    ev = wire.WireEvent(
        event_id=event_id, type=CROWDING, phase="start", camera=CAM_SNAP, zone="zone-a",
        rule="r", ts=time.time(), started_ts=time.time(), value=6.0, unit="persons",
        severity="medium", boxes=((10, 10, 50, 90),), labels=("person",), stage=None,
        peak=None, created_wall=time.time(), snapshot_id=snap_id,
    )  # fmt: skip
    EventStore(services.engine).ingest([Received(EDGE, 1, ev)])
    body = _jpeg()
    r = httpx.put(
        f"{url}/api/v1/media/{snap_id}",
        content=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "image/jpeg",
            "X-Event-Id": event_id,
            "X-Media-Kind": "snapshot",
            "X-Content-SHA256": hashlib.sha256(body).hexdigest(),
        },
        timeout=30,
    )
    assert r.status_code == 201, r.text


def _seed_heartbeat(services: Services) -> None:
    """What an ingest replica writes of EDGE's heartbeat: the box (on central configs) and
    its cameras, both on no central config yet, in peacetime."""
    cams = tuple(CameraStatus(c, "online", 9.5, Applied(None)) for c in (CAM_SNAP, CAM_BARE))
    hb = Heartbeat(depth=0, software="test-1.0", source="central", cameras=cams)
    # An hour ahead: the box stays "heard" (not quiet) however long the tests take.
    heard_at = time.time() + 3600
    with services.engine.begin() as conn:
        write_inventory(conn, {EDGE: (hb, heard_at)}, {})
        conn.execute(
            update(EDGES)
            .where(EDGES.c.edge_id == EDGE)
            .values(
                software=hb.software,
                config_source=hb.source,
                last_heard_at=heard_at,
                outbox_depth=0,
            )
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root: Path = tmp_path_factory.mktemp("fleet-ui")
    services = make_services(root)
    with serving(services, "fleet-ui") as url:
        _seed_snapshot(services, url)
        _seed_heartbeat(services)
        yield Site(url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _login(browser: Browser, site: Site, role: str, errors: list[str]) -> Page:
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site.url}/")
    page.fill("input[name=username]", role)
    page.fill("input[name=password]", f"{role}-password")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#who")).to_contain_text(f"{role} ({role})")
    return page


def _open_camera(page: Page, base_url: str, camera: str) -> Locator:
    page.goto(f"{base_url}/ui/#camera/{camera}")
    expect(page.locator("#camera-title")).to_have_text(f"Camera {camera}")
    expect(page.locator("#camera-version")).not_to_be_empty()
    return page.locator("#overlay")


def _draw(page: Page, overlay: Locator, points: list[tuple[float, float]], close: str) -> None:
    """Add a zone by clicking its corners; close it by clicking the first point or Finish."""
    page.click("#zone-add")
    box = overlay.bounding_box()
    assert box is not None, "the zone overlay is not on the page"
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    for x, y in at:
        page.mouse.click(x, y)
    expect(page.locator("#overlay circle.draft-point")).to_have_count(len(points))
    if close == "first-point":
        page.mouse.click(*at[0])
    else:
        page.click("#zone-finish")
    expect(page.locator("#overlay circle.draft-point")).to_have_count(0)


def _save(page: Page, reason: str) -> Any:
    page.fill("#config-reason", reason)
    with page.expect_response(re.compile(r"/configs$")) as answer:
        page.click("#config-save-btn")
    assert answer.value.request.method == "POST"
    return answer.value


def test_admin_draws_a_zone_saves_and_rolls_back(site: Site, browser: Browser) -> None:
    errors: list[str] = []
    page = _login(browser, site, "admin", errors)
    overlay = _open_camera(page, site.url, CAM_SNAP)
    snapshot = page.locator("#snapshot")
    expect(snapshot).to_be_visible()
    assert snapshot.evaluate("i => [i.naturalWidth, i.naturalHeight]") == list(FRAME_WH)
    expect(page.locator("#camera-version")).to_contain_text("No central config yet")

    _draw(page, overlay, SQUARE, close="first-point")
    card = page.locator("#zones .zone-card")
    expect(card).to_have_count(1)
    expect(page.locator("#overlay polygon.zone")).to_have_count(1)
    card.locator(".rule-add").click()
    card.locator("select.preset").select_option(CROWDING)
    card.locator("input[data-param=min_count]").fill("3")
    assert _save(page, "first zone of the square").status == 201
    expect(page.locator("#config-versions tr.version")).to_have_count(1)
    expect(page.locator("#config-versions tr.version[data-version='1']")).to_contain_text("admin")
    expect(page.locator("#config-errors li")).to_have_count(0)

    admin = site.client("admin")
    latest = admin.get(f"/api/v1/cameras/{CAM_SNAP}/configs/latest").json()
    assert (latest["version"], latest["author"]) == (1, "admin")
    (zone,) = latest["config"]["zones"]
    assert zone["units"] == "normalized"
    assert len(zone["polygon"]) == 4
    for got, want in zip(zone["polygon"], SQUARE, strict=True):
        assert got == pytest.approx(want, abs=0.01), zone["polygon"]
    (rule,) = zone["rules"]
    assert (rule["preset"], rule["min_count"]) == (CROWDING, 3)

    # Rename, save as version 2, then roll back to version 1 (a new version 3).
    card.locator("input.zone-name").fill("plaza")
    assert _save(page, "a better name").status == 201
    expect(page.locator("#config-versions tr.version")).to_have_count(2)
    page.fill("#config-reason", "the old name was right")
    page.click("#config-versions button.rollback[data-version='1']")
    expect(page.locator("#config-versions tr.version")).to_have_count(3)
    latest = admin.get(f"/api/v1/cameras/{CAM_SNAP}/configs/latest").json()
    assert latest["version"] == 3
    assert [z["name"] for z in latest["config"]["zones"]] == [zone["name"]]
    expect(page.locator("#overlay text.zone-label")).to_have_text(zone["name"])

    # The fleet page shows each camera's applied and desired version as the API reports them.
    page.click("#nav a[data-view=fleet]")
    row = page.locator(f"#fleet tr.camera[data-camera='{CAM_SNAP}']")
    expect(row.locator(".desired-version")).to_have_text("v3")
    cam = next(
        c
        for e in admin.get("/api/v1/fleet").json()["edges"]
        for c in e["cameras"]
        if c["camera"] == CAM_SNAP
    )
    assert (cam["config_version"], cam["desired_config_version"]) == (None, 3)
    expect(row.locator(".applied-version")).to_have_text("none")
    expect(row.locator(".sync")).to_have_class(re.compile(r"\bsyncing\b"))
    expect(page.locator(f"#fleet [data-edge='{EDGE}'] .config-source")).to_have_text("central")
    row.locator("a.camera-link").click()
    expect(page.locator("#camera-title")).to_have_text(f"Camera {CAM_SNAP}")
    assert errors == []
    page.close()


def test_a_bad_zone_shows_the_servers_message(site: Site, browser: Browser) -> None:
    errors: list[str] = []
    page = _login(browser, site, "admin", errors)
    overlay = _open_camera(page, site.url, CAM_BARE)
    expect(page.locator("#no-snapshot")).to_have_text("no snapshot yet")
    _draw(page, overlay, BOW_TIE, close="finish")
    answer = _save(page, "crossing zone")
    assert answer.status == 422
    problems = page.locator("#config-errors li")
    expect(problems.first).to_be_visible()
    expect(problems.first).to_have_attribute("data-loc", "zones[0].polygon")
    expect(problems.first).to_contain_text("polygon crosses itself")
    expect(page.locator("#zones .zone-card[data-zone='0']")).to_have_class(re.compile("invalid"))
    versions = site.client("admin").get(f"/api/v1/cameras/{CAM_BARE}/configs")
    assert versions.status_code == 404 or versions.json() == [], versions.text
    assert errors == []
    page.close()


def test_supervisor_switches_the_city_to_emergency(site: Site, browser: Browser) -> None:
    errors: list[str] = []
    page = _login(browser, site, "supervisor", errors)
    page.click("#nav a[data-view=modes]")
    form = page.locator("#mode-switch")
    expect(form).to_be_visible()
    expect(page.locator("#mode-banner")).to_be_hidden()
    form.locator("select[name=mode]").select_option("emergency")
    form.locator("input[name=reason]").fill(FLOOD)
    with page.expect_response(re.compile(r"/api/v1/modes/switches$")) as answer:
        form.locator("button[type=submit]").click()
    assert answer.value.status == 201, answer.value.text()
    switch_id = answer.value.json()["id"]

    item = page.locator("#mode-banner .mode-item[data-mode=emergency]")
    expect(item).to_contain_text("EMERGENCY — city — since")
    expect(item).to_contain_text(f"by supervisor: {FLOOD}")
    expect(item).not_to_have_class(re.compile("drill"))
    audit = page.locator(f"#mode-audit tr[data-switch='{switch_id}']")
    expect(audit.locator(".actor")).to_have_text("supervisor")
    expect(audit.locator(".reason")).to_have_text(FLOOD)
    expect(
        page.locator(f"#modes-active li[data-switch='{switch_id}'] .cancel-switch")
    ).to_be_visible()
    # A drill on one camera is labelled DRILL, whatever its label says.
    form.locator("select[name=mode]").select_option("drill")
    form.locator("select[name=scope_kind]").select_option("camera")
    form.locator("input[name=scope_value]").fill(CAM_SNAP)
    form.locator("input[name=reason]").fill("evacuation exercise")
    with page.expect_response(re.compile(r"/api/v1/modes/switches$")) as drill:
        form.locator("button[type=submit]").click()
    assert drill.value.status == 201, drill.value.text()
    drill_item = page.locator("#mode-banner .mode-item.drill")
    expect(drill_item.locator(".mode-name")).to_contain_text("DRILL")
    expect(drill_item).to_contain_text(f"camera {CAM_SNAP}")
    # The banner stands over every view.
    page.click("#nav a[data-view=queue]")
    expect(item).to_be_visible()
    modes = site.client("viewer").get("/api/v1/modes").json()
    assert {(s["mode"], s["scope"], s["actor"]) for s in modes["active"]} >= {
        ("emergency", "city", "supervisor")
    }
    assert errors == []
    page.close()


def _ensure_zone(site: Site, camera: str) -> None:
    """A saved zone on camera, so the test also holds when run alone."""
    admin = site.client("admin")
    if admin.get(f"/api/v1/cameras/{camera}/configs/latest").status_code == 404:
        zone = {"name": "plaza", "units": "normalized", "polygon": SQUARE, "rules": []}
        config = {"id": camera, "zones": [zone]}
        r = admin.post(f"/api/v1/cameras/{camera}/configs", json={"config": config, "reason": "t"})
        assert r.status_code == 201, r.text


def test_viewer_is_offered_no_changes(site: Site, browser: Browser) -> None:
    _ensure_zone(site, CAM_SNAP)
    active = site.client("viewer").get("/api/v1/modes").json()["active"]
    errors: list[str] = []
    page = _login(browser, site, "viewer", errors)
    changes: list[str] = []
    page.on("request", lambda r: changes.append(r.url) if r.method != "GET" else None)
    _open_camera(page, site.url, CAM_SNAP)
    expect(page.locator("#overlay polygon.zone")).to_have_count(1)
    expect(page.locator("#zones .zone-card h3.zone-title")).to_have_count(1)
    page.locator("#overlay polygon.zone").click()
    expect(page.locator("#overlay circle.vertex")).to_have_count(0)
    for hidden in ("#config-save", "#draw-tools"):
        expect(page.locator(hidden)).to_be_hidden()
    expect(page.locator("#zones input, #zones button, button.rollback")).to_have_count(0)

    page.click("#nav a[data-view=modes]")
    expect(page.locator("#mode-audit tbody tr").first).to_be_visible()
    expect(page.locator("#mode-switch")).to_be_hidden()
    expect(page.locator("#mode-switch-none")).to_be_visible()
    expect(page.locator(".cancel-switch")).to_have_count(0)
    # The modes in force (the supervisor's test switched some) show to viewers too.
    expect(page.locator("#mode-banner .mode-item")).to_have_count(
        len([s for s in active if s["mode"] != "peacetime"])
    )
    assert changes == []
    assert errors == []
    page.close()
