"""The ``edge`` command line. User errors print one line and exit 1; bugs keep tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import click

from contract.cli import (
    LOG_LEVELS,
    UserErrorGroup,
    config_option,
    log_format_option,
    setup_logging,
)
from contract.errors import StreetwatchError
from edge.cli.delivery import loadgen, outbox, publish
from edge.cli.evaluate import eval_cmd
from edge.cli.models import keys, models
from edge.cli.options import MOTION_OPTION
from edge.cli.worker import demo_cmd, run_cmd


@click.group(cls=UserErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=LOG_LEVELS,
    default="warning",
    show_default=True,
    help="How much the worker logs to stderr.",
)
@log_format_option()
@click.version_option(package_name="streetwatch")
def cli(log_level: str, log_format: str) -> None:
    """Streetwatch edge worker: detect, track and turn street video into governance events."""
    setup_logging(log_level, log_format)


@cli.command()
@click.argument("path")
@click.option(
    "--model",
    "-m",
    default="yolox_nano",
    show_default=True,
    help="Model name from models/manifest.yaml, or a path to an .onnx file.",
)
@click.option(
    "--score",
    default=0.3,
    show_default=True,
    type=click.FloatRange(0.01, 1.0),
    help="Minimum detection score.",
)
@click.option(
    "--classes",
    default=None,
    help="Comma-separated class names to keep (default: all the model knows).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON array of {label, class_id, score, xyxy} instead of a table.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the frame with boxes drawn to this image file.",
)
@click.option(
    "--retries",
    default=3,
    show_default=True,
    type=click.IntRange(1),
    help="For a stream or camera: attempts to get a frame before giving up.",
)
def detect(
    path: str,
    model: str,
    score: float,
    classes: str | None,
    as_json: bool,
    out: Path | None,
    retries: int,
) -> None:
    """Detect objects in an image, or in the first frame of a video, stream or camera (PATH)."""
    import cv2

    from contract.config.camera import CameraConfig, DetectionConfig, ReconnectConfig, SourceConfig
    from edge.camera.chain import CameraChain
    from edge.camera.detectors import build_detector
    from edge.detectors import OnnxDetectorConfig
    from edge.detectors.catalog import load_manifest
    from edge.evidence.annotate import Annotator
    from edge.sources import open_source

    cfg = CameraConfig(
        id="cli",
        detector=OnnxDetectorConfig(model=model),
        detection=DetectionConfig(
            classes=[c.strip() for c in classes.split(",")] if classes else None,
            score_threshold=score,
        ),
    )
    detector = build_detector(cfg, load_manifest())
    chain = CameraChain(cfg, detector, fps=1.0)
    src_cfg = SourceConfig(uri=path, reconnect=ReconnectConfig(max_attempts=retries))
    with open_source(src_cfg, realtime=False) as source:
        frame = next(iter(source.frames()), None)
    if frame is None:
        raise StreetwatchError(f"{path}: no frame could be read")
    dets = chain.filter(detector.detect(frame.image_bgr))
    records = dets.to_records(detector.class_names)
    if out is not None:
        image = Annotator(detector.class_names).draw(frame.image_bgr, dets, [])
        if not cv2.imwrite(str(out), image):
            raise StreetwatchError(f"{out}: cannot write image (unknown extension or folder)")
    if as_json:
        click.echo(json.dumps(records))
        return
    click.echo(f"{len(records)} detections ({detector.model_name}, {frame.wh[0]}x{frame.wh[1]})")
    for r in records:
        x1, y1, x2, y2 = r["xyxy"]
        click.echo(f"  {r['label']:<14} {r['score']:.2f}  [{x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}]")


@cli.command()
@click.argument("video")
@config_option("Camera config YAML (detector, detection, tracking, zones).")
@click.option(
    "--fast",
    is_flag=True,
    help="Process as fast as possible instead of at the video's own frame rate.",
)
@click.option(
    "--annotated-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write an MP4 with zones, boxes and track ids drawn.",
)
@click.option(
    "--tracks-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write one JSON line per frame with its confirmed tracks.",
)
@click.option(
    "--events-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write every event lifecycle message (start, update, end) as a JSON line.",
)
@click.option(
    "--clips-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Record evidence (MP4 clip and JPEG snapshot per event) into this folder.",
)
@click.option(
    "--edge-config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Edge box config: put events and evidence in its outbox and deliver them "
    "to the aggregator, as a camera would.",
)
@click.option(
    "--drain-timeout-s",
    default=120.0,
    show_default=True,
    type=click.FloatRange(0),
    help="With --edge-config: wait this long at the end for everything to be delivered.",
)
@MOTION_OPTION
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def replay(
    video: str,
    config_path: Path,
    fast: bool,
    annotated_out: Path | None,
    tracks_out: Path | None,
    events_out: Path | None,
    clips_dir: Path | None,
    edge_config: Path | None,
    drain_timeout_s: float,
    motion: str,
    quiet: bool,
) -> None:
    """Replay VIDEO through the full pipeline with the camera config, as a camera would."""
    from edge.config import load_camera_config, with_motion
    from edge.tools.replay import ReplayOutputs, replay_file

    summary = replay_file(
        video,
        with_motion(load_camera_config(config_path), motion),
        realtime=not fast,
        outputs=ReplayOutputs(annotated_out, tracks_out, events_out, clips_dir),
        edge_config=edge_config,
        drain_timeout_s=drain_timeout_s,
        show_progress=not quiet,
    )
    starts = sum(e.phase == "start" for e in summary.events)
    click.echo(
        f"{summary.frames} frames ({summary.media_s:.1f} s of video) in {summary.wall_s:.1f} s: "
        f"{summary.fps:.1f} fps, detector {summary.detect_ms_mean:.1f} ms/call on "
        f"{summary.detector_calls} frames ({summary.skipped_fraction:.0%} skipped), "
        f"rules {summary.rules_ms_mean:.2f} ms/frame, {len(summary.track_ids)} tracks, "
        f"{starts} events",
        err=True,
    )


for command in (eval_cmd, run_cmd, demo_cmd, models, keys, publish, loadgen, outbox):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="edge")


if __name__ == "__main__":
    main()
