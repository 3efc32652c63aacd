"""Streetwatch against Ultralytics: the same ONNX model on the same videos, on this machine.

Per video, each side runs in its own subprocess (no memory, caches or thread pools shared),
over every frame as fast as it can (no pacing); the first --warmup frames are not timed:

  ultralytics  YOLO(onnx, task="detect").track(stream=True, tracker="bytetrack.yaml",
               conf=0.3, iou=0.45, device="cpu"): decode, infer, NMS, ByteTrack
  streetwatch  edge Pipeline (score 0.3, NMS 0.45, default tracking, no zones, motion
               gating off so the detector runs on every frame like Ultralytics') over
               open_source(realtime=False): decode, infer, NMS, filter, ByteTrack
  inference    OnnxDetector.detect alone on frames decoded into memory beforehand (the bound)

"track ids" counts the distinct confirmed ids each tracker produced: a check that both did
the same work, not a quality claim (the trackers' settings differ). Each side keeps its own
default threads (printed). The Ultralytics child runs offline: YOLO_OFFLINE, no autoinstall, a
throwaway settings dir, and an audit hook that refuses any socket or pip call and counts them.
Its ByteTrack imports `lap`, which .venv-export must have. "load" is the 1-minute load average
when a side ends: far above the core count means other work shared the CPU, so re-run.

    .venv-export/bin/python bench/bench_peer.py [--video NAME ...] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from edge.paths import assets_dir

VIDEOS = ["one-by-one-person-detection.mp4", "car-detection.mp4"]
SIDES = ["ultralytics", "streetwatch", "inference"]
CONF, IOU = 0.3, 0.45
_blocked: list[str] = []


def _guard(event: str, args: tuple[Any, ...]) -> None:
    """Audit hook for the Ultralytics child: no network, no pip, whatever it tries."""
    if event == "socket.connect" and isinstance(args[1], tuple):
        _blocked.append(f"connect {args[1]}")
        raise OSError("network disabled by bench_peer")
    if event == "socket.getaddrinfo" and args[0] not in (None, "localhost", "127.0.0.1"):
        _blocked.append(f"resolve {args[0]}")
        raise OSError("network disabled by bench_peer")
    if event == "subprocess.Popen" and "pip" in str(args[1]):
        _blocked.append(f"run {args[1]}")
        raise OSError("pip disabled by bench_peer")


def thread_note(ort_threads: int | str, **others: int) -> str:
    ort_part = f"onnxruntime intra-op {ort_threads or 'default (one per physical core)'}"
    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    return ", ".join([ort_part, *(f"{k} {v}" for k, v in others.items()), f"OMP_NUM_THREADS {omp}"])


class Clock:
    """Counts frames; times those after the warm-up."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.frames, self.t0, self.t1 = warmup, 0, 0.0, 0.0

    def tick(self) -> None:
        self.frames += 1
        self.t1 = time.perf_counter()
        if self.frames == self.warmup:
            self.t0 = self.t1

    def result(self, **extra: Any) -> dict[str, Any]:
        timed = self.frames - self.warmup
        fps = timed / (self.t1 - self.t0) if timed > 0 else 0.0
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        load = os.getloadavg()[0]
        return {"frames": self.frames, "fps": fps, "rss_mb": rss_mb, "load": load, **extra}


def run_ultralytics(
    model: Path, video: Path, imgsz: int, limit: int, warmup: int
) -> dict[str, Any]:
    sys.addaudithook(_guard)
    import cv2
    import torch
    from ultralytics import YOLO

    yolo = YOLO(str(model), task="detect")
    stream = yolo.track(
        source=str(video),
        stream=True,
        tracker="bytetrack.yaml",
        conf=CONF,
        iou=IOU,
        imgsz=imgsz,
        device="cpu",
        verbose=False,
        persist=True,
    )
    clock, ids = Clock(warmup), set[int]()
    for r in stream:
        if r.boxes is not None and r.boxes.id is not None:
            ids.update(int(i) for i in r.boxes.id.tolist())
        clock.tick()
        if clock.frames >= limit:
            break
    session = getattr(yolo.predictor.model, "session", None)  # None: not ONNX Runtime
    ort_threads = session.get_session_options().intra_op_num_threads if session else "?"
    threads = thread_note(ort_threads, torch=torch.get_num_threads(), cv2=cv2.getNumThreads())
    return clock.result(track_ids=len(ids), threads=threads, blocked=_blocked)


def run_streetwatch(model: Path, video: Path, limit: int, warmup: int) -> dict[str, Any]:
    import cv2

    from contract.config.camera import CameraConfig
    from edge.camera.chain import CameraChain
    from edge.camera.detectors import build_detector
    from edge.detectors.catalog import load_manifest
    from edge.sources import open_source

    spec: dict[str, Any] = {
        "id": "bench",
        "detector": {"type": "onnx", "model": str(model)},
        "detection": {"score_threshold": CONF, "nms_iou": IOU},
    }
    if "motion" in CameraConfig.model_fields:  # same work as Ultralytics: detect every frame
        spec["motion"] = {"enabled": False}
    cfg = CameraConfig.model_validate(spec)
    detector = build_detector(cfg, load_manifest())
    clock, ids, runs = Clock(warmup), set[int](), 0
    with open_source(str(video), realtime=False) as src:
        pipeline = CameraChain(cfg, detector, fps=src.fps)
        for frame in src.frames():
            result = pipeline.process(frame)
            ids.update(int(t) for t in result.tracks.tracker_id)
            runs += bool(getattr(result, "detected", True))
            clock.tick()
            if clock.frames >= limit:
                break
    opts = detector._session.get_session_options()  # type: ignore[attr-defined]
    threads = thread_note(opts.intra_op_num_threads, cv2=cv2.getNumThreads())
    return clock.result(track_ids=len(ids), threads=threads, runs=runs)


def run_inference(model: Path, video: Path, limit: int, warmup: int) -> dict[str, Any]:
    from edge.detectors import OnnxDetectorConfig
    from edge.detectors.catalog import load_manifest
    from edge.detectors.onnx_runtime import OnnxDetector
    from edge.sources import open_source

    detector = OnnxDetector(
        OnnxDetectorConfig(model=str(model)), load_manifest(), score_threshold=CONF, nms_iou=IOU
    )
    with open_source(str(video), realtime=False) as src:
        frames = [f.image_bgr for f, _ in zip(src.frames(), range(limit), strict=False)]
    clock = Clock(warmup)
    for image in frames:
        detector.detect(image)
        clock.tick()
    return clock.result(track_ids=None, threads="as streetwatch (frames held in memory)")


def run_side(
    args: argparse.Namespace, side: str, video: Path, imgsz: int, cfg_dir: str
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, f"--side={side}", f"--video={video}", f"--imgsz={imgsz}"]
    cmd += [f"--model={args.model}", f"--warmup={args.warmup}", f"--max-frames={args.max_frames}"]
    # Ultralytics offline: no online checks, no pip installs, settings in a throwaway folder.
    env = dict(os.environ, YOLO_OFFLINE="true", YOLO_AUTOINSTALL="false", YOLO_VERBOSE="false")
    env["YOLO_CONFIG_DIR"] = cfg_dir
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"{side} on {video.name} failed:\n{proc.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def pkg(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--video", action="append", help="file name in assets/videos, or a path")
    ap.add_argument("--model", type=Path, default=assets_dir() / "models" / "yolov8n_int8.onnx")
    ap.add_argument("--quick", action="store_true", help="smoke run: first 150 frames")
    ap.add_argument("--max-frames", type=int, default=0, help="frames per video (0: all)")
    ap.add_argument("--warmup", type=int, default=5, help="first frames left out of the timing")
    ap.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--imgsz", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.max_frames = args.max_frames or 150
    limit = args.max_frames or sys.maxsize
    videos = [
        Path(v) if Path(v).is_file() else assets_dir() / "videos" / v
        for v in (args.video or VIDEOS)
    ]

    if args.side:  # child: one side, one video, one JSON line
        if args.side == "ultralytics":
            out = run_ultralytics(args.model, videos[0], args.imgsz, limit, args.warmup)
        elif args.side == "streetwatch":
            out = run_streetwatch(args.model, videos[0], limit, args.warmup)
        else:
            out = run_inference(args.model, videos[0], limit, args.warmup)
        print(json.dumps(out))
        return

    import cv2
    import onnxruntime as ort

    shape = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    h, w = shape.get_inputs()[0].shape[2:4]
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, python {platform.python_version()}, "
        f"onnxruntime {ort.__version__}, ultralytics {pkg('ultralytics')}, torch {pkg('torch')}, "
        f"opencv {cv2.__version__}"
    )
    print(f"model: {args.model.name}, input {w}x{h}, conf {CONF}, NMS IoU {IOU}, all classes, CPU")
    print(f"frames: {args.max_frames or 'all'} per video, first {args.warmup} untimed")
    header = (
        f"{'video':<34}{'side':<13}{'frames':>7}{'fps':>8}{'ms/frame':>10}"
        f"{'detector runs':>15}{'track ids':>11}{'peak RSS MB':>12}{'load':>6}"
    )
    print("\n" + header + "\n" + "-" * len(header), flush=True)
    ratios, notes = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-peer-yolo-") as cfg_dir:
        for video in videos:
            fps = {}
            for s in SIDES:
                r = run_side(args, s, video, int(w), cfg_dir)
                ids = "-" if r["track_ids"] is None else r["track_ids"]
                ms = 1000 / r["fps"] if r["fps"] else float("nan")
                runs = r.get("runs", r["frames"])
                print(
                    f"{video.name:<34}{s:<13}{r['frames']:>7}{r['fps']:>8.1f}{ms:>10.1f}"
                    f"{runs:>15}{ids:>11}{r['rss_mb']:>12.0f}{r['load']:>6.1f}",
                    flush=True,
                )
                fps[s], notes[s] = r["fps"], r["threads"]
                if r.get("blocked"):
                    notes[f"{s} blocked"] = "; ".join(sorted(set(r["blocked"])))
            sw = fps["streetwatch"]
            ratios.append(
                f"{video.name:<34}{sw / fps['ultralytics']:>25.2f}{sw / fps['inference']:>25.2f}"
            )
    header = f"{'video':<34}{'streetwatch / ultralytics':>25}{'streetwatch / inference':>25}"
    print("\n" + header + "\n" + "-" * len(header) + "\n" + "\n".join(ratios) + "\n")
    for side, note in notes.items():
        print(f"threads {side}: {note}" if side in SIDES else f"{side}: {note}")
    if not any(k.endswith("blocked") for k in notes):
        print("network/pip attempts by ultralytics: none")


if __name__ == "__main__":
    main()
