"""Motion gating on disturbed street scenes and on the samples: how often the detector runs.

Each scene (tests/scenes.py: snow, rain, foliage in the wind, each with shake and sensor
noise, still or with an object coming in) and each sample video goes once through three
real camera chains in lockstep, frame by frame: one with the motion gate as committed (HEAD,
the baseline), one with the gate of the working tree, and one with that gate told the boxes
the detector found (``detected(ts_s, objects_xyxy)``, the chain change that goes with it,
emulated here). All run the real detector (YOLOX-Nano) and tracker, so "moving" and
"settling" come from real tracks. Printed per scene: frames, detector calls and their share
for each, and the gate's own cost per frame in microseconds (``decide`` plus ``detected``;
for the new gate also the part that is the shrink to the small grey, which a decode thread
can do once and pass in). At the end the gates' cost alone, without the detector.

    .venv/bin/python bench/bench_gating.py [--only snow,parking] [--baseline REV]
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.camera.chain import CameraChain
from edge.camera.detectors import build_detector
from edge.config import load_camera_config, with_motion
from edge.detectors.catalog import load_manifest
from edge.paths import assets_dir, project_root
from edge.pipeline import motion
from edge.sources import open_source
from edge.sources.base import Frame
from tests.scenes import FPS, SCENES, scene_frames

REPO = project_root()
SAMPLES = REPO / "sample_videos"
#: Scenes run with the parking sample's config: street classes, a kerb zone.
SCENE_CONFIG = SAMPLES / "parking.camera.yaml"
VIDEOS = [
    ("bottle-detection", "asset", "bottle-detection.mp4"),
    ("crowding", "generated", "crowding.mp4"),
    ("parking", "generated", "parking.mp4"),
    ("one-by-one-person-detection", "asset", "one-by-one-person-detection.mp4"),
]


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def baseline_module(rev: str, tmp: Path) -> ModuleType:
    """edge/pipeline/motion.py as committed at ``rev``, imported from a temporary file."""
    source = subprocess.run(
        ["git", "show", f"{rev}:edge/pipeline/motion.py"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = tmp / "motion_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("motion_baseline", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"{path}: cannot load the baseline gate")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@dataclass
class TimedGate:
    """Forwards to a gate and adds up the time spent in it."""

    gate: Any
    split_shrink: bool = False
    #: Hand the gate the boxes the detector found (the chain change proposed with the new
    #: gate, emulated: the chain's ``detected(ts_s)`` call cannot pass them yet).
    boxes_of: CameraChain | None = None
    frames: int = 0
    total_s: float = 0.0
    shrink_s: float = 0.0

    def decide(self, image_bgr: Any, ts_s: float, **kw: Any) -> Any:
        self.frames += 1
        t0 = time.perf_counter()
        if self.split_shrink:
            grey = self.gate.shrink(image_bgr)
            self.shrink_s += time.perf_counter() - t0
            kw["grey"] = grey
        decision = self.gate.decide(image_bgr, ts_s, **kw)
        self.total_s += time.perf_counter() - t0
        return decision

    def detected(self, ts_s: float) -> None:
        t0 = time.perf_counter()
        if self.boxes_of is None:
            self.gate.detected(ts_s)
        else:
            self.gate.detected(ts_s, self.boxes_of._carried.xyxy)
        self.total_s += time.perf_counter() - t0

    def us(self, seconds: float) -> float:
        return seconds / max(1, self.frames) * 1e6


@dataclass
class Row:
    name: str
    frames: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    gates: dict[str, TimedGate] = field(default_factory=dict)


def run(name: str, cfg_path: Path, frames: Iterator[Frame], fps: float, old: ModuleType) -> Row:
    cfg = with_motion(load_camera_config(cfg_path), "on")
    detector = build_detector(cfg, load_manifest())
    row = Row(name)
    chains: dict[str, CameraChain] = {}
    for label in ("old", "new", "new+boxes"):
        chain = CameraChain(cfg, detector, fps=fps)
        if label == "old":
            timed = TimedGate(old.MotionGate(cfg.motion))
        else:
            timed = TimedGate(motion.MotionGate(cfg.motion), split_shrink=label == "new")
            timed.boxes_of = chain if label == "new+boxes" else None
        row.gates[label] = chain.gate = timed  # type: ignore[assignment]
        row.calls[label] = 0
        chains[label] = chain
    for frame in frames:
        row.frames += 1
        for label, chain in chains.items():
            row.calls[label] += chain.process(frame).detected
    for chain in chains.values():
        chain.finish()
    return row


def scene_rows(names: list[str], old: ModuleType) -> Iterator[Row]:
    for name in names:
        frames = (Frame(f.image_bgr, f.ts_s, f.index) for f in scene_frames(name))
        yield run(f"scene {name}", SCENE_CONFIG, frames, FPS, old)


def video_rows(names: list[str], old: ModuleType, clips: Path) -> Iterator[Row]:
    for name, kind, file in VIDEOS:
        if name not in names:
            continue
        video = assets_dir() / "videos" / file if kind == "asset" else clips / file
        with open_source(str(video), realtime=False) as src:
            yield run(f"sample {name}", SAMPLES / f"{name}.camera.yaml", src.frames(), src.fps, old)


def gate_cost(old: ModuleType, scene: str = "snow", frames: int = 100) -> dict[str, float]:
    """Microseconds per frame of each gate alone (no detector in the caches), best of three
    passes over the same frames: the old gate, the new one shrinking itself, the new one
    given the grey (the shrink done by whoever decoded the frame)."""
    scene_iter = zip(range(frames), scene_frames(scene), strict=False)
    images = [(f.image_bgr, f.ts_s) for _, f in scene_iter]
    cfg = with_motion(load_camera_config(SCENE_CONFIG), "on").motion
    greys = [motion.shrink(img, cfg.work_width_px) for img, _ in images]
    cases = {"old": (old.MotionGate, False), "new": (motion.MotionGate, False)}
    cases["new, grey given"] = (motion.MotionGate, True)
    best: dict[str, float] = {}
    for label, (make, given) in cases.items():
        for _ in range(3):
            gate = make(cfg)
            t0 = time.perf_counter()
            for (img, ts), grey in zip(images, greys, strict=True):
                kw = {"grey": grey} if given else {}
                if gate.decide(img, ts, moving=False, **kw).detect:
                    gate.detected(ts)
            us = (time.perf_counter() - t0) / len(images) * 1e6
            best[label] = min(best.get(label, us), us)
    return best


def print_row(row: Row) -> None:
    old, new = row.gates["old"], row.gates["new"]
    calls = " | ".join(
        f"{row.calls[k]} ({row.calls[k] / max(1, row.frames):.0%})" for k in row.calls
    )
    print(
        f"| {row.name} | {row.frames} | {calls} | {old.us(old.total_s):.0f} "
        f"| {new.us(new.total_s):.0f} | {new.us(new.shrink_s):.0f} |",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated scene or sample names")
    ap.add_argument("--baseline", default="HEAD", help="git revision of the old gate")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    scenes = [n for n in SCENES if not only or n in only]
    videos = [n for n, _, _ in VIDEOS if not only or n in only]
    print(f"machine: {cpu_name()}, python {platform.python_version()}")
    print(f"old gate: edge/pipeline/motion.py at {args.baseline}; new gate: working tree")
    print(
        "| scene | frames | detector calls, old gate | new gate | new gate, chain passes boxes "
        "| old gate us/frame | new gate us/frame | of which shrink us |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        old = baseline_module(args.baseline, Path(tmp))
        cost = gate_cost(old)  # also warms OpenCV up before the table's timings
        for row in scene_rows(scenes, old):
            print_row(row)
        if videos:
            subprocess.run(
                [sys.executable, str(SAMPLES / "make_clips.py"), tmp],
                check=True,
                capture_output=True,
            )
            for row in video_rows(videos, old, Path(tmp)):
                print_row(row)
    print("gate alone, 100 frames of the snow scene (640x480), us/frame, best of 3:")
    print(", ".join(f"{label} {us:.0f}" for label, us in cost.items()))


if __name__ == "__main__":
    main()
