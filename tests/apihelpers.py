"""The aggregator API in-process on a fresh SQLite database, with one account per role."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aggregator.api.deps import Services
from aggregator.auth import ROLES
from aggregator.core.config import MediaConfig
from aggregator.db.engine import make_engine, migrate
from aggregator.edges import EdgeRegistry
from aggregator.media import MediaStore

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Debian's package: the tests drive it with Playwright and never download a browser of their own.
CHROMIUM_PACKAGE = "chromium"


def chromium_executable() -> str:
    """Debian's Chromium, or a test failure that names the package to install."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            f"Chromium is not installed: the browser tests need Debian's package "
            f"`{CHROMIUM_PACKAGE}` (scripts/setup.sh installs it as root or with passwordless "
            f"sudo; else `sudo apt-get install {CHROMIUM_PACKAGE}`)",
            pytrace=False,
        )
    return path


def make_services(root: Path) -> Services:
    """Services on root/a.sqlite3 with users viewer, operator, supervisor and admin
    (password: '<role>-password')."""
    url = f"sqlite:///{root / 'a.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    services = Services(
        engine, EdgeRegistry(engine), None, MediaStore(MediaConfig(dir=root / "m"), engine)
    )
    for role in ROLES:
        services.accounts.add_user(role, f"{role}-password", role)
    return services


def login(client: TestClient, role: str) -> str:
    r = client.post("/api/v1/auth/login", json={"username": role, "password": f"{role}-password"})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])
