"""The review UI in headless Chromium against a real aggregator (uvicorn on loopback, SQLite):
it offers only what the logged-in role may do, shows the server's message when an action is
refused, and shows a closed crowd's peak rather than its end value."""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from aggregator.store import EventStore, Received
from contract import wire
from contract.vocabulary import CROWDING, LITTER, PHASES
from tests.apihelpers import CHROMIUM_ARGS, make_services, serving

# Slow: headless Chromium against a real aggregator.
pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CROWD_PEAK = 12.0


@dataclass(frozen=True)
class Site:
    url: str
    crowd_id: str
    litter_ids: list[str]  # one per test that reviews an event, on camera cam-<index>

    def client(self, role: str) -> httpx.Client:
        """An API client logged in as the account named after ``role``."""
        c = httpx.Client(base_url=self.url, timeout=30)
        r = c.post("/api/v1/auth/login", json={"username": role, "password": f"{role}-password"})
        r.raise_for_status()
        c.headers["Authorization"] = f"Bearer {r.json()['token']}"
        return c


def _event(
    event_id: str, type_: str, camera: str, phase_i: int, value: float, peak: float | None
) -> wire.WireEvent:
    t0 = 1_000.0
    return wire.WireEvent(
        event_id=event_id,
        type=type_,
        phase=PHASES[phase_i],
        camera=camera,
        zone="zone-a",
        rule="r",
        ts=t0 + 10 * phase_i,
        started_ts=t0,
        value=value,
        unit="persons" if type_ == CROWDING else "objects",
        severity="medium",
        boxes=((100, 120, 180, 300),),
        labels=("person",),
        stage=None,
        peak=peak,
        created_wall=time.time(),
    )


def _seed(store: EventStore) -> tuple[str, list[str]]:
    """A crowd that grew to CROWD_PEAK persons and ended at 0, and three open litter events."""
    crowd = str(uuid.uuid4())
    msgs = [
        _event(crowd, CROWDING, "cam-crowd", 0, 4.0, None),
        _event(crowd, CROWDING, "cam-crowd", 1, CROWD_PEAK, CROWD_PEAK),
        _event(crowd, CROWDING, "cam-crowd", 2, 0.0, CROWD_PEAK),
    ]
    litter = [str(uuid.uuid4()) for _ in range(3)]
    msgs += [_event(eid, LITTER, f"cam-{i}", 0, 1.0, None) for i, eid in enumerate(litter)]
    store.ingest([Received("box", seq, ev) for seq, ev in enumerate(msgs, start=1)])
    return crowd, litter


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("review-ui")
    services = make_services(root)
    crowd, litter = _seed(EventStore(services.engine))
    with serving(services, "review-ui") as url:
        yield Site(url, crowd, litter)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page_errors() -> list[str]:
    return []


def _login(browser: Browser, site: Site, role: str, errors: list[str]) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site.url}/")
    page.fill("input[name=username]", role)
    page.fill("input[name=password]", f"{role}-password")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#who")).to_contain_text(f"{role} ({role})")
    return page


def _open_event(page: Page, camera: str) -> None:
    page.fill("#filters input[name=camera]", camera)
    page.click("#filters button[type=submit]")
    items = page.locator("#queue li[data-event]")
    expect(items).to_have_count(1)
    items.first.click()
    expect(page.locator("#detail h2")).to_be_visible()


def _open_first_case(page: Page) -> None:
    page.goto(f"{page.url.split('#')[0]}#cases")
    page.locator("#cases tbody tr").first.click()
    expect(page.locator("#case-detail h2")).to_contain_text("Case #")


def test_viewer_is_offered_no_review_or_case_actions(
    site: Site, browser: Browser, page_errors: list[str]
) -> None:
    operator = site.client("operator")
    case_id = operator.post(f"/api/v1/events/{site.litter_ids[0]}/confirm", json={}).json()[
        "case_id"
    ]
    me = site.client("viewer").get("/api/v1/auth/me").json()
    assert me["can"]["review"] is False
    page = _login(browser, site, "viewer", page_errors)
    actions: list[str] = []
    page.on("request", lambda r: actions.append(r.url) if r.method in ("POST", "PATCH") else None)
    # The type filter lists what the server knows, camera_offline included.
    options = page.locator("#filters select[name=type] option")
    expect(options).to_have_count(len(me["event_types"]) + 1)
    assert options.all_inner_texts()[1:] == me["event_types"]
    assert "camera_offline" in me["event_types"]
    expect(page.locator("#keys-hint")).not_to_contain_text("confirm")

    _open_event(page, "cam-1")
    expect(page.locator("#detail")).to_contain_text("litter")
    expect(page.locator("#confirm-btn, #dismiss-btn, #detail .actions button")).to_have_count(0)
    page.keyboard.press("c")
    page.keyboard.press("d")
    expect(page.locator("#dismiss-dialog")).to_be_hidden()
    page.keyboard.press("1")
    # A request the keys had started would have been sent before this later one.
    with page.expect_request(re.compile(r"/api/v1/events/[^/?]+$")):
        page.keyboard.press("Enter")
    assert actions == []
    event = operator.get(f"/api/v1/events/{site.litter_ids[1]}").json()
    assert (event["review_status"], event["audit"]) == ("new", [])

    _open_first_case(page)
    expect(page.locator("#case-detail")).to_contain_text(f"Case #{case_id}")
    expect(page.locator("#case-detail button[data-status], #case-note")).to_have_count(0)
    expect(page.locator("#alert")).to_be_hidden()
    assert actions == []
    assert page_errors == []
    page.close()


def test_operator_sees_the_servers_message_when_refused(
    site: Site, browser: Browser, page_errors: list[str]
) -> None:
    # A wrong password: the login form says what the server said.
    page = browser.new_page()
    page.goto(f"{site.url}/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", "not-the-password")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("wrong username or password")
    page.close()

    page = _login(browser, site, "operator", page_errors)
    _open_event(page, "cam-2")
    expect(page.locator("#dismiss-btn")).to_be_enabled()
    # Meanwhile another reviewer confirms it: dismissing it now is refused (409).
    other = site.client("supervisor")
    event_id = site.litter_ids[2]
    case_id = other.post(f"/api/v1/events/{event_id}/confirm", json={}).json()["case_id"]
    with page.expect_response(re.compile(r"/dismiss$")) as answer:
        page.keyboard.press("d")
        page.keyboard.press("2")
    assert answer.value.status == 409
    detail = answer.value.json()["detail"]
    assert str(case_id) in detail
    alert = page.locator("#alert")
    expect(alert).to_be_visible()
    expect(alert).to_have_attribute("role", "alert")
    expect(alert).to_contain_text(detail)
    # The page then shows the event as it is now.
    expect(page.locator("#detail h2 .tag")).to_have_text("confirmed")
    expect(page.locator("#dismiss-btn")).to_be_disabled()

    # A case move the server refuses: the operator's page still offers "dispatched" when a
    # supervisor has already moved the case on.
    page.goto(f"{site.url}/ui/#cases")
    page.locator(f"#cases tbody tr[data-case='{case_id}']").click()
    operator = site.client("operator")
    case = operator.get(f"/api/v1/cases/{case_id}").json()
    allowed = case["transitions"]
    assert case["status"] == "filed"
    assert "dispatched" in allowed
    buttons = page.locator("#case-detail button[data-status]")
    expect(buttons).to_have_count(len(allowed))
    assert [b.get_attribute("data-status") for b in buttons.all()] == allowed
    assert "cancelled" not in allowed  # a supervisor's move, not offered to an operator
    for status in ("dispatched", "in_progress"):
        r = other.patch(f"/api/v1/cases/{case_id}", json={"status": status})
        assert r.status_code == 200, r.text
    with page.expect_response(re.compile(rf"/api/v1/cases/{case_id}$")) as refused:
        page.click("#case-detail button[data-status=dispatched]")
    assert refused.value.request.method == "PATCH"
    assert refused.value.status == 409
    expect(alert).to_contain_text(refused.value.json()["detail"])
    shots = os.environ.get("STREETWATCH_SCREENSHOT_DIR")
    if shots:
        page.screenshot(path=str(Path(shots) / "ui-review-refused.png"))
    # Refreshed: now the moves from in_progress that the server allows this operator.
    now_allowed = operator.get(f"/api/v1/cases/{case_id}").json()["transitions"]
    expect(page.locator("#case-detail h2 .tag")).to_have_text("in_progress")
    expect(buttons).to_have_count(len(now_allowed))
    assert page_errors == []
    page.close()


def test_a_closed_crowd_shows_its_peak(
    site: Site, browser: Browser, page_errors: list[str]
) -> None:
    event = site.client("viewer").get(f"/api/v1/events/{site.crowd_id}").json()
    assert (event["status"], event["value"], event["peak"]) == ("closed", 0.0, CROWD_PEAK)
    page = _login(browser, site, "operator", page_errors)
    page.select_option("#filters select[name=type]", CROWDING)
    _open_event(page, "cam-crowd")
    item = page.locator("#queue li[data-event] .measure")
    expect(item).to_contain_text("peak 12 persons")
    expect(item).not_to_contain_text(" 0 persons")
    expect(page.locator("#detail .measure")).to_have_text("peak 12 persons")
    expect(page.locator("#confirm-btn")).to_be_enabled()
    expect(page.locator("#keys-hint")).to_contain_text("c confirm, d dismiss")
    shots = os.environ.get("STREETWATCH_SCREENSHOT_DIR")
    if shots:
        page.screenshot(path=str(Path(shots) / "ui-review.png"))
    assert page_errors == []
    page.close()
