"""The scenario suite (sample_videos/scenarios) with motion gating on and off, against the
rules and background model of a baseline revision, in the same run.

Every scenario video is built once (edge/tools/scenarios). Then, for gating on and off:

- **now**: the working tree's ``edge eval --suite`` (edge/tools/suite.py), two scenarios at
  a time;
- **baseline**: the same videos replayed by ``edge eval VIDEO --events-out`` of the baseline
  revision (a git worktree, default 5c3fc65: the code before issue 17), its events scored by
  the working tree's scoring (fragments and flaps included), so both columns are judged alike.

Printed: the table of each, and per gating mode the scenarios passed, known limits and
failures, the worst start error and the detector calls (now / baseline).

    .venv/bin/python bench/bench_scenarios.py [--baseline REV] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.paths import assets_dir, project_root
from edge.tools.evaluation import Incident, evaluate, load_truth
from edge.tools.scenarios import Scenario, build_scenario, find_scenarios, load_recipe
from edge.tools.suite import ScenarioResult, run_suite, table

REPO = project_root()
SUITE = REPO / "sample_videos" / "scenarios"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def _incidents(events_jsonl: Path) -> list[Incident]:
    """Incidents from an event log written by any revision's --events-out."""
    by_id: dict[str, list[dict[str, object]]] = {}
    for line in events_jsonl.read_text().splitlines():
        ev = json.loads(line)
        by_id.setdefault(str(ev["event_id"]), []).append(ev)
    out = []
    for eid, evs in by_id.items():
        start = next((e for e in evs if e["phase"] == "start"), evs[0])
        end = next((e for e in evs if e["phase"] == "end"), None)
        out.append(
            Incident(
                eid,
                str(start["type"]),
                str(start["zone"]),
                float(start["started_ts"]),  # type: ignore[arg-type]
                float(start["ts"]),  # type: ignore[arg-type]
                None if end is None else float(end["ts"]),  # type: ignore[arg-type]
            )
        )
    return sorted(out, key=lambda i: i.start_s)


def baseline_result(worktree: Path, s: Scenario, motion: str, tmp: Path) -> ScenarioResult:
    """One scenario replayed by the baseline revision's CLI, scored here."""
    truth = load_truth(s.truth_path)
    plain = tmp / f"{s.name}.truth.json"  # the baseline's truth format has no known_limit
    plain.write_text(json.dumps([e.model_dump() for e in truth.events]))
    events = tmp / f"{s.name}-{motion}.jsonl"
    cmd = [sys.executable, "-m", "edge.cli", "eval", str(s.video_path), "-c", str(s.camera_path)]
    cmd += ["-t", str(plain), "--events-out", str(events), "--json", "-q", "--motion", motion]
    run = subprocess.run(
        cmd, cwd=worktree,
        env=os.environ | {"PYTHONPATH": str(worktree), "STREETWATCH_ASSETS": str(assets_dir())},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if run.returncode != 0:
        raise RuntimeError(f"baseline eval of {s.name} failed: {run.stderr[-800:]}")
    calls = json.loads(run.stdout.splitlines()[-1])
    report = evaluate(_incidents(events), truth.events, load_recipe(s.recipe_path).duration_s)
    types = tuple(sorted({e.type for e in truth.events}))
    return ScenarioResult(
        s.name, types, (), report, calls["frames"], calls["detector_calls"], truth.known_limit
    )


def summary(label: str, results: list[ScenarioResult]) -> str:
    verdicts = [r.verdict() for r in results]
    worst = max((r.report.max_abs_start_error_s for r in results if r.report.matches), default=0)
    calls = sum(r.detector_calls for r in results)
    frames = sum(r.frames for r in results)
    return (
        f"{label:<22} pass {verdicts.count('pass'):>2}  known limit "
        f"{verdicts.count('known limit'):>2}  FAIL {verdicts.count('FAIL'):>2}  "
        f"fragments {sum(len(r.report.fragments) for r in results):>2}  "
        f"flaps {sum(len(r.report.flaps) for r in results):>2}  worst |start| {worst:5.1f} s  "
        f"detector {calls}/{frames} ({calls / max(frames, 1):.0%})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default="5c3fc65", help="revision to compare with")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    args = ap.parse_args()
    only = tuple(n for n in args.only.split(",") if n)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; baseline {args.baseline}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        build = tmp / "videos"
        t0 = time.perf_counter()
        scenarios = [s for s in find_scenarios(SUITE, build) if not only or s.name in only]
        for s in scenarios:
            build_scenario(s.recipe_path, build)
        print(f"built {len(scenarios)} scenario videos in {time.perf_counter() - t0:.0f} s")
        worktree = tmp / "baseline"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(worktree), args.baseline],
            cwd=REPO, check=True, capture_output=True,
        )  # fmt: skip
        lines = []
        try:
            for motion in ("on", "off"):
                t0 = time.perf_counter()
                now = run_suite(SUITE, build, motion=motion, jobs=2, only=only)
                took = time.perf_counter() - t0
                base = [baseline_result(worktree, s, motion, tmp) for s in scenarios]
                print(f"\n## gating {motion}: now ({took:.0f} s)\n{table(now)}")
                print(f"\n## gating {motion}: baseline {args.baseline}\n{table(base)}")
                lines += [summary(f"gating {motion}, now", now)]
                lines += [summary(f"gating {motion}, {args.baseline}", base)]
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, check=False
            )
        print("\n## summary\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
