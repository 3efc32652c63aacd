"""Shared fixtures: the real assets (models, images, videos) from ../shared/assets, the
session's PostgreSQL server (tests/postgres.py) and Debian's Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge.paths import assets_dir, project_root
from tests.postgres import SESSION, PgServer

REPO = project_root()
EDGE = [sys.executable, "-m", "edge.cli"]


@pytest.fixture(scope="session")
def assets() -> Path:
    root = assets_dir()
    if not (root / "models" / "yolox_nano.onnx").is_file():
        pytest.fail(
            f"shared assets not found at {root}: put them at ../shared/assets or set "
            "STREETWATCH_ASSETS",
            pytrace=False,
        )
    return root


@pytest.fixture(scope="session")
def postgres_server() -> PgServer:
    """The session's PostgreSQL server (from STREETWATCH_TEST_PG_URL, 127.0.0.1:5432, or an
    embedded one); `tests.deploy.database("postgresql", ...)` makes databases on the same one."""
    return SESSION.get()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first (stable otherwise): pytest-xdist hands out test files in this order,
    so the minute-long files start early and the many short ones fill the workers' gaps,
    instead of one worker finishing a long file alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


#: Which PostgreSQL each pytest-xdist worker used, gathered by the controlling process.
_WORKER_PG_NOTES: set[str] = set()


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)  # set in an xdist worker only
    if output is not None and SESSION.server is not None:
        output["pg_note"] = SESSION.server.note
    SESSION.stop()  # an embedded server ends with the session


def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: a worker finished; keep its PostgreSQL note for the summary."""
    note = getattr(node, "workeroutput", {}).get("pg_note")
    if note:
        _WORKER_PG_NOTES.add(note)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    notes = set(_WORKER_PG_NOTES)
    if SESSION.server is not None:
        notes.add(SESSION.server.note)
    for note in sorted(notes):
        terminalreporter.write_line(f"PostgreSQL for the tests: {note}")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of Debian's Chromium; fails naming the package when it is not installed."""
    from tests.apihelpers import chromium_executable

    return chromium_executable()


@pytest.fixture(scope="session")
def image_path(assets: Path):  # type: ignore[no-untyped-def]
    return lambda name: assets / "images" / name


@pytest.fixture(scope="session")
def video_path(assets: Path):  # type: ignore[no-untyped-def]
    return lambda name: assets / "videos" / name


@pytest.fixture(scope="session")
def generated_clips(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Path:
    """The crowding and parking sample clips, built from the street photos."""
    out = tmp_path_factory.mktemp("clips")
    subprocess.run(
        [sys.executable, str(REPO / "sample_videos" / "make_clips.py"), str(out)],
        check=True,
        cwd=REPO,
        capture_output=True,
    )
    return out


def run_edge(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process, as a user would."""
    return subprocess.run(
        [*EDGE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def deployment(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh aggregator deployment on SQLite in tmp_path; its processes are killed after."""
    from tests.deploy import Deployment, database

    with database("sqlite", tmp_path) as url:
        d = Deployment(tmp_path, url)
        try:
            yield d
        finally:
            d.stop_all()
