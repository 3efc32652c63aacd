"""The last good pushed config on disk (edge/control/store.py) and where a camera starts
(edge/control/startup.py): a central box restarted without the aggregator runs its last good
config and mode; an unreadable file is logged and the camera starts from its own file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from contract.config.rules import CountRuleConfig
from contract.fleet import Applied, ModeOverrides
from edge.config import CameraConfig, load_camera_config
from edge.config.edge_box import load_edge_config
from edge.control.startup import starting_target
from edge.control.status import FleetStatus, software_version
from edge.control.store import LastGoodStore
from edge.control.target import Target
from tests.conftest import REPO
from tests.edge.test_control import camera_doc

CAMERA = "sample-square"
EMERGENCY = Target(
    applied=Applied(config_version=4, mode="emergency", mode_rev=11),
    drill=False,
    config=camera_doc(9),
    overrides=ModeOverrides(("emergency",), {"crowding": {"min_count": 4}}),
)


@pytest.fixture
def local(tmp_path: Path) -> CameraConfig:
    path = tmp_path / "square.camera.yaml"
    path.write_text(yaml.safe_dump(camera_doc(30)))
    return load_camera_config(path)


def min_count(cfg: CameraConfig) -> int:
    rule = cfg.zones[0].rules[0]
    assert isinstance(rule, CountRuleConfig)
    return rule.min_count


def test_saved_target_reads_back_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = LastGoodStore(tmp_path / "state")
    store.save(CAMERA, EMERGENCY)
    assert store.load(CAMERA) == EMERGENCY
    store.save(CAMERA, Target())  # replaced whole
    assert store.load(CAMERA) == Target()
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [f"{CAMERA}.json"]
    assert store.load("other-cam") is None


def test_a_central_box_starts_from_its_last_good_config_and_mode(
    tmp_path: Path, local: CameraConfig
) -> None:
    store = LastGoodStore(tmp_path / "state")
    store.save(CAMERA, EMERGENCY)
    target, cfg = starting_target(local, "central", store)
    assert target == EMERGENCY
    assert min_count(cfg) == 4  # the emergency's parameter on the central config (9)
    assert cfg.base_dir == tmp_path  # relative paths stay relative to the camera's own file
    # A local box ignores the store: its own file, peacetime.
    target, cfg = starting_target(local, "local", store)
    assert (target, min_count(cfg)) == (Target(), 30)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "JSONDecodeError"),
        (json.dumps({"format": 99}), "not a last-good record of format 1"),
        (json.dumps({"format": 1, "camera": "elsewhere"}), "it is camera 'elsewhere's record"),
        ("[]", "not a last-good record"),
    ],
)
def test_an_unreadable_last_good_file_is_logged_and_the_local_file_used(
    tmp_path: Path,
    local: CameraConfig,
    caplog: pytest.LogCaptureFixture,
    content: str,
    reason: str,
) -> None:
    store = LastGoodStore(tmp_path / "state")
    store.state_dir.mkdir()
    store.path(CAMERA).write_text(content)
    with caplog.at_level(logging.ERROR):
        target, cfg = starting_target(local, "central", store)
    assert (target, min_count(cfg)) == (Target(), 30)
    assert str(store.path(CAMERA)) in caplog.text
    assert reason in caplog.text
    assert "using the local file" in caplog.text


def test_a_last_good_config_that_no_longer_validates_falls_back(
    tmp_path: Path, local: CameraConfig, caplog: pytest.LogCaptureFixture
) -> None:
    store = LastGoodStore(tmp_path / "state")
    broken = Target(Applied(2, "peacetime", 0), config={**camera_doc(5), "zones": "none"})
    store.save(CAMERA, broken)
    with caplog.at_level(logging.ERROR):
        target, _ = starting_target(local, "central", store)
    assert target == Target()
    assert "the last good config no longer applies" in caplog.text
    assert "zones" in caplog.text


def test_heartbeat_from_the_fleet_status() -> None:
    states = {"a": "online", "b": "offline"}
    status = FleetStatus("central", ["a", "b"], lambda c: states[c])  # type: ignore[arg-type,return-value]
    status.applied("a", Applied(3, "alert", 2))
    status.refused("b", "zones[0]: bad\nthing " + "x" * 400)
    status.event("a", 1795750000.5)
    status.fps("a", 4.8)
    hb = status.heartbeat(7)
    assert (hb.depth, hb.source, hb.software) == (7, "central", software_version())
    a, b = hb.cameras
    assert (a.camera, a.state, a.fps, a.applied, a.last_event_wall, a.error) == (
        "a", "online", 4.8, Applied(3, "alert", 2), 1795750000.5, None
    )  # fmt: skip
    assert b.state == "offline"
    assert b.error is not None
    assert b.error.startswith("zones[0]: bad thing")
    assert len(b.error) == 300
    status.applied("b", Applied())  # an applied push clears the refusal
    assert status.camera("b").error is None


def test_software_version_is_the_package_version() -> None:
    version = software_version()
    assert version != ""
    assert len(version) <= 32
    pyproject = (REPO / "pyproject.toml").read_text()
    assert version == "dev" or f'version = "{version}"' in pyproject


def test_fleet_section_of_the_edge_config(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.yaml"
    base = (
        "edge_id: box-1\naggregator:\n  endpoint: tcp://127.0.0.1:1\n"
        "  server_public_key: a.key\n  secret_key: b.key_secret\n"
    )
    cfg.write_text(base)
    default = load_edge_config(cfg).fleet
    assert (default.source, default.state_dir) == ("local", tmp_path / "fleet-state")
    cfg.write_text(base + "fleet:\n  source: central\n  state_dir: state/fleet\n")
    fleet = load_edge_config(cfg).fleet
    assert (fleet.source, fleet.state_dir) == ("central", tmp_path / "state" / "fleet")
    cfg.write_text(base + "fleet:\n  source: cloud\n")
    with pytest.raises(Exception, match=r"fleet\.source"):
        load_edge_config(cfg)
