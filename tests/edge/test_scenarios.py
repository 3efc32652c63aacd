"""The scenario suite (sample_videos/scenarios): street disturbances against the rules.

Scenarios are built from the shared photos at test time and replayed through the camera's
chain (the real detector, tracker, background model, tamper monitor and rules). Each must
pass (P = R = 1, start error <= 2 s, no fragments, no flaps) or be marked a known limit with
its reason; at most three may be, and none in crowding or parking.

The whole suite takes about 4 minutes of one core; CI runs the twelve below (the failures
found while building the suite that unit tests do not already pin down, shake, drift, rain,
low bitrate, 2 fps, lights, occlusion, and each tamper subtype the chain raises), about a
minute and a half, to keep the test suite under its time limit. The whole
suite: ``edge eval --suite sample_videos/scenarios`` or bench/bench_scenarios.py (gating on
and off, figures in bench/RESULTS.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from edge.cli.main import cli
from edge.tools.scenarios import Scenario, build_scenario, find_scenarios
from edge.tools.suite import ScenarioResult, evaluate_scenario
from tests.conftest import REPO

SUITE = REPO / "sample_videos" / "scenarios"
TYPES = ("crowding", "illegal_parking", "nonmotor_parking", "street_vending", "litter")
NEVER_A_KNOWN_LIMIT = ("crowding", "illegal_parking")
CI_SCENARIOS = (
    "crowd_2fps_drops", "crowd_rain_shake", "litter_pole_shake", "litter_car_in_front",
    "litter_passersby", "litter_suitcase_rain", "litter_lights_on", "park_light_negative",
    "park_shake_drift", "tamper_hand_parked", "tamper_defocus_stall", "tamper_turn_crowd",
)  # fmt: skip


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scenarios")


def _scenarios() -> list[Scenario]:
    return find_scenarios(SUITE, Path("unused"))


def test_the_suite_covers_every_type_with_few_known_limits() -> None:
    from edge.tools.evaluation import load_truth

    scenarios = _scenarios()
    assert len(scenarios) >= 25
    assert set(CI_SCENARIOS) <= {s.name for s in scenarios}
    truths = {s.name: load_truth(s.truth_path) for s in scenarios}
    covered = {e.type for t in truths.values() for e in t.events}
    assert set(TYPES) <= covered
    limits = {n: t for n, t in truths.items() if t.known_limit}
    assert len(limits) <= 3, sorted(limits)
    for name, truth in limits.items():
        assert not {e.type for e in truth.events} & set(NEVER_A_KNOWN_LIMIT), name


@pytest.mark.slow
@pytest.mark.parametrize("name", CI_SCENARIOS)
def test_scenario_scores_clean_or_is_a_known_limit(name: str, build_dir: Path) -> None:
    scenario = next(s for s in find_scenarios(SUITE, build_dir) if s.name == name)
    build_scenario(scenario.recipe_path, build_dir)
    result: ScenarioResult = evaluate_scenario(scenario)
    verdict = result.verdict()
    assert verdict != "FAIL", json.dumps(result.to_dict(), indent=1)
    if verdict == "known limit":
        assert result.known_limit


def test_eval_suite_prints_one_table_writes_json_and_fails_on_a_wrong_truth(
    tmp_path: Path,
) -> None:
    """Two scenarios, one with a truth that is wrong on purpose (the car "stops" 10 s later
    than it does): the table shows one pass and one FAIL, the JSON has both, exit status 1."""
    suite = tmp_path / "suite"
    suite.mkdir()
    for name in ("park_clean", "park_light_negative"):
        for suffix in (".recipe.yaml", ".truth.yaml"):
            shutil.copy(SUITE / f"{name}{suffix}", suite / f"{name}{suffix}")
    shutil.copy(SUITE / "kerb-road.camera.yaml", suite / "kerb-road.camera.yaml")
    truth = suite / "park_clean.truth.yaml"
    doc = yaml.safe_load(truth.read_text())
    doc["events"][0]["start_s"] += 10
    truth.write_text(yaml.safe_dump(doc))
    out = tmp_path / "table.json"
    args = ["eval", "--suite", str(suite), "--build-dir", str(tmp_path / "b"), "--out", str(out)]
    res = CliRunner().invoke(cli, [*args, "-q"])
    assert res.exit_code == 1, res.output
    assert "FAIL" in res.output, res.output
    assert "1 passed, 0 known limits, 1 failed, of 2 scenarios" in res.output
    table = json.loads(out.read_text())
    verdicts = {s["scenario"]: s["verdict"] for s in table["scenarios"]}
    assert verdicts == {"park_clean": "FAIL", "park_light_negative": "pass"}
    clean = next(s for s in table["scenarios"] if s["scenario"] == "park_clean")
    assert clean["max_abs_start_error_s"] > 2.0
