"""`edge publish`, `edge loadgen` and `edge outbox status`: the outbox and its sender."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from contract.cli import config_option

EDGE_CONFIG = config_option("Edge box config YAML (edge id, outbox, aggregator link).")


def _run_publisher(config_path: Path, extra: Any = None) -> None:
    """Run the event publisher and (when configured) the evidence uploader until stopped."""
    import signal
    import threading

    from edge.config.edge_box import load_edge_config
    from edge.delivery.publisher import Publisher
    from edge.delivery.uploader import Uploader

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


@click.command()
@EDGE_CONFIG
def publish(config_path: Path) -> None:
    """Send the outbox (events over ZeroMQ, evidence over HTTP) until stopped."""
    _run_publisher(config_path)


@click.command()
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
@click.option(
    "--camera-prefix",
    default="cam",
    show_default=True,
    help="Cameras are PREFIX-0..3; edges sharing an aggregator need their own (cameras are "
    "bound to the first edge that reports them).",
)
def loadgen(
    config_path: Path, count: int, rate: float, exit_when_done: bool, camera_prefix: str
) -> None:
    """Generate synthetic events into the real outbox while publishing them.

    Resumes after a restart where the outbox says it stopped.
    """
    import time

    from edge.delivery.outbox import Outbox
    from edge.tools.loadgen import generate

    def work(cfg: Any, stop: Any) -> None:
        outbox = Outbox(cfg.outbox.path, cfg.outbox.max_rows)
        generate(outbox, cfg.edge_id, count, rate, stop, camera_prefix)
        while exit_when_done and not stop.is_set():
            if outbox.depth() == 0:
                stop.set()
            time.sleep(0.2)
        outbox.close()

    _run_publisher(config_path, work)


@click.group()
def outbox() -> None:
    """Inspect the edge outbox."""


@outbox.command("status")
@EDGE_CONFIG
def outbox_status(config_path: Path) -> None:
    """Print the outbox depth, dead letters, drops and the publisher's last known state (JSON)."""
    from edge.config.edge_box import load_edge_config
    from edge.delivery.outbox import Outbox
    from edge.delivery.publisher import STATUS_KEY
    from edge.delivery.uploader import STATUS_KEY as UPLOADER_KEY

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
