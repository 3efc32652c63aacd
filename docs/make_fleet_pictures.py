"""Regenerate docs/images/fleet.png and docs/images/zones.jpg, the README's fleet pictures.

Three real `edge run` boxes (the crowding, parking and one-by-one samples, looped) under one
`aggregator serve`, with central configs. The city is switched to emergency, so the crowding
camera fires at the lower count and uploads a snapshot; then headless Chromium photographs
the fleet page (with the mode banner) and the zone editor on that snapshot.

    .venv/bin/python docs/make_fleet_pictures.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from playwright.sync_api import Page, expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.paths import assets_dir, project_root
from tests.apihelpers import CHROMIUM_ARGS, chromium_executable
from tests.deploy import Deployment, database
from tests.fleet import Box, Fleet, camera_document

VIEWPORT = {"width": 1400, "height": 900}
WAIT_S = 240.0  # the boxes start, detect at 2 fps on shared cores, and upload a clip


def _clips(tmp: Path) -> list[Path]:
    out = tmp / "clips"
    out.mkdir()
    make = project_root() / "sample_videos" / "make_clips.py"
    subprocess.run([sys.executable, str(make), str(out)], check=True, capture_output=True)
    return [
        out / "crowding.mp4",
        out / "parking.mp4",
        assets_dir() / "videos" / "one-by-one-person-detection.mp4",
    ]


def _with_uploads(d: Deployment, box: Box) -> None:
    """The fleet rig's boxes send no evidence: give this one an upload token."""
    token = f"keys/{box.name}.token"
    d.run("aggregator", "edges", "token", "-c", "aggregator.yaml", box.name, "--out", token)
    doc = yaml.safe_load(box.config.read_text())
    doc["aggregator"].update(http_url=d.url, token_file=token)
    box.config.write_text(yaml.safe_dump(doc))


def _push_with_clips(fleet: Fleet) -> None:
    """Central configs as the fleet tests push them, with clips on: events bring snapshots."""
    for box in fleet.boxes:
        doc = camera_document(box.camera)
        doc["clips"] = {"enabled": True}
        r = fleet.admin.post(
            f"/api/v1/cameras/{box.camera}/configs", json={"config": doc, "reason": "pictures"}
        )
        r.raise_for_status()


def _wait_snapshot(fleet: Fleet, camera: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if fleet.admin.get(f"/api/v1/cameras/{camera}/snapshot").status_code == 200:
            return
        time.sleep(1.0)
    raise TimeoutError(f"camera '{camera}': no snapshot within {WAIT_S:.0f} s")


def _login(page: Page, d: Deployment) -> None:
    page.goto(f"{d.url}/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", d.ADMIN_PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#who")).to_contain_text("admin")


def _photograph(d: Deployment, out: Path, camera: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        _login(page, d)
        page.click("#nav a[data-view=fleet]")
        expect(page.locator("#fleet tr.camera .sync.in-sync")).to_have_count(3, timeout=60_000)
        page.screenshot(path=str(out / "fleet.png"))
        page.goto(f"{d.url}/ui/#camera/{camera}")
        expect(page.locator("#snapshot")).to_be_visible()
        expect(page.locator("#overlay polygon.zone")).to_have_count(1)
        page.wait_for_function("() => document.querySelector('#snapshot').naturalWidth > 0")
        page.screenshot(path=str(out / "zones.jpg"), quality=85)  # a photo: JPEG
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=project_root() / "docs" / "images")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name, database("sqlite", Path(tmp_name)) as url:
        tmp = Path(tmp_name)
        d = Deployment(tmp, url)
        fleet = Fleet(d)
        try:
            d.start_aggregator()
            for i, clip in enumerate(_clips(tmp)):
                _with_uploads(d, fleet.add_box(i, clip))
            _push_with_clips(fleet)
            for box in fleet.boxes:
                fleet.start(box)
            print("boxes started; switching the city to emergency", flush=True)
            fleet.switch("emergency", "river level at the flood mark")
            _wait_snapshot(fleet, fleet.boxes[0].camera)
            print("crowding snapshot uploaded; photographing", flush=True)
            _photograph(d, args.out, fleet.boxes[0].camera)
        except (httpx.HTTPError, TimeoutError):
            for box in fleet.boxes:
                print(f"--- {box.name}\n{fleet.log(box)}", file=sys.stderr)
            raise
        finally:
            for box in fleet.boxes:
                if box.proc is not None and box.proc.poll() is None:
                    fleet.stop(box)
            d.stop_all()
    print(f"wrote {args.out / 'fleet.png'} and {args.out / 'zones.jpg'}")


if __name__ == "__main__":
    main()
