"""Issue 15, verification against the real pipeline: a real `edge run` box replays the parking
sample as a live camera (a looped file, at the worker's rate, with wall-clock times) under a
real `aggregator serve`. Its car at the kerb raises an illegal-parking event, confirmed into
a case. Verification while the car stands there says still present, with a snapshot that
downloads as a JPEG, and the case cannot be verified; then the camera's view changes to the
empty kerb (the looped file is switched to the clip's empty street, which plays from its next
pass; the box's own rule ends the parking event when the car is gone) and verification says
cleared, so the case is verified and closed, all pressed in Chromium. Both verdicts come from the
edge's detector, tracker and zone, through V and W on its CurveZMQ connection."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.apihelpers import CHROMIUM_ARGS, chromium_executable
from tests.deploy import Deployment, free_port
from tests.fleet import REPO
from tests.system.test_worker import wait_for

# Slow: a real edge box with the real detector, and an aggregator.
pytestmark = pytest.mark.slow

CAMERA = "kerb-cam"
#: The generated parking clip (sample_videos/make_clips.py, 10 fps): the empty street until
#: 5 s, the car at the kerb from 5 s to 35 s, the empty street again until 40 s.
FPS = 10
PARKED_FRAMES = range(60, 120)
EMPTY_FRAMES = [*range(0, 50), *range(350, 360)]


def _cut(clip: Path, frames: list[int] | range, out: Path) -> Path:
    """The frames of clip (by index) as a video of their own."""
    cap = cv2.VideoCapture(str(clip))
    images = []
    index = 0
    wanted = set(frames)
    while True:
        ok, image = cap.read()
        if not ok:
            break
        if index in wanted:
            images.append(image)
        index += 1
    cap.release()
    assert len(images) == len(wanted), (clip, len(images))
    h, w = images[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (w, h))
    for image in images:
        writer.write(image)
    writer.release()
    return out


def _point(link: Path, target: Path) -> None:
    """Point the camera's file at target, atomically (the source reopens it every loop)."""
    tmp = link.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)


def _box(d: Deployment, live: Path) -> Path:
    """An edge box (with evidence uploads) whose one camera loops ``live``: the parking
    sample's kerb zone and rule, quicker to fire."""
    cfg = d.add_edge("box-v")
    cam = yaml.safe_load((REPO / "sample_videos" / "parking.camera.yaml").read_text())
    cam["id"] = CAMERA
    cam["detector"] = {"type": "onnx", "model": "yolox_nano", "threads": 1}
    cam["zones"][0]["rules"][0].update(warn_after_s=2, dwell_s=4)
    cam["clips"] = {"enabled": False}
    local = d.root / f"{CAMERA}.camera.yaml"
    local.write_text(yaml.safe_dump(cam))
    doc = yaml.safe_load(cfg.read_text())
    doc["cameras"] = [
        {"config": str(local), "detect_fps": 2.0, "source": {"uri": str(live), "loop": True}}
    ]
    doc["http"] = {"host": "127.0.0.1", "port": free_port()}
    cfg.write_text(yaml.safe_dump(doc))
    return cfg


def _snapshot(client: httpx.Client, media_id: str) -> bytes:
    """The verdict's snapshot once uploaded (the edge uploads it beside the answer)."""

    def fetch() -> bytes | None:
        r = client.get(f"/api/v1/media/{media_id}")
        return r.content if r.status_code == 200 else None

    body: bytes = wait_for(fetch, 20, f"snapshot {media_id}")
    return body


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open_case(page: Page, d: Deployment, case_id: int) -> None:
    page.goto(f"{d.url}/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", d.ADMIN_PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#who")).to_contain_text("admin")
    page.click("#nav a[data-view=cases]")
    page.click(f"#cases tbody tr[data-case='{case_id}']")
    expect(page.locator("#case-detail h2")).to_contain_text(f"Case #{case_id}")


def _click_move(page: Page, status: str) -> None:
    with page.expect_response(lambda r: r.request.method == "PATCH") as answer:
        page.click(f"#case-detail button[data-status={status}]")
    assert answer.value.status == 200, answer.value.text()
    expect(page.locator("#case-detail h2 .tag")).to_have_text(status)


def _verify_in_browser(page: Page, verdict: str) -> dict[str, Any]:
    """Press Verify by camera; wait for the edge's verdict and its snapshot on the page."""
    with page.expect_response(lambda r: r.url.endswith("/verify")) as asked:
        page.click("#verify-btn")
    assert asked.value.status == 202, asked.value.text()
    rid = asked.value.json()["request_id"]
    latest = page.locator("#case-extra li.verification").first
    expect(latest).to_have_attribute("data-verdict", verdict, timeout=30_000)
    snap = latest.locator("img.verify-snapshot")
    page.wait_for_function(
        "() => { const i = document.querySelector('#case-extra img.verify-snapshot');"
        " return i && i.complete && i.naturalWidth > 0; }",
        timeout=30_000,
    )
    expect(snap).to_be_visible()
    return {"request_id": rid, "text": latest.inner_text()}


def test_verification_by_camera_sees_the_car_and_then_the_empty_kerb(
    deployment: Deployment, generated_clips: Path, tmp_path: Path, browser: Browser
) -> None:
    """In Chromium, as an operator would: dispatch, handle, resolve, verify by camera (still
    present: closing refused), then after the car left verify again (cleared) and close."""
    parking = generated_clips / "parking.mp4"
    parked = _cut(parking, PARKED_FRAMES, tmp_path / "parked.mp4")
    empty = _cut(parking, EMPTY_FRAMES, tmp_path / "empty.mp4")
    live = tmp_path / "live.mp4"
    _point(live, parked)
    deployment.start_aggregator()
    cfg = _box(deployment, live)
    box = deployment.spawn("edge", "--log-level", "info", "run", "-c", str(cfg), log="box.log")
    client = deployment.client()
    started = time.monotonic()
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:

        def parked_event(status: str | None = None) -> str | None:
            items = client.get(
                "/api/v1/events", params={"camera": CAMERA, "type": "illegal_parking"}
            ).json()["items"]
            found = [e for e in items if status is None or e["status"] == status]
            return str(found[-1]["event_id"]) if found else None

        event_id = wait_for(parked_event, 60, "the car's illegal-parking event")
        case_id = int(client.post(f"/api/v1/events/{event_id}/confirm", json={}).json()["case_id"])
        _open_case(page, deployment, case_id)
        for step in ("dispatched", "in_progress", "resolved"):
            _click_move(page, step)

        seen = _verify_in_browser(page, "still_present")
        assert "still present" in seen["text"]
        got = client.get(f"/api/v1/cases/{case_id}/verifications").json()["items"][0]
        assert got["request_id"] == seen["request_id"]
        d = got["detail"]
        assert (d["edge"], d["rule"], d["mode"], d["needed"]) == (
            "box-v",
            "illegal_parking",
            "peacetime",
            1.0,
        )
        assert d["frames"] >= 3
        assert 2 * d["present_frames"] > d["frames"]
        assert d["peak"] >= 1
        assert _snapshot(client, got["snapshot_id"])[:3] == b"\xff\xd8\xff"
        with page.expect_response(lambda r: r.request.method == "PATCH") as refused:
            page.click("#case-detail button[data-status=verified]")
        assert refused.value.status == 409
        expect(page.locator("#alert-text")).to_contain_text("its camera still shows the problem")
        shots = os.environ.get("STREETWATCH_SCREENSHOT_DIR")
        if shots:
            page.locator("#case-detail").screenshot(
                path=str(Path(shots) / "verify.jpg"), quality=85
            )  # a photo: JPEG

        # The car leaves: the live file shows the empty street from its next pass, and the
        # box's parking rule ends the incident once the car is unseen for its absence_s.
        _point(live, empty)
        ended = wait_for(lambda: parked_event("closed"), 40, "the parking incident's end")
        assert ended == event_id
        gone = _verify_in_browser(page, "cleared")
        assert "cleared" in gone["text"]
        latest = client.get(f"/api/v1/cases/{case_id}/verifications").json()["items"][0]
        assert (latest["detail"]["present_frames"], latest["detail"]["peak"]) == (0, 0.0)
        assert latest["snapshot_id"] != got["snapshot_id"]
        for step in ("verified", "closed"):
            _click_move(page, step)
        trail = [a["action"] for a in client.get(f"/api/v1/cases/{case_id}").json()["audit"]]
        assert trail.count("verify") == 2
        assert "verify_override" not in trail
        expect(page.locator("#case-extra li.verification")).to_have_count(2)
        assert errors == []
        print(f"verified by camera end to end in {time.monotonic() - started:.1f} s")
    finally:
        page.close()
        box.terminate()
        box.wait(30)
    log = (deployment.root / "box.log").read_text(errors="replace")
    assert "verified kerb-cam/kerb (illegal_parking): still_present" in log, log[-3000:]
    assert "verified kerb-cam/kerb (illegal_parking): cleared" in log, log[-3000:]
