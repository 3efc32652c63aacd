"""Edge pipeline throughput on every shared video, measured in one run on this machine.

For each video: decode-only fps, detector ms per frame (detector alone on the decoded
frames), whole-pipeline fps (decode + detect + filter + track), and the ratio of pipeline
fps to the pure-inference bound 1000 / detector ms. A ratio near 1 means everything but
inference is nearly free.

    .venv/bin/python bench/bench_pipeline.py [--model yolox_nano] [--max-frames 400]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from contract.config.camera import CameraConfig, DetectionConfig, MotionConfig
from edge.camera.chain import CameraChain
from edge.camera.detectors import build_detector
from edge.detectors import OnnxDetectorConfig
from edge.detectors.catalog import load_manifest
from edge.paths import assets_dir
from edge.sources import open_source

VIDEOS = [
    "car-detection.mp4",
    "one-by-one-person-detection.mp4",
    "bottle-detection.mp4",
    "people-detection.gif",
    "worker-zone-detection.gif",
]


def decode_fps(path: Path, max_frames: int) -> tuple[float, list[np.ndarray]]:
    frames: list[np.ndarray] = []
    with open_source(str(path), realtime=False) as src:
        t0 = time.perf_counter()
        for f in src.frames():
            frames.append(f.image_bgr)
            if len(frames) >= max_frames:
                break
        elapsed = time.perf_counter() - t0
    return len(frames) / elapsed, frames


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="yolox_nano")
    ap.add_argument("--max-frames", type=int, default=400, help="frames per video at most")
    args = ap.parse_args()

    cfg = CameraConfig(
        id="bench",
        detector=OnnxDetectorConfig(model=args.model),
        detection=DetectionConfig(score_threshold=0.3),
        # The bound is per detected frame: gating would skip frames (bench_edge_cameras.py).
        motion=MotionConfig(enabled=False),
    )
    detector = build_detector(cfg, load_manifest())
    print(
        f"machine: {cpu_name()}, {cv2.getNumberOfCPUs()} cores, "
        f"python {platform.python_version()}, onnxruntime {ort.__version__}, "
        f"opencv {cv2.__version__}"
    )
    wh = getattr(detector, "input_wh", ("?", "?"))
    print(f"model: {args.model}, input {wh[0]}x{wh[1]}, score >= 0.3, all classes")
    header = (
        f"{'video':<34}{'frames':>7}{'decode fps':>12}{'detect ms':>11}"
        f"{'pipeline fps':>14}{'ratio':>7}"
    )
    print(header)
    print("-" * len(header))
    for name in VIDEOS:
        path = assets_dir() / "videos" / name
        dec_fps, frames = decode_fps(path, args.max_frames)
        detector.detect(frames[0])  # warm-up: first run allocates
        times = []
        for f in frames:
            t0 = time.perf_counter()
            detector.detect(f)
            times.append((time.perf_counter() - t0) * 1000)
        det_ms = statistics.mean(times)
        with open_source(str(path), realtime=False) as src:
            pipeline = CameraChain(cfg, detector, fps=src.fps)
            n = 0
            t0 = time.perf_counter()
            for fr in src.frames():
                pipeline.process(fr)
                n += 1
                if n >= args.max_frames:
                    break
            pipe_fps = n / (time.perf_counter() - t0)
        ratio = pipe_fps / (1000 / det_ms)
        print(f"{name:<34}{n:>7}{dec_fps:>12.0f}{det_ms:>11.1f}{pipe_fps:>14.1f}{ratio:>7.2f}")


if __name__ == "__main__":
    main()
