"""Evidence recording cost: detection fps with and without clip encoding, encoder seconds
per clip second, and ring-buffer bytes per camera, measured in one run.

    .venv/bin/python bench/bench_clips.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contract.config.camera import ClipConfig
from edge.camera.chain import CameraChain
from edge.camera.detectors import build_detector
from edge.config import load_camera_config, with_motion
from edge.detectors.catalog import load_manifest
from edge.evidence.clips import ClipRecorder
from edge.evidence.media import MediaItem
from edge.evidence.ringbuffer import FrameRing
from edge.paths import assets_dir, project_root
from edge.rules.events import Event
from edge.sources import open_source

VIDEO = assets_dir() / "videos" / "bottle-detection.mp4"
CONFIG = project_root() / "sample_videos" / "bottle-detection.camera.yaml"


def run(mode: str) -> tuple[float, float, float, int]:
    """mode: none | events (clips of the real events) | always (a clip is always recording)."""
    cfg = with_motion(load_camera_config(CONFIG), "off")  # the measured figures per frame
    detector = build_detector(cfg, load_manifest())
    ready: list[MediaItem] = []
    with tempfile.TemporaryDirectory() as tmp, open_source(str(VIDEO), realtime=False) as src:
        pipe = CameraChain(cfg, detector, fps=src.fps)
        clip_cfg = cfg.clips if mode != "always" else ClipConfig(max_s=10.0)
        rec = (
            ClipRecorder(clip_cfg, cfg.privacy, detector.class_names, Path(tmp), ready.append)
            if mode != "none"
            else None
        )
        t0 = time.perf_counter()
        n = 0
        for frame in src.frames():
            res = pipe.process(frame)
            events = list(res.events)
            if mode == "always" and frame.index % round(10 * src.fps) == 0:
                events.append(
                    Event(
                        f"e{frame.index}",
                        "bench",
                        "start",
                        "c",
                        "z",
                        "r",
                        frame.ts_s,
                        frame.ts_s,
                        0.0,
                        "s",
                        "low",
                    )
                )
            if rec is not None:
                rec.observe(frame, res.tracks, events, pipe.zones)
            n += 1
        fps = n / (time.perf_counter() - t0)
        if rec is None:
            return fps, 0.0, 0.0, 0
        rec.close()
        clip_s = sum(m.duration_s for m in ready if m.kind == "clip")
        return fps, rec.encoder.encode_s, clip_s, rec.dropped_frames


def main() -> None:
    print(
        f"{'clip recording':<34}{'pipeline fps':>13}{'vs none':>9}"
        f"{'encode s / clip s':>19}{'dropped':>9}"
    )
    base = None
    for mode, label in [
        ("none", "off"),
        ("events", "the sample's 4 incidents"),
        ("always", "always recording (worst case)"),
    ]:
        fps, enc_s, clip_s, dropped = run(mode)
        base = base or fps
        per = f"{enc_s / clip_s:.3f}" if clip_s else "-"
        print(f"{label:<34}{fps:>13.1f}{fps / base:>9.2f}{per:>19}{dropped:>9}")
    print()
    d = ClipConfig()
    print(
        f"ring buffer at defaults ({d.buffer_s:.0f} s, {d.fps:.0f} fps, {d.width_px} px wide, "
        f"JPEG q{d.jpeg_quality}):"
    )
    # The GIFs are shorter than the buffer, so they never fill it.
    for name in ["car-detection.mp4", "one-by-one-person-detection.mp4", "bottle-detection.mp4"]:
        ring = FrameRing(d.buffer_s, d.fps, d.width_px, d.jpeg_quality)
        samples = []
        with open_source(str(assets_dir() / "videos" / name), realtime=False) as src:
            for f in src.frames():
                ring.push(f.ts_s, f.image_bgr)
                if f.ts_s > d.buffer_s:
                    samples.append(ring.bytes)
        print(
            f"  {name:<34} median {statistics.median(samples) / 1e6:6.2f} MB, "
            f"max {max(samples) / 1e6:6.2f} MB"
        )


if __name__ == "__main__":
    main()
