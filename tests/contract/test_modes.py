"""Operating modes applied to the sample camera configs (contract/config/modes.py): a mode's
parameters reach every rule of their event type, rules run only in the modes they name, and
a parameter a rule does not take is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.config.camera import CameraConfig
from contract.config.loading import load_yaml_model
from contract.config.modes import apply_mode, check_rule_parameters
from contract.config.rules import CountRuleConfig, DwellRuleConfig
from contract.errors import ConfigError
from contract.fleet import ModeOverrides

SAMPLES = Path(__file__).resolve().parents[2] / "sample_videos"
PEACE = ModeOverrides(tags=("peacetime",))
EMERGENCY = ModeOverrides(tags=("emergency",), rules={"crowding": {"min_count": 4}})


def sample(name: str) -> CameraConfig:
    cfg, _ = load_yaml_model(SAMPLES / f"{name}.camera.yaml", CameraConfig, "a camera config")
    return cfg


def with_extra_rules(name: str, rules: list[dict[str, Any]]) -> CameraConfig:
    doc = yaml.safe_load((SAMPLES / f"{name}.camera.yaml").read_text())
    doc["zones"][0]["rules"] += rules
    return CameraConfig.model_validate(doc)


def rule_names(cfg: CameraConfig) -> list[str]:
    return [r.name for z in cfg.zones for r in z.rules]


def test_emergency_lowers_the_crowding_threshold_of_the_sample() -> None:
    base = sample("crowding")
    out = apply_mode(base, EMERGENCY)
    rule = out.zones[0].rules[0]
    assert isinstance(rule, CountRuleConfig)
    assert rule.min_count == 4
    # Everything else is the sample's: the other parameters, zone and detection.
    assert (rule.min_duration_s, rule.clear_s) == (3, 3)
    assert out.zones[0].polygon == base.zones[0].polygon
    assert out.detection == base.detection
    base_rule = base.zones[0].rules[0]
    assert isinstance(base_rule, CountRuleConfig)
    assert base_rule.min_count == 8


def test_parameters_of_other_event_types_leave_a_rule_alone() -> None:
    base = sample("parking")
    out = apply_mode(base, EMERGENCY)
    assert out == base
    faster = ModeOverrides(("alert",), {"illegal_parking": {"dwell_s": 60}})
    rule = apply_mode(base, faster).zones[0].rules[0]
    assert isinstance(rule, DwellRuleConfig)
    assert rule.dwell_s == 60


def test_rules_run_only_in_the_modes_they_name() -> None:
    cfg = with_extra_rules(
        "crowding",
        [
            {"preset": "crowding", "name": "crowd-emergency", "min_count": 3,
             "modes": ["emergency"]},
            {"preset": "crowding", "name": "crowd-peace", "min_count": 20,
             "modes": ["peacetime", "alert"]},
        ],
    )  # fmt: skip
    assert rule_names(apply_mode(cfg, PEACE)) == ["crowding", "crowd-peace"]
    assert rule_names(apply_mode(cfg, ModeOverrides(("alert",)))) == ["crowding", "crowd-peace"]
    assert rule_names(apply_mode(cfg, EMERGENCY)) == ["crowding", "crowd-emergency"]
    # A drill of an emergency carries the emergency tag: it runs the emergency's rules.
    drill = ModeOverrides(("drill", "emergency"))
    assert rule_names(apply_mode(cfg, drill)) == ["crowding", "crowd-emergency"]
    # The mode's parameters reach the rules it switched on too.
    counts = [r for z in apply_mode(cfg, EMERGENCY).zones for r in z.rules]
    assert [r.min_count for r in counts if isinstance(r, CountRuleConfig)] == [4, 4]


def test_a_bad_parameter_is_named() -> None:
    with pytest.raises(ConfigError, match=r"zones\[0\]\.rules\[0\]\.min_count"):
        apply_mode(sample("crowding"), ModeOverrides((), {"crowding": {"min_count": 0}}))
    with pytest.raises(ConfigError, match=r"camera 'sample-square'.*\.dwell_s.*"):
        apply_mode(sample("crowding"), ModeOverrides((), {"crowding": {"dwell_s": 5}}))
    with pytest.raises(ConfigError, match=r"mode rules\.crowding\.min_count"):
        check_rule_parameters("crowding", {"min_count": "many"})
    with pytest.raises(ConfigError, match="kind cannot be changed by a mode"):
        check_rule_parameters("crowding", {"kind": "dwell"})
    check_rule_parameters("crowding", {"min_count": 4})  # a good one passes
