"""`edge run` (the multi-camera worker) and `edge demo` (everything on one machine)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from contract.cli import config_option
from contract.errors import StreetwatchError

if TYPE_CHECKING:
    from edge.tools.demo import DemoPorts, StopRequest


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
    only what is missing. Ctrl-C or SIGTERM stops the edge (delivering what it can), then the
    aggregator.
    """
    from edge.tools.demo import DemoPorts, SetupInterruptedError, StopRequest

    def say(text: str) -> None:
        click.echo(text, err=True)

    stop = StopRequest()
    with stop.installed():
        try:
            _demo(demo_dir.absolute(), DemoPorts(port, ingest_port, metrics_port), stop, say)
        except SetupInterruptedError as exc:
            say(f"{exc}: the demo stopped during set-up")


def _demo(demo_dir: Path, ports: DemoPorts, stop: StopRequest, say: Callable[[str], None]) -> None:
    from edge.config.edge_box import load_edge_config
    from edge.detectors.catalog import load_manifest
    from edge.tools.demo import DEMO_USER, prepare, start_aggregator, stop_aggregator
    from edge.worker import Worker

    say(f"streetwatch demo in {demo_dir}")
    agg_cfg, edge_cfg, password = prepare(demo_dir, ports, say)
    aggregator = start_aggregator(agg_cfg, ports, demo_dir / "aggregator.log")
    started: Worker | None = None
    try:
        worker = Worker(load_edge_config(edge_cfg), load_manifest())
        stop.hand_over(worker.stop_event)
        worker.start()
        started = worker
        click.echo(
            f"Review UI: http://127.0.0.1:{ports.http}/ui/  (user {DEMO_USER}, password {password})"
        )
        click.echo(f"Edge metrics: {worker.http.url}/metrics")
        say("Events appear as the videos play; Ctrl-C stops the demo.")
        worker.run_until_stopped()
    finally:
        # The edge first, while the aggregator still takes its last events and evidence;
        # then the aggregator. Both are bounded, so the demo never hangs here.
        t0 = time.monotonic()
        if started is not None:
            if stop.signal_name:
                say(f"{stop.signal_name}: stopping the edge, then the aggregator")
            started.stop()
        edge_s = time.monotonic() - t0
        stop_aggregator(aggregator)
        say(f"demo stopped in {time.monotonic() - t0:.1f} s (edge {edge_s:.1f} s)")
    if started is not None and started.stage.error:
        raise StreetwatchError(f"the detect stage failed: {started.stage.error}")
