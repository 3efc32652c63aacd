"""The ``edge`` command line. User errors print one line and exit 1; bugs keep tracebacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from edge.cli_support import LOG_LEVELS, UserErrorGroup, config_option, setup_logging
from edge.errors import StreetwatchError


@click.group(cls=UserErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=LOG_LEVELS,
    default="warning",
    show_default=True,
    help="How much the worker logs to stderr.",
)
@click.version_option(package_name="streetwatch")
def cli(log_level: str) -> None:
    """Streetwatch edge worker: detect, track and turn street video into governance events."""
    setup_logging(log_level)


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

    from edge.annotate import Annotator
    from edge.config.camera import CameraConfig, DetectionConfig, ReconnectConfig, SourceConfig
    from edge.detectors import OnnxDetectorConfig
    from edge.model_catalog import load_manifest
    from edge.pipeline import Pipeline, build_detector
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
    pipeline = Pipeline(cfg, detector, fps=1.0)
    src_cfg = SourceConfig(uri=path, reconnect=ReconnectConfig(max_attempts=retries))
    with open_source(src_cfg, realtime=False) as source:
        frame = next(iter(source.frames()), None)
    if frame is None:
        raise StreetwatchError(f"{path}: no frame could be read")
    dets = pipeline.filter(detector.detect(frame.image_bgr))
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
    quiet: bool,
) -> None:
    """Replay VIDEO through the full pipeline with the camera config, as a camera would."""
    from edge.clips import ClipRecorder
    from edge.config import load_camera_config
    from edge.config.edge_box import load_edge_config
    from edge.delivery import Delivery
    from edge.model_catalog import load_manifest
    from edge.pipeline import Pipeline, build_detector
    from edge.replay import replay as run_replay
    from edge.sources import open_source

    cfg = load_camera_config(config_path)
    detector = build_detector(cfg, load_manifest())
    delivery = Delivery(load_edge_config(edge_config)) if edge_config else None
    media_dir = delivery.media_dir if delivery else clips_dir
    recorder = None
    if media_dir is not None and cfg.clips.enabled:
        recorder = ClipRecorder(
            cfg.clips,
            cfg.privacy,
            detector.class_names,
            media_dir,
            delivery.media_ready if delivery else (lambda m: None),
        )
    if delivery:
        delivery.start()
    try:
        with open_source(video, realtime=not fast) as source:
            pipeline = Pipeline(cfg, detector, fps=source.fps)
            summary = run_replay(
                source,
                pipeline,
                annotated_out=annotated_out,
                tracks_out=tracks_out,
                events_out=events_out,
                show_progress=not quiet,
                recorder=recorder,
                delivery=delivery,
            )
        if delivery and not delivery.drain(drain_timeout_s):
            raise StreetwatchError(
                f"not everything was delivered within {drain_timeout_s:.0f} s; it stays in "
                f"{delivery.cfg.outbox.path} and is sent by `edge publish`"
            )
    finally:
        if delivery:
            delivery.stop()
    starts = sum(e.phase == "start" for e in summary.events)
    click.echo(
        f"{summary.frames} frames ({summary.media_s:.1f} s of video) in {summary.wall_s:.1f} s: "
        f"{summary.fps:.1f} fps, detector {summary.detect_ms_mean:.1f} ms/frame, "
        f"rules {summary.rules_ms_mean:.2f} ms/frame, {len(summary.track_ids)} tracks, "
        f"{starts} events",
        err=True,
    )


@cli.command("eval")
@click.argument("video")
@config_option("Camera config YAML with the zones and rules to evaluate.")
@click.option(
    "--truth",
    "-t",
    "truth_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Ground truth: JSON or YAML list of {type, zone, start_s, end_s}.",
)
@click.option(
    "--events-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the replay's event messages as JSON lines.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the scores as one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def eval_cmd(
    video: str,
    config_path: Path,
    truth_path: Path,
    events_out: Path | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Replay VIDEO as fast as possible and score its events against ground truth.

    Prints event-level precision, recall and start-time error. An event matches a truth entry
    of the same type and zone whose time span it overlaps; start error compares when the
    incident began (crowd formed, car stopped, owner left) with the truth's start_s.
    """
    from edge.config import load_camera_config
    from edge.evaluation import evaluate, incidents, load_truth
    from edge.model_catalog import load_manifest
    from edge.pipeline import Pipeline, build_detector
    from edge.replay import replay as run_replay
    from edge.sources import open_source

    cfg = load_camera_config(config_path)
    truth = load_truth(truth_path)
    detector = build_detector(cfg, load_manifest())
    with open_source(video, realtime=False) as source:
        pipeline = Pipeline(cfg, detector, fps=source.fps)
        summary = run_replay(source, pipeline, events_out=events_out, show_progress=not quiet)
    report = evaluate(incidents(summary.events), truth.events, summary.media_s)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    click.echo(
        f"{Path(video).name}: {len(truth.events)} true events, "
        f"{len(report.matches) + len(report.false_positives)} found"
    )
    for m in report.matches:
        click.echo(
            f"  match  {m.truth.type:<16} {m.truth.zone:<12} truth {m.truth.start_s:7.1f} s"
            f"  event {m.incident.start_s:7.1f} s  error {m.start_error_s:+.1f} s"
        )
    for fp in report.false_positives:
        click.echo(f"  extra  {fp.type:<16} {fp.zone:<12} event {fp.start_s:7.1f} s")
    for t in report.misses:
        click.echo(f"  missed {t.type:<16} {t.zone:<12} truth {t.start_s:7.1f} s")
    click.echo(
        f"precision {report.precision:.2f}  recall {report.recall:.2f}  "
        f"max |start error| {report.max_abs_start_error_s:.1f} s"
    )


@cli.group()
def models() -> None:
    """List, download and export detection models."""


@models.command("list")
def models_list() -> None:
    """Show the models in the manifest and where (or whether) each is found offline."""
    from edge.errors import ModelError
    from edge.model_catalog import load_manifest, resolve_model

    manifest = load_manifest()
    for name, entry in manifest.models.items():
        try:
            where = str(resolve_model(name, manifest))
        except ModelError:
            where = "not found offline" + (f" (edge models fetch {name})" if entry.url else "")
        click.echo(f"{name:<16} {entry.family:<7} {entry.input_wh[0]}x{entry.input_wh[1]}  {where}")


@models.command("fetch")
@click.argument("name")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to save into (default: the project's models/).",
)
def models_fetch(name: str, dest: Path | None) -> None:
    """Download model NAME from its manifest URL (connected machines only), checking sha256."""
    from tqdm import tqdm

    from edge.model_catalog import fetch, load_manifest
    from edge.paths import project_root

    bar = tqdm(unit="B", unit_scale=True, desc=name)

    def progress(done: int, total: int) -> None:
        bar.total = total or None
        bar.n = done
        bar.refresh()

    try:
        path = fetch(name, load_manifest(), dest or project_root() / "models", progress)
    finally:
        bar.close()
    click.echo(str(path))


@models.command("export")
@click.argument("weights")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Output .onnx path (default: beside the weights).",
)
@click.option(
    "--imgsz",
    default=640,
    show_default=True,
    type=click.IntRange(32),
    help="Square network input size in pixels (a multiple of 32).",
)
@click.option("--int8", is_flag=True, help="Also quantise weights to int8 (dynamic).")
@click.option(
    "--class-list",
    default=None,
    help="Name the classes from a list in models/manifest.yaml (e.g. coco80), for "
    "models whose checkpoint carries no names, such as one built from a YAML.",
)
def models_export(
    weights: str, out: Path | None, imgsz: int, int8: bool, class_list: str | None
) -> None:
    """Export an Ultralytics model (WEIGHTS: .pt checkpoint or model .yaml) to ONNX.

    Needs the export extra. With a name such as yolo11n.pt, Ultralytics downloads the COCO
    weights first, so run it on a connected machine and copy the .onnx to the edge box.
    """
    from edge.export import export_ultralytics
    from edge.model_catalog import load_manifest

    if imgsz % 32:
        raise StreetwatchError(f"--imgsz {imgsz} is not a multiple of 32")
    names = None
    if class_list is not None:
        lists = load_manifest().class_lists
        if class_list not in lists:
            raise StreetwatchError(
                f"unknown class list '{class_list}': one of {', '.join(sorted(lists))}"
            )
        names = tuple(lists[class_list])
    click.echo(str(export_ultralytics(weights, out, imgsz, int8, names)))


@cli.group()
def keys() -> None:
    """Manage this edge box's CURVE key pair."""


@keys.command("generate")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("keys"),
    show_default=True,
    help="Folder for the key files.",
)
def keys_generate(name: str, directory: Path) -> None:
    """Write NAME.key (public: register it with `aggregator edges add`) and NAME.key_secret
    (secret, mode 600, stays on this box)."""
    from edge.keys import generate

    public, secret = generate(directory, name)
    click.echo(f"{public}\n{secret}")


EDGE_CONFIG = config_option("Edge box config YAML (edge id, outbox, aggregator link).")


def _run_publisher(config_path: Path, extra: Any = None) -> None:
    """Run the event publisher and (when configured) the evidence uploader until stopped."""
    import signal
    import threading

    from edge.config.edge_box import load_edge_config
    from edge.publisher import Publisher
    from edge.uploader import Uploader

    cfg = load_edge_config(config_path)
    workers = [Publisher(cfg).run]
    if cfg.aggregator.http_url and cfg.aggregator.token_file:
        workers.append(Uploader(cfg).run)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threads = [threading.Thread(target=w, args=(stop,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    try:
        if extra is not None:
            extra(cfg, stop)
        while all(t.is_alive() for t in threads) and not stop.is_set():
            threads[0].join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        for t in threads:
            t.join(5)


@cli.command()
@EDGE_CONFIG
def publish(config_path: Path) -> None:
    """Send the outbox (events over ZeroMQ, evidence over HTTP) until stopped."""
    _run_publisher(config_path)


@cli.command()
@EDGE_CONFIG
@click.option(
    "--count",
    default=5001,
    show_default=True,
    type=click.IntRange(1),
    help="Messages to generate in all (3 per incident: start, update, end).",
)
@click.option(
    "--rate",
    default=500.0,
    show_default=True,
    type=click.FloatRange(1),
    help="Messages per second put into the outbox.",
)
@click.option(
    "--exit-when-done", is_flag=True, help="Exit once every message is generated and acknowledged."
)
def loadgen(config_path: Path, count: int, rate: float, exit_when_done: bool) -> None:
    """Generate synthetic events into the real outbox while publishing them.

    Resumes after a restart where the outbox says it stopped.
    """
    import time

    from edge.loadgen import generate
    from edge.outbox import Outbox

    def work(cfg: Any, stop: Any) -> None:
        outbox = Outbox(cfg.outbox.path, cfg.outbox.max_rows)
        generate(outbox, cfg.edge_id, count, rate, stop)
        while exit_when_done and not stop.is_set():
            if outbox.depth() == 0:
                stop.set()
            time.sleep(0.2)
        outbox.close()

    _run_publisher(config_path, work)


@cli.group()
def outbox() -> None:
    """Inspect the edge outbox."""


@outbox.command("status")
@EDGE_CONFIG
def outbox_status(config_path: Path) -> None:
    """Print the outbox depth, dead letters, drops and the publisher's last known state (JSON)."""
    from edge.config.edge_box import load_edge_config
    from edge.outbox import Outbox
    from edge.publisher import STATUS_KEY
    from edge.uploader import STATUS_KEY as UPLOADER_KEY

    cfg = load_edge_config(config_path)
    box = Outbox(cfg.outbox.path, cfg.outbox.max_rows)
    meta = box.meta()
    out = {
        "depth": box.depth(),
        "dead_letters": box.dead_count(),
        "dropped_updates": int(meta.get("dropped_updates", 0)),
        "refused": int(meta.get("refused", 0)),
        "publisher": json.loads(meta.get(STATUS_KEY, "{}")),
        "media_depth": box.media_depth(),
        "dead_media": box.dead_media_count(),
        "uploader": json.loads(meta.get(UPLOADER_KEY, "{}")),
    }
    box.close()
    click.echo(json.dumps(out))


def main() -> None:
    cli(prog_name="edge")


if __name__ == "__main__":
    main()
