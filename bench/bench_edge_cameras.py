"""Cameras one edge process sustains in real time, with and without motion gating.

For N cameras (the sample videos looped, camera ids made unique) the real `edge run` worker
runs for a window at 5 detect fps per camera; the figures come from its own Prometheus
metrics: frames due vs processed, frames dropped at the detect stage, detector calls, lag,
and the process's CPU use. A configuration is real-time when every due frame was processed
(none dropped) and the lag stays under one detect period. The same run measures the
pure-inference bound (the detector alone on decoded frames) and the offline pipeline rate
of one camera, so the ratios hold on whatever machine runs it.

    .venv/bin/python bench/bench_edge_cameras.py [--cameras 1,2,4,6,8] [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from contract.keys import generate
from edge.camera.chain import CameraChain
from edge.camera.detectors import build_detector
from edge.config import load_camera_config, with_motion
from edge.config.edge_box import load_edge_config
from edge.detectors.catalog import load_manifest
from edge.paths import assets_dir, project_root
from edge.sources import open_source
from edge.worker import Worker

SAMPLES = project_root() / "sample_videos"
CAMERAS = [
    ("bottle-detection.camera.yaml", "asset", "bottle-detection.mp4"),
    ("crowding.camera.yaml", "generated", "crowding.mp4"),
    ("parking.camera.yaml", "generated", "parking.mp4"),
    ("one-by-one-person-detection.camera.yaml", "asset", "one-by-one-person-detection.mp4"),
]


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def inference_bound(frames: int = 200) -> tuple[float, float]:
    """Detector alone on decoded frames, then the whole pipeline offline: frames/s each."""
    cfg = with_motion(
        load_camera_config(SAMPLES / "one-by-one-person-detection.camera.yaml"), "off"
    )
    det = build_detector(cfg, load_manifest())
    video = assets_dir() / "videos" / "one-by-one-person-detection.mp4"
    with open_source(str(video), realtime=False) as src:
        images = [f for _, f in zip(range(frames), src.frames(), strict=False)]
    for f in images[:10]:
        det.detect(f.image_bgr)
    t0 = time.perf_counter()
    for f in images:
        det.detect(f.image_bgr)
    bound = len(images) / (time.perf_counter() - t0)
    pipe = CameraChain(cfg, det, fps=10)
    t0 = time.perf_counter()
    with open_source(str(video), realtime=False) as src:
        for _, f in zip(range(frames), src.frames(), strict=False):
            pipe.process(f)
    return bound, frames / (time.perf_counter() - t0)


def write_config(work: Path, n: int, motion: bool, clips: Path) -> Path:
    entries = []
    for i in range(n):
        name, kind, video = CAMERAS[i % len(CAMERAS)]
        doc = yaml.safe_load((SAMPLES / name).read_text())
        doc["id"] = f"{doc['id']}-{i}"
        doc["motion"] = {"enabled": motion}
        cam = work / f"cam{i}.camera.yaml"
        cam.write_text(yaml.safe_dump(doc))
        path = (assets_dir() / "videos" / video) if kind == "asset" else clips / video
        entries.append({"config": str(cam), "source": {"uri": str(path), "loop": True}})
    cfg = work / f"edge-{n}-{motion}.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "edge_id": "bench-box",
                "outbox": {"path": f"outbox-{n}-{motion}.sqlite3"},
                # Nothing listens there: events wait in the outbox, as with a lost uplink.
                "aggregator": {
                    "endpoint": "tcp://127.0.0.1:9",
                    "server_public_key": "keys/agg.key",
                    "secret_key": "keys/box.key_secret",
                },
                "http": {"host": "127.0.0.1", "port": 0},
                "cameras": entries,
            }
        )
    )
    return cfg


def totals(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
            if s.name == "streetwatch_edge_detect_lag_seconds":
                out["lag_max"] = max(out.get("lag_max", 0.0), s.value)
    return out


def measure(cfg_path: Path, seconds: float, warmup_s: float = 5.0) -> dict[str, Any]:
    from prometheus_client import generate_latest

    worker = Worker(load_edge_config(cfg_path), load_manifest())
    worker.start()
    try:
        time.sleep(warmup_s)
        before = totals(generate_latest(worker.metrics.registry).decode())
        cpu0, t0 = time.process_time(), time.monotonic()
        lag_max = 0.0
        while time.monotonic() - t0 < seconds:
            time.sleep(1)
            now = totals(generate_latest(worker.metrics.registry).decode())
            lag_max = max(lag_max, now.get("lag_max", 0.0))
        after = totals(generate_latest(worker.metrics.registry).decode())
        wall = time.monotonic() - t0
        cpu = time.process_time() - cpu0
    finally:
        worker.stop()

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    n = len(worker.feeds)
    due, done = (
        delta("streetwatch_edge_frames_due_total"),
        delta("streetwatch_edge_frames_processed_total"),
    )
    dropped = delta("streetwatch_edge_frames_dropped_total")
    return {
        "cameras": n,
        "due_fps": due / wall / n,
        "processed_fps": done / wall / n,
        "dropped": int(dropped),
        "detector_share": delta("streetwatch_edge_detector_calls_total") / max(done, 1),
        "lag_max_s": lag_max,
        "cpu_cores": cpu / wall,
        "realtime": dropped == 0 and lag_max < 0.2 and done >= 0.98 * due,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cameras", default="1,2,4,6,8", help="Camera counts to try.")
    ap.add_argument("--seconds", type=float, default=30.0, help="Measuring window per run.")
    args = ap.parse_args()
    counts = [int(c) for c in args.cameras.split(",")]
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}")
    bound, pipeline_fps = inference_bound()
    print(
        f"YOLOX-Nano alone: {bound:.1f} frames/s; whole pipeline offline (decode, detect, "
        f"track, rules): {pipeline_fps:.1f} frames/s = {pipeline_fps / bound:.2f} of the bound"
    )
    print(f"so at 5 detect fps the detector alone could serve {bound / 5:.1f} cameras\n")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generate(work / "keys", "agg")
        generate(work / "keys", "box")
        clips = work / "clips"
        subprocess.run(
            [sys.executable, str(SAMPLES / "make_clips.py"), str(clips)],
            check=True,
            capture_output=True,
        )
        print(
            f"{'cameras':>7} {'gating':>6} {'due fps':>8} {'done fps':>8} {'dropped':>7} "
            f"{'detector':>8} {'lag max':>8} {'CPU':>5}  real time"
        )
        for n in counts:
            for motion in (False, True):
                r = measure(write_config(work, n, motion, clips), args.seconds)
                print(
                    f"{n:>7} {'on' if motion else 'off':>6} {r['due_fps']:>8.2f} "
                    f"{r['processed_fps']:>8.2f} {r['dropped']:>7} "
                    f"{r['detector_share']:>7.0%} {r['lag_max_s'] * 1000:>6.0f}ms "
                    f"{r['cpu_cores']:>5.2f}  {'yes' if r['realtime'] else 'NO'}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
