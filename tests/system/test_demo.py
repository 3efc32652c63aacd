"""`edge demo`, headless: one command brings up the UI and events from the samples arrive;
a stop signal stops the edge first, then the aggregator, cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from edge.delivery.outbox import Outbox
from tests.conftest import REPO
from tests.deploy import free_port

# Slow: the whole demo: an aggregator and an edge worker.
pytestmark = pytest.mark.slow

# The acceptance: the UI shows events from the samples within one minute of the command.
EVENTS_WITHIN_S = 60.0
# Generous bound for the test to give up on a stop (the demo aims at under 5 s).
STOP_WITHIN_S = 60.0
# What the edge logs when it talks to an aggregator that is gone.
CONNECTION_ERROR = re.compile(
    r"connection refused|connecterror|connection error|connection reset|upload failed",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Demo:
    proc: subprocess.Popen[str]
    out: IO[str]
    demo_dir: Path
    http: int
    metrics: int
    started_mono_s: float

    def output(self) -> str:
        return Path(self.out.name).read_text(errors="replace")


@contextmanager
def running_demo(tmp_path: Path) -> Iterator[Demo]:
    """`edge demo` on free ports from tmp_path, in a session of its own so a test can signal
    its process group the way a terminal's Ctrl-C or `timeout` do. Whatever is left running
    at the end (the demo, its aggregator) is killed."""
    http, ingest, metrics = free_port(), free_port(), free_port()
    demo_dir = tmp_path / "demo"
    out = (tmp_path / "demo.out").open("w+")
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "edge.cli", "demo", "--dir", str(demo_dir)),
            *("--port", str(http), "--ingest-port", str(ingest), "--metrics-port", str(metrics)),
        ],
        cwd=tmp_path,  # not the checkout: the demo finds its files by itself
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    try:
        yield Demo(proc, out, demo_dir, http, metrics, started)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for pid in _aggregators_of(demo_dir):
            os.kill(pid, signal.SIGKILL)
        out.close()


def _aggregators_of(demo_dir: Path) -> list[int]:
    """Live `aggregator serve` processes started with this demo's config (Linux /proc)."""
    config = str(demo_dir / "aggregator.yaml").encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if b"serve" in args and config in args:
            pids.append(int(entry.name))
    return pids


def _login(demo: Demo) -> httpx.Client:
    """Wait for the UI line, check the UI answers, log in with the printed account."""
    line = None
    while time.monotonic() - demo.started_mono_s < EVENTS_WITHIN_S:
        assert demo.proc.poll() is None, demo.output()
        line = re.search(r"Review UI: (\S+)\s+\(user (\S+), password (\S+)\)", demo.output())
        if line:
            break
        time.sleep(0.2)
    assert line, f"no UI address printed: {demo.output()}"
    ui, user, password = line.groups()
    assert ui == f"http://127.0.0.1:{demo.http}/ui/"
    page = httpx.get(ui, timeout=10)
    assert page.status_code == 200
    assert "Streetwatch" in page.text

    client = httpx.Client(base_url=f"http://127.0.0.1:{demo.http}", timeout=10)
    r = client.post("/api/v1/auth/login", json={"username": user, "password": password})
    assert r.status_code == 200, r.text
    client.headers["Authorization"] = f"Bearer {r.json()['token']}"
    assert r.json()["user"]["role"] == "operator"
    return client


def _event_types(client: httpx.Client) -> dict[str, int]:
    found: dict[str, int] = {}
    for e in client.get("/api/v1/events", params={"limit": 100}).json()["items"]:
        found[e["type"]] = found.get(e["type"], 0) + 1
    return found


def _signal_and_wait(demo: Demo, sig: signal.Signals, *, demo_first: bool) -> int:
    """Send sig to the demo's process group, as a terminal's Ctrl-C does; with demo_first,
    to the demo itself just before, as `timeout` does. Prints the stop time (no timing
    assert: the figure depends on the machine's load) and returns the exit code."""
    signalled = time.monotonic()
    if demo.proc.poll() is not None:
        return demo.proc.returncode  # it ended by itself; the caller's checks say why
    if demo_first:
        os.kill(demo.proc.pid, sig)
    os.killpg(demo.proc.pid, sig)
    code = demo.proc.wait(STOP_WITHIN_S)
    reported = re.search(r"demo stopped in .*", demo.output())
    print(
        f"\nedge demo: {sig.name} to {'the demo and ' if demo_first else ''}its group, exited "
        f"{time.monotonic() - signalled:.1f} s later ({reported[0] if reported else 'no report'})"
    )
    return code


def _assert_stopped_cleanly(demo: Demo, code: int) -> None:
    """Exit 0, no traceback, no connection errors (the aggregator outlived the edge), no
    aggregator left behind, and the edge's last events reached the aggregator."""
    text = demo.output()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert [ln for ln in text.splitlines() if CONNECTION_ERROR.search(ln)] == []
    assert _aggregators_of(demo.demo_dir) == [], "the aggregator outlived the demo"
    outbox = Outbox(demo.demo_dir / "outbox" / "outbox.sqlite3")
    try:
        assert outbox.depth() == 0, f"{outbox.depth()} events left in the outbox"
        print(f"evidence files left for the next start: {outbox.media_depth()}")
    finally:
        outbox.close()


def test_demo_brings_up_the_ui_with_sample_events(tmp_path: Path, assets: Path) -> None:
    """...and Ctrl-C (SIGINT to the terminal's foreground group) stops it cleanly."""
    with running_demo(tmp_path) as demo:
        try:
            client = _login(demo)
            found: dict[str, int] = {}
            while time.monotonic() - demo.started_mono_s < EVENTS_WITHIN_S:
                found = _event_types(client)
                if {"crowding", "illegal_parking"} <= found.keys():
                    break
                time.sleep(1)
            elapsed = time.monotonic() - demo.started_mono_s
            assert {"crowding", "illegal_parking"} <= found.keys(), (
                f"after {elapsed:.0f} s the UI has {found}; demo output: {demo.output()[-2000:]}"
            )
            assert "camera_offline" not in found, found
            cams = httpx.get(f"http://127.0.0.1:{demo.metrics}/readyz", timeout=5).json()
            assert sorted(cams["cameras"]) == [
                "bottle-table",
                "one-by-one",
                "sample-kerb",
                "sample-square",
            ]
            assert set(cams["cameras"].values()) == {"online"}
            # The map has the sample grid, each camera in its cell.
            grid = client.get("/api/v1/grid").json()
            assert len(grid["features"]) == 12
            placed = {c["camera"]: c["grid_cell"] for c in grid["cameras"]}
            assert placed == {
                "bottle-table": "G-0102",
                "sample-square": "G-0203",
                "sample-kerb": "G-0304",
                "one-by-one": "G-0301",
            }
        finally:
            code = _signal_and_wait(demo, signal.SIGINT, demo_first=False)
        _assert_stopped_cleanly(demo, code)


def test_timeout_sigterm_stops_the_edge_then_the_aggregator(tmp_path: Path, assets: Path) -> None:
    """`timeout -s TERM 90 edge demo`: SIGTERM to the demo, then to its whole group, once
    events flow. The edge stops first, while the aggregator still takes its last events."""
    with running_demo(tmp_path) as demo:
        client = _login(demo)
        found: dict[str, int] = {}
        while not found and time.monotonic() - demo.started_mono_s < EVENTS_WITHIN_S:
            found = _event_types(client)
            time.sleep(0.5)
        assert found, f"no event within {EVENTS_WITHIN_S:.0f} s: {demo.output()[-2000:]}"
        assert _aggregators_of(demo.demo_dir), "the demo's aggregator process was not found"
        code = _signal_and_wait(demo, signal.SIGTERM, demo_first=True)
        _assert_stopped_cleanly(demo, code)


def test_demo_is_the_readme_main_command() -> None:
    readme = (REPO / "README.md").read_text()
    assert ".venv/bin/edge demo" in readme
