"""`edge run` (the multi-camera worker) and `edge demo` (everything on one machine)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from pathlib import Path

import click

from contract.cli import config_option


@click.command("run")
@config_option("Edge box config YAML: edge id, outbox, aggregator link, cameras, http.")
def run_cmd(config_path: Path) -> None:
    """Serve every camera of the edge config until stopped (SIGTERM or Ctrl-C).

    Decodes each camera, detects at its detect_fps (skipping still frames when its motion
    gating is on), tracks, applies its rules and delivers the events. Health and Prometheus
    metrics are served at the config's http address.
    """
    from edge.config.edge_box import load_edge_config
    from edge.detectors.catalog import load_manifest
    from edge.worker import Worker

    worker = Worker(load_edge_config(config_path), load_manifest())
    stop = worker.stop_event
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.start()
    click.echo(
        f"edge {worker.cfg.edge_id}: {len(worker.feeds)} camera(s); metrics at "
        f"{worker.http.url}/metrics",
        err=True,
    )
    try:
        worker.run_until_stopped()
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
    if worker.stage.error:
        from contract.errors import StreetwatchError

        raise StreetwatchError(f"the detect stage failed: {worker.stage.error}")


@click.command("demo")
@click.option(
    "--dir",
    "demo_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("streetwatch-demo"),
    show_default=True,
    help="Folder for the demo's keys, configs, database, outbox and evidence (kept).",
)
@click.option("--port", default=8000, show_default=True, help="Review UI and API port.")
@click.option("--ingest-port", default=5560, show_default=True, help="ZeroMQ ingest port.")
@click.option("--metrics-port", default=9108, show_default=True, help="Edge metrics port.")
def demo_cmd(demo_dir: Path, port: int, ingest_port: int, metrics_port: int) -> None:
    """Run an aggregator and an edge worker looping the sample videos; print the UI's URL.

    Uses the model and videos on disk ($STREETWATCH_ASSETS or ../shared/assets), downloading
    only what is missing. Ctrl-C stops both.
    """
    from edge.config.edge_box import load_edge_config
    from edge.detectors.catalog import load_manifest
    from edge.tools.demo import DEMO_USER, DemoPorts, prepare, start_aggregator
    from edge.worker import Worker

    def say(text: str) -> None:
        click.echo(text, err=True)

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt  # SIGTERM like Ctrl-C: the child aggregator is stopped too

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)
    ports = DemoPorts(http=port, ingest=ingest_port, metrics=metrics_port)
    demo_dir = demo_dir.absolute()
    say(f"streetwatch demo in {demo_dir}")
    agg_cfg, edge_cfg, password = prepare(demo_dir, ports, say)
    aggregator = start_aggregator(agg_cfg, ports, demo_dir / "aggregator.log")
    worker: Worker | None = None
    try:
        worker = Worker(load_edge_config(edge_cfg), load_manifest())
        worker.start()
        click.echo(
            f"Review UI: http://127.0.0.1:{port}/ui/  (user {DEMO_USER}, password {password})"
        )
        click.echo(f"Edge metrics: {worker.http.url}/metrics")
        click.echo("Events appear as the videos play; Ctrl-C stops the demo.", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            worker.run_until_stopped()
    finally:
        if worker is not None:
            worker.stop()
        aggregator.terminate()
        try:
            aggregator.wait(20)
        except subprocess.TimeoutExpired:
            aggregator.kill()
