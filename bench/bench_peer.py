"""Streetwatch against Ultralytics: the same ONNX model on the same videos, on this machine.

Needs .venv-export with the bench extra (`scripts/setup.sh --export`, then
`.venv-export/bin/pip install -e '.[export,bench]'`: Ultralytics' ByteTrack imports `lap`).

    .venv-export/bin/python bench/bench_peer.py [--video NAME ...] [--quick]
        [--solution-only | --frames-only] [--seconds 30] [--every-seconds 10] [--yolox]

Frame by frame (--frames-only runs it alone). Per video, each side runs in its own subprocess
(no memory, caches or thread pools shared), over every frame as fast as it can (no pacing);
the first --warmup frames are not timed:

  ultralytics  YOLO(onnx, task="detect").track(stream=True, tracker="bytetrack.yaml",
               conf=0.3, iou=0.45, device="cpu"): decode, infer, NMS, ByteTrack
  streetwatch  edge Pipeline (score 0.3, NMS 0.45, default tracking, no zones, motion
               gating off so the detector runs on every frame like Ultralytics') over
               open_source(realtime=False): decode, infer, NMS, filter, ByteTrack
  inference    OnnxDetector.detect alone on frames decoded into memory beforehand (the bound)

"track ids" counts the distinct confirmed ids each tracker produced: a check that both did
the same work, not a quality claim (the trackers' settings differ). Each side keeps its own
default threads (printed).

Solution level (--solution-only runs it alone): CPU-seconds per camera-minute (one minute of
one camera's video) of each product run the way its users run it, on the same cameras. Each
--video is a camera, its file looped; both sides detect it at the same rate, fps / vid_stride
with vid_stride = round(fps / 5) (5.00 detect fps for the 10 fps video, 6.25 for 12.5 fps),
so both take the same frames into their pipelines (Streetwatch's gate then skips some).

  streetwatch  the real `edge run` worker (edge.worker.Worker) with an edge box config built as
               bench_edge_cameras.py builds one: the video's shipped sample camera config when
               it has one (zones, rules), else detection and tracking only; always --model
               (YOLOv8n int8, as Ultralytics'), score 0.3, NMS 0.45, motion gating on. Events
               wait in the outbox (nothing listens at the aggregator's address); evidence clips
               are recorded for upload unless --no-evidence. Paced in real time like
               production. CPU: the process's user + system time over a --seconds window that
               starts 5 s after every camera is online; camera-minutes: the frames each camera
               decoded in the window over its fps. --yolox adds a row with the default model,
               YOLOX-Nano (Ultralytics cannot load it).
  ultralytics  YOLO(onnx).track(source=video, stream=True, tracker="bytetrack.yaml",
               vid_stride=...) over each video in turn, a fresh model and tracker per video;
               CPU over --seconds of video per camera after the first --warmup results.
               Unpaced: a frame costs the same CPU whenever it arrives, and running flat out
               spares it the idle wake-ups of a paced process (onnxruntime's spinning threads),
               so if anything this favours Ultralytics. Run at the same detect rate (the ratio
               that counts; the goal is >= 3) and at every frame (vid_stride 1, as it is often
               run), the latter over --every-seconds to keep the run short.

"CPU-ms/frame" is per frame taken in ("detector": the share the detector ran on); "proc
CPU-s" is the whole child's (getrusage of children: imports, model load, warm-up, stop), for
scale only: a box runs for months, so per camera-minute counts the window. A worker that
dropped frames fell behind and did less than its share, and one whose sources covered more
or less video than wall time (not paced) measured something else: either way its figure is
no basis, so the verdict is withheld; re-run with fewer cameras or on a quieter machine.

Every Ultralytics child runs offline: YOLO_OFFLINE, no autoinstall, a throwaway settings dir,
and an audit hook that refuses any socket or pip call and counts them. "load" is the 1-minute
load average when a side ends: far above the core count means other work shared the CPU, so
re-run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import peer_solution  # bench/, beside this script
from peer_solution import RunChild

from edge.paths import assets_dir

VIDEOS = ["one-by-one-person-detection.mp4", "car-detection.mp4"]
SIDES = ["ultralytics", "streetwatch", "inference"]
SOLUTION_SIDES = ["sol-streetwatch", "sol-ultralytics"]
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
    from ultralytics import YOLO

    # Loaded already by ultralytics; by name, since .venv (where mypy runs) has no torch.
    torch: Any = importlib.import_module("torch")

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


def run_child(cfg_dir: str, child_args: list[str]) -> tuple[dict[str, Any], float]:
    """One side in a fresh process: its JSON line, and its whole CPU time (user + system)."""
    cmd = [sys.executable, __file__, *child_args]
    # Ultralytics offline: no online checks, no pip installs, settings in a throwaway folder.
    env = dict(os.environ, YOLO_OFFLINE="true", YOLO_AUTOINSTALL="false", YOLO_VERBOSE="false")
    env["YOLO_CONFIG_DIR"] = cfg_dir
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(child_args)} failed:\n{proc.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return out, cpu_s


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


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--video", action="append", help="file name in assets/videos, or a path")
    ap.add_argument("--model", type=Path, default=assets_dir() / "models" / "yolov8n_int8.onnx")
    ap.add_argument("--quick", action="store_true", help="smoke run: 150 frames, 15 s of video")
    ap.add_argument("--max-frames", type=int, default=0, help="frames per video (0: all)")
    ap.add_argument("--warmup", type=int, default=5, help="first frames left out of the timing")
    part = ap.add_mutually_exclusive_group()
    part.add_argument("--solution-only", action="store_true", help="skip frame by frame")
    part.add_argument("--frames-only", action="store_true", help="skip the solution level")
    ap.add_argument("--seconds", type=float, help="solution: video seconds per camera (30)")
    ap.add_argument("--every-seconds", type=float, help="the same, Ultralytics every frame (10)")
    ap.add_argument("--no-evidence", dest="evidence", action="store_false", help="no clips")
    yolox = assets_dir() / "models" / "yolox_nano.onnx"
    ap.add_argument("--yolox", action="store_const", const=yolox, help="add a YOLOX-Nano row")
    ap.add_argument("--side", choices=SIDES + SOLUTION_SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--imgsz", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--every", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.max_frames = args.max_frames or 150
    args.seconds = args.seconds or (15.0 if args.quick else 30.0)
    args.every_seconds = args.every_seconds or (5.0 if args.quick else 10.0)
    return args


def run_here(args: argparse.Namespace, videos: list[Path]) -> dict[str, Any]:
    """The child: one side, one JSON result."""
    limit = args.max_frames or sys.maxsize
    if args.side == "ultralytics":
        return run_ultralytics(args.model, videos[0], args.imgsz, limit, args.warmup)
    if args.side == "streetwatch":
        return run_streetwatch(args.model, videos[0], limit, args.warmup)
    if args.side == "inference":
        return run_inference(args.model, videos[0], limit, args.warmup)
    cams = [peer_solution.camera(v) for v in videos]
    if args.side == "sol-streetwatch":
        return peer_solution.streetwatch_side(
            cams, args.model, args.seconds, warmup_s=5.0, evidence=args.evidence
        )
    sys.addaudithook(_guard)
    out = peer_solution.ultralytics_side(
        cams, args.model, args.seconds, args.warmup, args.every, args.imgsz
    )
    return {**out, "blocked": _blocked}


def frame_by_frame(args: argparse.Namespace, videos: list[Path], run: RunChild) -> None:
    print(f"frames: {args.max_frames or 'all'} per video, first {args.warmup} untimed, all classes")
    header = (
        f"{'video':<34}{'side':<13}{'frames':>7}{'fps':>8}{'ms/frame':>10}"
        f"{'detector runs':>15}{'track ids':>11}{'peak RSS MB':>12}{'load':>6}"
    )
    print("\n" + header + "\n" + "-" * len(header), flush=True)
    ratios, notes = [], {}
    common = [f"--model={args.model}", f"--warmup={args.warmup}", f"--imgsz={args.imgsz}"]
    common.append(f"--max-frames={args.max_frames}")
    for video in videos:
        fps = {}
        for s in SIDES:
            r, _ = run([f"--side={s}", f"--video={video}", *common])
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


def main() -> None:
    args = parse_args()
    videos = [
        Path(v) if Path(v).is_file() else assets_dir() / "videos" / v
        for v in (args.video or VIDEOS)
    ]
    if args.side:  # child: one JSON line
        print(json.dumps(run_here(args, videos)))
        return

    import cv2
    import onnxruntime as ort

    shape = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    h, w = shape.get_inputs()[0].shape[2:4]
    args.imgsz = int(w)
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, python {platform.python_version()}, "
        f"onnxruntime {ort.__version__}, ultralytics {pkg('ultralytics')}, torch {pkg('torch')}, "
        f"opencv {cv2.__version__}; load at start {os.getloadavg()[0]:.2f}"
    )
    print(f"model: {args.model.name}, input {w}x{h}, conf {CONF}, NMS IoU {IOU}, CPU")
    with tempfile.TemporaryDirectory(prefix="bench-peer-yolo-") as cfg_dir:
        run = partial(run_child, cfg_dir)
        if not args.solution_only:
            frame_by_frame(args, videos, run)
        if not args.frames_only:
            peer_solution.compare(args, videos, run)


if __name__ == "__main__":
    main()
