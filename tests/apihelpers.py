"""The aggregator API in-process on a fresh SQLite database, with one account per role."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from aggregator.api.deps import Services
from aggregator.auth import ROLES
from aggregator.core.config import MediaConfig
from aggregator.db.engine import make_engine, migrate
from aggregator.edges import EdgeRegistry
from aggregator.main import create_app
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


@contextmanager
def serving(services: Services, name: str) -> Iterator[str]:
    """The real app on uvicorn in a thread on a free loopback port, for the browser tests:
    its base URL while the block runs; stopped and the engine disposed after."""
    from tests.deploy import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name=f"{name}-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the aggregator's HTTP server stopped while starting"
        assert time.monotonic() < deadline, "the aggregator's HTTP server did not start in 30 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        services.engine.dispose()
