"""`aggregator modes` and `aggregator configs` as an operator meets them: real child
processes on a real database (SQLite and PostgreSQL); what they save is what the API reads."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from aggregator.core.fleet_config import FleetConfig, ModesConfig
from aggregator.db.engine import make_engine
from aggregator.db.models import AUDIT, CAMERAS
from aggregator.fleet.configs import CameraConfigs
from aggregator.fleet.modes import ModeSwitches, desired_for
from tests.deploy import database

# Slow: every command is a child process that imports the aggregator and migrates.
pytestmark = pytest.mark.slow

CAMERA_YAML = """\
id: cam-1
zones:
  - name: square
    units: normalized
    polygon: [[0, 0], [1, 0], [1, 1], [0, 1]]
    rules:
      - preset: crowding
        min_count: {min_count}
        classes: [{cls}]
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    with database(request.param, tmp_path) as url:
        (tmp_path / "aggregator.yaml").write_text(f"database_url: {url}\n")
        yield tmp_path, url


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "aggregator.cli",
            "--log-level",
            "warning",
            *args,
            "-c",
            "aggregator.yaml",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "USER": "olga"},
    )


def _ok(root: Path, *args: str) -> str:
    res = _run(root, *args)
    assert res.returncode == 0, res.stderr
    return res.stdout


def _user_error(root: Path, *args: str) -> str:
    """The one error line of a refused command."""
    res = _run(root, *args)
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("aggregator: error:")]
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_configs_push_history_rollback(site: tuple[Path, str]) -> None:
    root, url = site
    (root / "typo.yaml").write_text(CAMERA_YAML.format(min_count=8, cls="persn"))
    err = _user_error(root, "configs", "push", "cam-1", "typo.yaml", "--reason", "first")
    assert "typo.yaml:9: zones[0].rules[0].classes: unknown class 'persn'" in err
    assert "did you mean 'person'" in err
    for n in (8, 6):
        (root / f"v{n}.yaml").write_text(CAMERA_YAML.format(min_count=n, cls="person"))
    out = _ok(root, "configs", "push", "cam-1", "v8.yaml", "--reason", "first zones")
    assert "saved v1" in out
    assert "by olga: first zones" in out  # $USER
    _ok(root, "configs", "push", "cam-1", "v6.yaml", "--reason", "market", "--actor", "ann")
    out = _ok(root, "configs", "rollback", "cam-1", "1", "--reason", "too many alarms")
    assert "v1 restored as v3" in out
    history = _ok(root, "configs", "history", "cam-1").splitlines()
    assert [ln.split()[0] for ln in history] == ["v3", "v2", "v1"]
    assert history[1].endswith("by ann: market")
    assert "'cam-9' is unknown" in _user_error(root, "configs", "history", "cam-9")
    assert "no version 7" in _user_error(root, "configs", "rollback", "cam-1", "7", "--reason", "x")

    engine = make_engine(url)
    try:
        store = CameraConfigs(engine, FleetConfig(), ModesConfig())
        latest = store.get("cam-1")
        assert latest.version == 3
        assert latest.document is not None
        assert latest.document["zones"][0]["rules"][0]["min_count"] == 8
        with engine.connect() as conn:
            actions = conn.execute(
                select(AUDIT.c.action, AUDIT.c.username).where(AUDIT.c.entity == "camera")
            ).all()
        assert [tuple(a) for a in actions] == [
            ("config_save", "olga"),
            ("config_save", "ann"),
            ("config_rollback", "olga"),
        ]
    finally:
        engine.dispose()


def test_modes_set_schedule_list_cancel(site: tuple[Path, str]) -> None:
    root, url = site
    assert "in force: none" in _ok(root, "modes", "list")
    out = _ok(root, "modes", "set", "emergency", "--reason", "flood warning")
    assert out.startswith("switched: #1 ")
    _ok(
        root,
        "modes",
        "schedule",
        "alert",
        "--scope",
        "area:G-1",
        "--start",
        "2040-05-01T08:00+00:00",
        "--end",
        "2040-05-01T20:00+00:00",
        "--reason",
        "market day",
    )
    listed = _ok(root, "modes", "list")
    assert "emergency    city" in listed
    assert "scheduled: #2     alert        area:G-1" in listed
    assert "from 2040-05-01T08:00:00Z until 2040-05-01T20:00:00Z" in listed
    assert "unknown mode 'panic'" in _user_error(root, "modes", "set", "panic", "--reason", "x")
    assert "scope 'town'" in _user_error(
        root, "modes", "set", "alert", "--scope", "town", "--reason", "x"
    )
    assert "--start 'tomorrow'" in _user_error(
        root, "modes", "schedule", "alert", "--start", "tomorrow", "--reason", "x"
    )
    _ok(root, "modes", "cancel", "1", "--reason", "false alarm")
    assert "already cancelled" in _user_error(root, "modes", "cancel", "1")

    engine = make_engine(url)
    try:
        switches = ModeSwitches(engine, ModesConfig())
        assert [(s.mode, s.actor, s.cancelled_at is not None) for s in switches.history()] == [
            ("alert", "olga", False),
            ("emergency", "olga", True),
        ]
        market = switches.history()[0]
        assert market.starts_at == datetime(2040, 5, 1, 8, tzinfo=UTC).timestamp()
        assert market.ends_at == datetime(2040, 5, 1, 20, tzinfo=UTC).timestamp()
        with engine.connect() as conn:
            conn.execute(CAMERAS.insert().values(camera_id="cam-1", grid_cell="G-1"))
            conn.commit()
            during = desired_for(conn, {"cam-1"}, ModesConfig(), market.starts_at + 1)
        assert (during["cam-1"].mode, during["cam-1"].mode_rev) == ("alert", market.id)
    finally:
        engine.dispose()
