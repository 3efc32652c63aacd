"""Acceptance: evidence clips from a real replay reach the aggregator and play in Chromium."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import httpx
import pytest

from tests.apihelpers import CHROMIUM_ARGS
from tests.conftest import REPO
from tests.deploy import Deployment, database
from tests.system.evidencehelpers import video_state

# Slow: replays into a real aggregator, and headless Chromium.
pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CAMERA = REPO / "sample_videos" / "bottle-detection.camera.yaml"


@pytest.fixture(scope="module")
def delivered(
    tmp_path_factory: pytest.TempPathFactory, video_path: Callable[[str], Path]
) -> Iterator[tuple[Deployment, list[dict]]]:
    root = tmp_path_factory.mktemp("evidence")
    with database("sqlite", root) as url:
        d = Deployment(root, url)
        try:
            cfg = d.add_edge("box-clips")
            d.start_aggregator()
            res = d.spawn(
                "edge",
                "replay",
                str(video_path("bottle-detection.mp4")),
                "-c",
                str(CAMERA),
                "--fast",
                "-q",
                "--edge-config",
                cfg.name,
                log="replay.log",
            )
            assert res.wait(300) == 0, (root / "replay.log").read_text()[-3000:]
            events = d.client().get("/api/v1/events", params={"limit": 100}).json()["items"]
            yield d, events
        finally:
            d.stop_all()


def _media(d: Deployment, media_id: str, **kw: object) -> httpx.Response:
    return d.client().get(f"/api/v1/media/{media_id}", **kw)  # type: ignore[arg-type]


def test_every_event_has_its_clip_and_snapshot(
    delivered: tuple[Deployment, list[dict]], tmp_path: Path
) -> None:
    d, events = delivered
    assert len(events) == 4
    for ev in events:
        assert (ev["clip_status"], ev["snapshot_status"]) == ("available", "available")
        clip = _media(d, ev["clip_id"])
        assert clip.status_code == 200
        assert clip.headers["content-type"] == "video/mp4"
        snap = _media(d, ev["snapshot_id"])
        assert snap.headers["content-type"] == "image/jpeg"
        assert snap.content[:3] == b"\xff\xd8\xff"
        path = tmp_path / f"{ev['event_id']}.mp4"
        path.write_bytes(clip.content)
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            assert stream.codec_context.name == "h264"
            frames = [f.time for f in c.decode(stream)]
        assert frames[0] == 0.0
        assert len(frames) > 30


def test_clips_start_at_the_keyframe_before_the_pre_roll(
    delivered: tuple[Deployment, list[dict]], video_path: Callable[[str], Path]
) -> None:
    """Clips are the file's own packets, remuxed: they begin at the last keyframe at or before
    the configured pre-roll (5 s, the default), so at least that far before the event."""
    d, events = delivered
    from sqlalchemy import create_engine, select

    from aggregator.db.models import MEDIA, MESSAGES

    with av.open(str(video_path("bottle-detection.mp4"))) as c:
        stream = c.streams.video[0]
        keys_s = [float(p.pts * p.time_base) for p in c.demux(stream) if p.size and p.is_keyframe]
    engine = create_engine(d.db_url)
    with engine.connect() as conn:
        for ev in events:
            start_msg = conn.execute(
                select(MESSAGES.c.ts).where(
                    MESSAGES.c.event_id == ev["event_id"], MESSAGES.c.phase == "start"
                )
            ).scalar_one()
            clip = conn.execute(select(MEDIA).where(MEDIA.c.media_id == ev["clip_id"])).one()
            keyframe_s = max(k for k in keys_s if k <= start_msg - 5.0 + 1e-6)
            assert clip.start_ts == pytest.approx(keyframe_s, abs=1e-3)
            assert clip.start_ts <= start_msg - 5.0 + 1e-6
    engine.dispose()


def test_range_requests_for_seeking(delivered: tuple[Deployment, list[dict]]) -> None:
    d, events = delivered
    full = _media(d, events[0]["clip_id"]).content
    part = _media(d, events[0]["clip_id"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == full[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(full)}"


def test_clip_plays_in_headless_chromium(delivered: tuple[Deployment, list[dict]]) -> None:
    from playwright.sync_api import sync_playwright

    d, events = delivered
    from sqlalchemy import create_engine, select

    from aggregator.db.models import MEDIA

    engine = create_engine(d.db_url)
    with engine.connect() as conn:
        clips = {
            r.media_id: r.duration_s
            for r in conn.execute(select(MEDIA).where(MEDIA.c.kind == "clip"))
        }
    engine.dispose()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        context = browser.new_context()
        token = d.client().headers["Authorization"].removeprefix("Bearer ")
        context.add_cookies([{"name": "sw_session", "value": token, "url": d.url}])
        page = context.new_page()
        page.goto(f"{d.url}/healthz")  # same origin as the media
        for ev in events:
            duration = video_state(page, f"/api/v1/media/{ev['clip_id']}")
            assert duration[0] >= 3  # HAVE_FUTURE_DATA: playable
            assert abs(duration[1] - clips[ev["clip_id"]]) <= 1.0
        browser.close()


def test_review_ui_in_headless_chromium(delivered: tuple[Deployment, list[dict]]) -> None:
    """Log in, filter, open an event, play its clip, confirm it into a case, dispatch the
    case, dismiss another event with a reason; the API then shows all of it."""
    import os

    from playwright.sync_api import expect, sync_playwright

    d, events = delivered
    admin = d.client()  # makes the admin account
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{d.url}/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", d.ADMIN_PASSWORD)
        page.click("#login-form button[type=submit]")
        expect(page.locator("#who")).to_contain_text("admin (admin)")
        page.select_option("select[name=type]", "litter")
        page.check("input[name=has_clip]")
        page.click("#filters button[type=submit]")
        items = page.locator("#queue li[data-event]")
        expect(items).to_have_count(len(events))
        first_id = items.nth(0).get_attribute("data-event")
        items.nth(0).click()
        video = page.locator("#clip")
        expect(video).to_be_visible()
        page.evaluate("document.getElementById('clip').play()")
        page.wait_for_function(
            "() => document.getElementById('clip').currentTime > 0.5", timeout=15000
        )
        shots = os.environ.get("STREETWATCH_SCREENSHOT_DIR")
        if shots:
            page.evaluate("document.getElementById('clip').pause()")
            page.screenshot(path=f"{shots}/review.png")
        page.keyboard.press("c")
        expect(page.locator("#detail")).to_contain_text("Confirmed into case #")
        page.goto(f"{d.url}/ui/#cases")
        page.locator("#cases tbody tr").first.click()
        page.click("#case-detail button[data-status=dispatched]")
        expect(page.locator("#cases tbody tr").first).to_contain_text("dispatched")
        page.goto(f"{d.url}/ui/#queue")
        page.select_option("select[name=type]", "litter")
        page.click("#filters button[type=submit]")
        expect(items).to_have_count(len(events) - 1)  # the confirmed one left the "new" queue
        second_id = items.nth(0).get_attribute("data-event")
        items.nth(0).click()
        expect(page.locator("#dismiss-btn")).to_be_enabled()
        page.keyboard.press("d")
        page.keyboard.press("2")
        expect(page.locator("#detail .tag.dismissed").first).to_be_visible()
        browser.close()
    assert errors == []
    first = admin.get(f"/api/v1/events/{first_id}").json()
    assert first["review_status"] == "confirmed"
    case = admin.get(f"/api/v1/cases/{first['case_id']}").json()
    assert case["status"] == "dispatched"
    assert [a["action"] for a in case["audit"]] == ["file_case", "update_case"]
    assert [a["username"] for a in case["audit"]] == ["admin", "admin"]
    second = admin.get(f"/api/v1/events/{second_id}").json()
    assert (second["review_status"], second["review_reason"]) == ("dismissed", "duplicate")
    assert second["audit"][-1]["action"] == "dismiss"
