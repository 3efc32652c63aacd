"""`edge eval`: score one video against its truth, or a whole scenario suite."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge.cli.options import MOTION_OPTION


@click.command("eval")
@click.argument("video", required=False)
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Camera config YAML with the zones and rules to evaluate (one video).",
)
@click.option(
    "--truth",
    "-t",
    "truth_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Ground truth: JSON or YAML list of {type, zone, start_s, end_s} (one video).",
)
@click.option(
    "--suite",
    "suite_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Score every scenario (*.recipe.yaml with its truth) of this folder instead.",
)
@click.option("--only", multiple=True, help="With --suite: only this scenario (repeatable).")
@click.option(
    "--build-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out/scenarios"),
    show_default=True,
    help="With --suite: where the scenario videos are built (kept while recipes are unchanged).",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --suite: write the table as JSON here (default: BUILD_DIR/suite-<motion>.json).",
)
@click.option(
    "--jobs", "-j", default=1, show_default=True, type=click.IntRange(1), help="Scenarios at once."
)
@click.option(
    "--events-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="One video: also write the replay's event messages as JSON lines.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the scores as one JSON object.")
@MOTION_OPTION
@click.option("--quiet", "-q", is_flag=True, help="No progress.")
def eval_cmd(
    video: str | None,
    config_path: Path | None,
    truth_path: Path | None,
    suite_dir: Path | None,
    only: tuple[str, ...],
    build_dir: Path,
    out_path: Path | None,
    jobs: int,
    events_out: Path | None,
    as_json: bool,
    motion: str,
    quiet: bool,
) -> None:
    """Replay VIDEO as fast as possible and score its events against ground truth, or (with
    --suite) every scenario of a suite, printing one table.

    Scores: event-level precision and recall, start and end error, fragments (one incident
    reported as several) and flaps (an incident starting again within seconds of its end).
    An event matches a truth entry of the same type and zone whose time span it overlaps.
    With --suite the exit status is 1 when a scenario fails that is not a known limit.
    """
    if suite_dir is not None:
        if video or config_path or truth_path or events_out:
            raise click.UsageError("--suite scores its own scenarios: give no VIDEO, -c or -t")
        _suite(suite_dir, only, build_dir, out_path, jobs, as_json, motion, quiet)
        return
    if not (video and config_path and truth_path):
        raise click.UsageError("give VIDEO with --config and --truth, or --suite DIR")
    _one(video, config_path, truth_path, events_out, as_json, motion, quiet)


def _one(
    video: str,
    config_path: Path,
    truth_path: Path,
    events_out: Path | None,
    as_json: bool,
    motion: str,
    quiet: bool,
) -> None:
    from edge.config import load_camera_config, with_motion
    from edge.tools.evaluation import evaluate_video, load_truth

    cfg = with_motion(load_camera_config(config_path), motion)
    truth = load_truth(truth_path)
    report, summary = evaluate_video(
        video, cfg, truth, events_out=events_out, show_progress=not quiet
    )
    calls = {"frames": summary.frames, "detector_calls": summary.detector_calls}
    if as_json:
        click.echo(json.dumps(report.to_dict() | calls))
        return
    click.echo(
        f"{Path(video).name}: {len(truth.events)} true events, "
        f"{len(report.matches) + len(report.false_positives)} found"
    )
    for m in report.matches:
        end = m.end_error_s
        click.echo(
            f"  match  {m.truth.type:<16} {m.truth.zone:<12} truth {m.truth.start_s:7.1f} s"
            f"  event {m.incident.start_s:7.1f} s  error {m.start_error_s:+.1f} s"
            + ("" if end is None else f"  end error {end:+.1f} s")
        )
    for fp in report.false_positives:
        click.echo(f"  extra  {fp.type:<16} {fp.zone:<12} event {fp.start_s:7.1f} s")
    for t in report.misses:
        click.echo(f"  missed {t.type:<16} {t.zone:<12} truth {t.start_s:7.1f} s")
    click.echo(
        f"precision {report.precision:.2f}  recall {report.recall:.2f}  "
        f"max |start error| {report.max_abs_start_error_s:.1f} s  "
        f"fragments {len(report.fragments)}  flaps {len(report.flaps)}  "
        f"detector on {summary.detector_calls} of {summary.frames} frames"
    )


def _suite(
    suite_dir: Path,
    only: tuple[str, ...],
    build_dir: Path,
    out_path: Path | None,
    jobs: int,
    as_json: bool,
    motion: str,
    quiet: bool,
) -> None:
    from edge.tools.suite import run_suite, table

    def say(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    results = run_suite(suite_dir, build_dir, motion=motion, jobs=jobs, only=only, progress=say)
    doc = {"suite": str(suite_dir), "motion": motion, "scenarios": [r.to_dict() for r in results]}
    out = out_path or build_dir / f"suite-{motion}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    click.echo(json.dumps(doc) if as_json else table(results))
    if not as_json:
        say(f"table written to {out}")
    if any(r.verdict() == "FAIL" for r in results):
        raise SystemExit(1)
