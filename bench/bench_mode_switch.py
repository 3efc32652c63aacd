"""Operating-mode switches across a fleet: how fast a city-wide switch reaches every camera.

Six real `edge run` boxes (one looped sample camera each, central configs, heartbeats every
second) under one `aggregator serve` on PostgreSQL, as in tests/system/test_fleet_modes.py.
The city is switched --switches times between emergency and peacetime; each switch's latency
per camera is from the switch being saved to the ingest hearing that camera report it applied
(fleet_cameras.applied_at). Then one box is stopped, the city switched, the box started: its
catch-up is timed from its process start and from its /readyz (cameras online) to applied.

The baseline taken in the same run is the heartbeat period (1 s): a switch can do no better
than being seen at the next heartbeat, so p95 / heartbeat says how many beats a switch costs.

    .venv/bin/python bench/bench_mode_switch.py [--switches 20] [--boxes 6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_aggregator_load import machine
from tests.deploy import Deployment, database
from tests.fleet import Fleet, apply_latencies_s, percentile
from tests.postgres import SESSION
from tests.system.test_fleet_modes import _clips, _in_mode

HEARTBEAT_S = 1.0
GOAL_S = 5.0


def _assets() -> Path:
    return Path(__file__).resolve().parents[2] / "shared" / "assets"


def _clips_dir(tmp: Path) -> Path:
    import subprocess

    out = tmp / "clips"
    out.mkdir()
    repo = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, str(repo / "sample_videos" / "make_clips.py"), str(out)],
        check=True,
        cwd=repo,
        capture_output=True,
    )
    return out


def _switches(fleet: Fleet, names: list[str], n: int) -> list[float]:
    lat: list[float] = []
    for i in range(n):
        mode = "emergency" if i % 2 == 0 else "peacetime"
        sw = fleet.switch(mode, f"bench switch {i}")
        cams = fleet.wait_cameras(_in_mode(mode, sw["id"]), names, 60, f"switch {i}")
        got = apply_latencies_s({k: cams[k] for k in names}, sw)
        lat += got
        print(f"switch {i + 1}/{n} to {mode}: max {max(got):.2f} s", flush=True)
        time.sleep(1.0)
    return lat


def _catch_up(fleet: Fleet) -> tuple[float, float]:
    box = fleet.boxes[-1]
    fleet.stop(box)
    sw = fleet.switch("emergency", "bench: a box is down")
    started = time.time()
    fleet.start(box)
    ready = 0.0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ready:
        try:
            if httpx.get(f"http://127.0.0.1:{box.http_port}/readyz", timeout=1).status_code == 200:
                ready = time.time()
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    cams = fleet.wait_cameras(_in_mode("emergency", sw["id"]), [box.camera], 120, "catch-up")
    applied = float(cams[box.camera]["applied_at"])
    return applied - started, applied - ready


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--switches", type=int, default=20)
    ap.add_argument("--boxes", type=int, default=6)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database("postgresql", Path(tmp)) as url:
        print(f"machine: {machine(SESSION.get().dsn())}", flush=True)
        d = Deployment(Path(tmp), url)
        fleet = Fleet(d)
        try:
            d.start_aggregator()
            clips = _clips(_clips_dir(Path(tmp)), _assets())
            for i in range(args.boxes):
                fleet.add_box(i, clips[i % len(clips)])
            versions = fleet.push_configs()
            for box in fleet.boxes:
                fleet.start(box)
            names = [b.camera for b in fleet.boxes]
            fleet.wait_cameras(
                lambda c: c["config_version"] == versions[c["camera"]] and c["in_sync"],
                names,
                180,
                "every camera on its central config",
            )
            lat = _switches(fleet, names, args.switches)
            from_start, from_ready = _catch_up(fleet)
        finally:
            for box in fleet.boxes:
                if box.proc is not None and box.proc.poll() is None:
                    fleet.stop(box)
            d.stop_all()
    p50, p95, worst = percentile(lat, 0.5), percentile(lat, 0.95), max(lat)
    print(f"\n{args.boxes} boxes, {args.switches} switches, {len(lat)} camera applications")
    print(f"switch -> applied: median {p50:.2f} s, p95 {p95:.2f} s, max {worst:.2f} s")
    print(f"p95 / heartbeat period ({HEARTBEAT_S:.0f} s): {p95 / HEARTBEAT_S:.2f}")
    print(f"max / goal ({GOAL_S:.0f} s): {worst / GOAL_S:.2f}")
    print(f"box back after the switch: applied {from_start:.2f} s after its start, ")
    print(f"  {from_ready:.2f} s after its cameras were online (/readyz)")


if __name__ == "__main__":
    main()
