"""bench_peer's solution-level comparison: CPU-seconds per camera-minute of each product run
the way its users run it. The design is in bench/bench_peer.py's docstring; this module holds
the two sides (each runs in a child process started by bench_peer) and the table."""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import yaml
from prometheus_client import CollectorRegistry

from edge.paths import project_root

if TYPE_CHECKING:
    from edge.worker import Worker

TARGET_DETECT_FPS = 5.0
CONF, IOU = 0.3, 0.45
SAMPLES = project_root() / "sample_videos"
LAG = "streetwatch_edge_detect_lag_seconds"


@dataclass(frozen=True)
class Camera:
    """A sample video played as a camera, and the detect rate both sides run it at."""

    video: Path
    fps: float
    #: Source frames per detected frame: round(fps / 5), at least 1 (Ultralytics' vid_stride).
    stride: int

    @property
    def detect_fps(self) -> float:
        """fps / stride: exactly the frames vid_stride keeps, so both sides take in the same."""
        return self.fps / self.stride


def camera(video: Path) -> Camera:
    cap = cv2.VideoCapture(str(video))
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS))
    finally:
        cap.release()
    if not fps > 0:
        raise SystemExit(f"{video}: no frame rate in the file (not a video, or missing)")
    return Camera(video, fps, max(1, round(fps / TARGET_DETECT_FPS)))


def _camera_doc(cam: Camera, index: int, model: Path) -> dict[str, Any]:
    """The shipped sample config of the video when there is one (zones, rules, evidence), as
    a user would run it; else detection and tracking only. Always the given model, the
    thresholds of the frame-by-frame comparison and motion gating on."""
    shipped = SAMPLES / f"{cam.video.stem}.camera.yaml"
    if shipped.is_file():
        doc: dict[str, Any] = yaml.safe_load(shipped.read_text())
    else:
        doc = {"id": cam.video.stem.lower().replace(".", "-")}
    doc["id"] = f"{doc['id']}-{index}"
    doc["detector"] = {"type": "onnx", "model": str(model)}
    doc["detection"] = {**doc.get("detection", {}), "score_threshold": CONF, "nms_iou": IOU}
    doc["motion"] = {**doc.get("motion", {}), "enabled": True}
    return doc


def write_box(work: Path, cams: list[Camera], model: Path, evidence: bool) -> Path:
    """An `edge run` config: the cameras looped, each at its detect rate; nothing listens at
    the aggregator's address, so events wait in the outbox (and evidence for upload)."""
    from contract.keys import generate

    generate(work / "keys", "agg")
    generate(work / "keys", "box")
    entries = []
    for i, cam in enumerate(cams):
        path = work / f"cam{i}.camera.yaml"
        path.write_text(yaml.safe_dump(_camera_doc(cam, i, model)))
        source = {"uri": str(cam.video), "loop": True}
        entries.append({"config": str(path), "detect_fps": cam.detect_fps, "source": source})
    link: dict[str, Any] = {
        "endpoint": "tcp://127.0.0.1:9",
        "server_public_key": "keys/agg.key",
        "secret_key": "keys/box.key_secret",
    }
    if evidence:  # clips are recorded only for a box that uploads them
        token = work / "upload.token"
        token.write_text("bench-peer-token\n")
        token.chmod(0o600)
        link |= {"http_url": "http://127.0.0.1:9", "token_file": str(token)}
    cfg = work / "edge.yaml"
    box = {
        "edge_id": "bench-peer",
        "outbox": {"path": "outbox.sqlite3"},
        "aggregator": link,
        "http": {"host": "127.0.0.1", "port": 0},
        "cameras": entries,
    }
    cfg.write_text(yaml.safe_dump(box))
    return cfg


def _per_camera(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """Counter totals and gauges by (sample name, camera)."""
    out: dict[tuple[str, str], float] = {}
    for family in registry.collect():
        for s in family.samples:
            if "camera" in s.labels and not s.name.endswith("_created"):
                key = (s.name, s.labels["camera"])
                out[key] = out.get(key, 0.0) + s.value
    return out


def _cpu_s() -> float:
    """User plus system CPU of this process, all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass(frozen=True)
class Window:
    """The worker's counters at both ends of the measured window, and what it cost."""

    before: dict[tuple[str, str], float]
    after: dict[tuple[str, str], float]
    cpu_s: float
    wall_s: float
    lag_max_s: float

    def delta(self, name: str, camera_id: str) -> float:
        key = (f"streetwatch_edge_{name}_total", camera_id)
        return self.after.get(key, 0.0) - self.before.get(key, 0.0)


def _measure(worker: Worker, seconds: float, warmup_s: float) -> Window:
    deadline = time.monotonic() + 60
    while not all(f.online for f in worker.feeds):
        if time.monotonic() > deadline:
            states = {f.camera.id: f.state for f in worker.feeds}
            raise SystemExit(f"cameras not online after 60 s: {states}")
        time.sleep(0.1)
    time.sleep(warmup_s)  # model warm-up, first clips buffered, gates' backgrounds settled
    registry = worker.metrics.registry
    before, cpu0, t0 = _per_camera(registry), _cpu_s(), time.monotonic()
    lag_max_s = 0.0
    while (left_s := seconds - (time.monotonic() - t0)) > 0:
        time.sleep(min(1.0, left_s))
        lags = [v for (n, _), v in _per_camera(registry).items() if n == LAG]
        lag_max_s = max([lag_max_s, *lags])
    after, cpu_s = _per_camera(registry), _cpu_s() - cpu0
    return Window(before, after, cpu_s, time.monotonic() - t0, lag_max_s)


def streetwatch_side(
    cams: list[Camera], model: Path, seconds: float, warmup_s: float, evidence: bool
) -> dict[str, Any]:
    """The real `edge run` worker, paced like production; CPU over a window after warm-up."""
    from edge.config.edge_box import load_edge_config
    from edge.detectors.catalog import load_manifest
    from edge.worker import Worker

    with tempfile.TemporaryDirectory(prefix="bench-peer-box-") as tmp:
        worker = Worker(
            load_edge_config(write_box(Path(tmp), cams, model, evidence)), load_manifest()
        )
        worker.start()
        try:
            w = _measure(worker, seconds, warmup_s)
        finally:
            worker.stop()
    ids = [f.camera.id for f in worker.feeds]
    camera_s = sum(w.delta("frames_decoded", i) / c.fps for i, c in zip(ids, cams, strict=True))
    processed = sum(w.delta("frames_processed", i) for i in ids)
    return {
        "camera_s": camera_s,
        "cpu_s": w.cpu_s,
        "wall_s": w.wall_s,
        "detect_fps": processed / camera_s if camera_s else 0.0,
        "detector_share": sum(w.delta("detector_calls", i) for i in ids) / max(processed, 1),
        "dropped": int(sum(w.delta("frames_dropped", i) for i in ids)),
        "lag_max_s": w.lag_max_s,
        # Video time the cameras covered over wall time: 1.0 when the sources are paced.
        "pace": camera_s / (w.wall_s * len(cams)),
        "load": os.getloadavg()[0],
    }


def ultralytics_side(
    cams: list[Camera], model: Path, seconds: float, warmup: int, every_frame: bool, imgsz: int
) -> dict[str, Any]:
    """`YOLO(onnx).track(stream=True, vid_stride=...)` over each video in turn, unpaced; per
    video a fresh model and tracker, the first `warmup` results untimed, then `seconds` of
    video (the file started again at its end). The caller installs the offline audit hook."""
    from ultralytics import YOLO

    if warmup < 1:
        raise SystemExit("--warmup must be at least 1: the first result starts the CPU clock")
    cpu_s = camera_s = 0.0
    results = 0
    for cam in cams:
        stride = 1 if every_frame else cam.stride
        target = max(1, round(seconds * cam.fps / stride))
        yolo = YOLO(str(model), task="detect")
        done, cpu0 = 0, 0.0
        while done < warmup + target:
            passed = done
            for _ in yolo.track(
                source=str(cam.video),
                stream=True,
                tracker="bytetrack.yaml",
                conf=CONF,
                iou=IOU,
                imgsz=imgsz,
                device="cpu",
                verbose=False,
                persist=True,
                vid_stride=stride,
            ):
                done += 1
                if done == warmup:
                    cpu0 = _cpu_s()
                if done >= warmup + target:
                    break
            if done == passed:
                raise SystemExit(f"{cam.video}: Ultralytics read no frame from it")
        cpu_s += _cpu_s() - cpu0
        camera_s += target * stride / cam.fps
        results += target
    return {
        "camera_s": camera_s,
        "cpu_s": cpu_s,
        "detect_fps": results / camera_s,
        "detector_share": 1.0,
        "load": os.getloadavg()[0],
    }


# --- the parent: one child per row, then the table ------------------------------------------

SAME_RATE = "ultralytics same detect rate"
EVERY = "ultralytics every frame"
RunChild = Callable[[list[str]], tuple[dict[str, Any], float]]
HEADER = (
    f"{'side':<30}{'cam-min':>8}{'det fps':>8}{'detector':>9}{'CPU-ms/frame':>13}{'CPU-s':>7}"
    f"{'CPU-s/cam-min':>14}{'/ SW':>6}{'proc CPU-s':>11}{'dropped':>8}{'lag':>7}{'load':>6}"
)


def _row(name: str, r: dict[str, Any], per_min: float, base: float, process_cpu_s: float) -> str:
    frames = r["detect_fps"] * r["camera_s"]
    lag = f"{r['lag_max_s'] * 1000:.0f}ms" if "lag_max_s" in r else "-"
    return (
        f"{name:<30}{r['camera_s'] / 60:>8.2f}{r['detect_fps']:>8.2f}{r['detector_share']:>9.0%}"
        f"{r['cpu_s'] * 1000 / max(frames, 1):>13.0f}{r['cpu_s']:>7.1f}{per_min:>14.2f}"
        f"{per_min / base:>6.2f}{process_cpu_s:>11.1f}{r.get('dropped', '-'):>8}{lag:>7}"
        f"{r['load']:>6.1f}"
    )


def _rows(args: argparse.Namespace, videos: list[Path]) -> list[tuple[str, list[str]]]:
    """(name, child arguments) per row; Streetwatch's own model first: the ratios' base."""
    common = [*(f"--video={v}" for v in videos), f"--warmup={args.warmup}"]
    sw = [*common, "--side=sol-streetwatch", f"--seconds={args.seconds}"]
    sw += [] if args.evidence else ["--no-evidence"]
    ul = [*common, "--side=sol-ultralytics", f"--model={args.model}", f"--imgsz={args.imgsz}"]
    rows = [(f"streetwatch {args.model.stem}", [*sw, f"--model={args.model}"])]
    if args.yolox:
        rows.append((f"streetwatch {args.yolox.stem}", [*sw, f"--model={args.yolox}"]))
    rows.append((SAME_RATE, [*ul, f"--seconds={args.seconds}"]))
    rows.append((EVERY, [*ul, f"--seconds={args.every_seconds}", "--every"]))
    return rows


def compare(args: argparse.Namespace, videos: list[Path], run_child: RunChild) -> None:
    """Run every row in its own child (run_child returns its JSON and its whole-process CPU
    seconds) and print the table, then Ultralytics' ratio to Streetwatch's first row."""
    cams = [camera(v) for v in videos]
    print(
        f"\nsolution level: {len(cams)} cameras, motion gating on, evidence "
        f"{'on' if args.evidence else 'off'}, {args.seconds:g} s of video per camera "
        f"({args.every_seconds:g} s for every frame)"
    )
    for cam in cams:
        print(
            f"  {cam.video.name}: {cam.fps:.2f} fps, detected at {cam.detect_fps:.2f} fps "
            f"(vid_stride {cam.stride})"
        )
    print("\n" + HEADER + "\n" + "-" * len(HEADER), flush=True)
    rows = _rows(args, videos)
    per_min: dict[str, float] = {}
    blocked: set[str] = set()
    dropped, unpaced = 0, False
    for name, child_args in rows:
        r, process_cpu_s = run_child(child_args)
        per_min[name] = r["cpu_s"] / (r["camera_s"] / 60)
        base = per_min[rows[0][0]]
        print(_row(name, r, per_min[name], base, process_cpu_s), flush=True)
        if r.get("dropped"):
            print(f"  {name} fell behind (frames dropped): fewer cameras or a quieter machine")
        if abs(r.get("pace", 1.0) - 1) > 0.05:
            print(f"  {name}: its sources ran at {r['pace']:.2f} x real time, not paced")
            unpaced = unpaced or name == rows[0][0]
        dropped = dropped or (r["dropped"] if name == rows[0][0] else 0)
        blocked.update(r.get("blocked", []))
    ratio = per_min[SAME_RATE] / base
    verdict = "met" if ratio >= 3 else "not met"
    if dropped:
        verdict = f"no verdict: {dropped} frames dropped, Streetwatch did less than its share"
    if unpaced:
        verdict = "no verdict: Streetwatch's sources were not paced in real time"
    print(
        f"\nUltralytics / Streetwatch CPU-s per camera-minute at the same detect rate: "
        f"{ratio:.2f} (goal >= 3: {verdict}); Ultralytics at every frame: "
        f"{per_min[EVERY] / base:.2f}"
    )
    print("proc CPU-s: the whole child (imports, model load, warm-up, stop), for scale")
    print(f"network/pip attempts by ultralytics: {'; '.join(sorted(blocked)) or 'none'}")
