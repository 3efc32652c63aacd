"""`edge demo`, headless: one command brings up the UI and events from the samples arrive."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import REPO
from tests.deploy import free_port

# The acceptance: the UI shows events from the samples within one minute of the command.
EVENTS_WITHIN_S = 60.0


def test_demo_brings_up_the_ui_with_sample_events(tmp_path: Path, assets: Path) -> None:
    http, ingest, metrics = free_port(), free_port(), free_port()
    started = time.monotonic()
    out = (tmp_path / "demo.out").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--port",
            str(http),
            "--ingest-port",
            str(ingest),
            "--metrics-port",
            str(metrics),
        ],
        cwd=tmp_path,  # not the checkout: the demo finds its files by itself
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = None
        while time.monotonic() - started < EVENTS_WITHIN_S:
            assert proc.poll() is None, Path(out.name).read_text()
            line = re.search(r"Review UI: (\S+)\s+\(user (\S+), password (\S+)\)", _read(out))
            if line:
                break
            time.sleep(0.2)
        assert line, f"no UI address printed: {_read(out)}"
        ui, user, password = line.groups()
        assert ui == f"http://127.0.0.1:{http}/ui/"
        page = httpx.get(ui, timeout=10)
        assert page.status_code == 200
        assert "Streetwatch" in page.text

        client = httpx.Client(base_url=f"http://127.0.0.1:{http}", timeout=10)
        r = client.post("/api/v1/auth/login", json={"username": user, "password": password})
        assert r.status_code == 200, r.text
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
        assert r.json()["user"]["role"] == "operator"

        found: dict[str, int] = {}
        while time.monotonic() - started < EVENTS_WITHIN_S:
            items = client.get("/api/v1/events", params={"limit": 100}).json()["items"]
            found = {}
            for e in items:
                found[e["type"]] = found.get(e["type"], 0) + 1
            if {"crowding", "illegal_parking"} <= found.keys():
                break
            time.sleep(1)
        elapsed = time.monotonic() - started
        assert {"crowding", "illegal_parking"} <= found.keys(), (
            f"after {elapsed:.0f} s the UI has {found}; demo output: {_read(out)[-2000:]}"
        )
        assert "camera_offline" not in found, found
        cams = httpx.get(f"http://127.0.0.1:{metrics}/readyz", timeout=5).json()["cameras"]
        assert sorted(cams) == ["bottle-table", "one-by-one", "sample-kerb", "sample-square"]
        assert set(cams.values()) == {"online"}
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    text = _read(out)
    assert code == 0, text[-3000:]
    assert "Traceback" not in text


def _read(f: object) -> str:
    return Path(f.name).read_text(errors="replace")  # type: ignore[attr-defined]


def test_demo_is_the_readme_main_command() -> None:
    readme = (REPO / "README.md").read_text()
    assert ".venv/bin/edge demo" in readme
