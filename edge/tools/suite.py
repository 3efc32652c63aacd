"""A scenario suite: every scenario's video built, replayed through its camera's chain and
scored, with one table for the lot (``edge eval --suite sample_videos/scenarios``).

A scenario passes when it scores P = R = 1.0, its start error is within
``max_start_error_s``, and it has no fragments and no flaps. A scenario whose truth file names
a ``known_limit`` is reported as such (with the reason) instead of failing. Scenarios run in
``jobs`` processes at once, each detector with its share of the cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

from contract.errors import ConfigError
from edge.config import load_camera_config, with_motion
from edge.tools.evaluation import EvalReport, evaluate_video, load_truth
from edge.tools.scenarios import Scenario, build_scenario, find_scenarios

Verdict = Literal["pass", "known limit", "FAIL"]
#: The issue's bar for a scenario's start error.
MAX_START_ERROR_S = 2.0


@dataclass(frozen=True)
class ScenarioResult:
    name: str
    #: The event types of its truth; none for a negative scenario.
    types: tuple[str, ...]
    #: The event types its camera's rules report (what a negative scenario tests).
    rule_types: tuple[str, ...]
    report: EvalReport
    frames: int
    detector_calls: int
    known_limit: str | None

    def verdict(self, max_start_error_s: float = MAX_START_ERROR_S) -> Verdict:
        r = self.report
        clean = (
            r.precision == 1.0
            and r.recall == 1.0
            and r.max_abs_start_error_s <= max_start_error_s
            and not r.fragments
            and not r.flaps
        )
        if clean:
            return "pass"
        return "known limit" if self.known_limit else "FAIL"

    def to_dict(self, max_start_error_s: float = MAX_START_ERROR_S) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "types": list(self.types),
            "rule_types": list(self.rule_types),
            "verdict": self.verdict(max_start_error_s),
            "known_limit": self.known_limit,
            "frames": self.frames,
            "detector_calls": self.detector_calls,
            **self.report.to_dict(),
        }


def evaluate_scenario(
    scenario: Scenario, motion: str = "config", threads: int = 0
) -> ScenarioResult:
    """One scenario whose video is built, in a worker process (or this one)."""
    cfg = with_motion(load_camera_config(scenario.camera_path), motion)
    if threads and not cfg.detector.threads:
        cfg = cfg.model_copy(
            update={"detector": cfg.detector.model_copy(update={"threads": threads})}
        )
    truth = load_truth(scenario.truth_path)
    report, summary = evaluate_video(str(scenario.video_path), cfg, truth, show_progress=False)
    types = tuple(sorted({t.type for t in truth.events}))
    rule_types = tuple(sorted({r.type for z in cfg.zones for r in z.rules}))
    return ScenarioResult(
        scenario.name,
        types,
        rule_types,
        report,
        summary.frames,
        summary.detector_calls,
        truth.known_limit,
    )


def run_suite(
    suite_dir: Path,
    build_dir: Path,
    *,
    motion: str = "on",
    jobs: int = 1,
    only: tuple[str, ...] = (),
    progress: Callable[[str], None] = lambda _: None,
) -> list[ScenarioResult]:
    """Build every scenario's video into ``build_dir`` (kept while its recipe is unchanged),
    then replay and score them, ``jobs`` at a time. ``only``: these scenario names."""
    scenarios = find_scenarios(suite_dir, build_dir)
    if only:
        unknown = sorted(set(only) - {s.name for s in scenarios})
        if unknown:
            raise ConfigError(f"{suite_dir}: no scenario named {', '.join(unknown)}")
        scenarios = [s for s in scenarios if s.name in only]
    if not scenarios:
        raise ConfigError(f"{suite_dir}: no scenarios (*.recipe.yaml) found")
    for i, s in enumerate(scenarios, 1):
        progress(f"[{i}/{len(scenarios)}] building {s.name}")
        build_scenario(s.recipe_path, build_dir)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    results: list[ScenarioResult] = []
    if jobs <= 1:
        for i, s in enumerate(scenarios, 1):
            progress(f"[{i}/{len(scenarios)}] replaying {s.name}")
            results.append(evaluate_scenario(s, motion))
        return results
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(evaluate_scenario, s, motion, threads) for s in scenarios]
        for i, (s, f) in enumerate(zip(scenarios, futures, strict=True), 1):
            results.append(f.result())
            progress(f"[{i}/{len(scenarios)}] scored {s.name}")
    return results


def _num(x: float | None, fmt: str = "+.1f") -> str:
    return "-" if x is None else format(x, fmt)


def _kind(r: ScenarioResult) -> str:
    return ",".join(r.types) if r.types else f"no {','.join(r.rule_types)}"[:17]


def table(results: list[ScenarioResult], max_start_error_s: float = MAX_START_ERROR_S) -> str:
    """One line per scenario: P, R, worst start and end error, fragments, flaps, detector
    calls of frames, verdict; known limits carry their reason on the line below."""
    head = (
        f"{'scenario':<34} {'type':<17} {'P':>4} {'R':>4} {'start':>6} {'end':>6} "
        f"{'frag':>4} {'flap':>4} {'detector':>11}  verdict"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        rep = r.report
        start = max((m.start_error_s for m in rep.matches), key=abs, default=None)
        ends = [e for m in rep.matches if (e := m.end_error_s) is not None]
        end = max(ends, key=abs, default=None)
        lines.append(
            f"{r.name:<34} {_kind(r):<17} {rep.precision:>4.2f} {rep.recall:>4.2f} "
            f"{_num(start):>6} {_num(end):>6} {len(rep.fragments):>4} {len(rep.flaps):>4} "
            f"{f'{r.detector_calls}/{r.frames}':>11}  {r.verdict(max_start_error_s)}"
        )
        if r.verdict(max_start_error_s) == "known limit":
            lines.append(f"{'':<36}known limit: {r.known_limit}")
    verdicts = [r.verdict(max_start_error_s) for r in results]
    lines.append(
        f"{verdicts.count('pass')} passed, {verdicts.count('known limit')} known limits, "
        f"{verdicts.count('FAIL')} failed, of {len(results)} scenarios"
    )
    return "\n".join(lines)
