"""A real deployment in a temp folder: keys, configs, aggregator and edge processes."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg

from tests.postgres import SESSION

# The default server of bench/bench_aggregator_load.py; the tests pick theirs in tests/postgres.py.
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


#: Ports the tests hand to servers they start: below the kernel's ephemeral range (Linux:
#: 32768 and up), so no outgoing connection takes one between picking it and the server
#: binding it, and a slice of its own per pytest-xdist worker, so workers never pick alike.
PORT_RANGE = (20000, 32000)
PORT_SLICES = 8


#: Ports this process has handed out: a test that picks several before starting the servers
#: (three ingest replicas and an API) must not get one twice (it did: "address already in
#: use" in a clean-clone run).
_HANDED: set[int] = set()


def free_port() -> int:
    """A loopback TCP port nothing listens on now and not handed out before by this
    process, from this worker's slice of PORT_RANGE."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % PORT_SLICES if worker.isdigit() else 0
    width = (PORT_RANGE[1] - PORT_RANGE[0]) // PORT_SLICES
    low = PORT_RANGE[0] + index * width
    for _ in range(200):
        port = random.randrange(low, low + width)
        if port in _HANDED:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken: try another
        _HANDED.add(port)
        return port
    raise RuntimeError(f"no free port in {low}..{low + width - 1} after 200 tries")


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new database, dropped after, on the
    session's PostgreSQL server (tests/postgres.py picks it)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'aggregator.sqlite3'}"
        return
    if kind != "postgresql":
        raise ValueError(f"database kind {kind!r}: expected 'sqlite' or 'postgresql'")
    server = SESSION.get()
    name = f"sw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.sqlalchemy_url(name)
    finally:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cli(tool: str) -> list[str]:
    return [sys.executable, "-m", f"{tool}.cli"]


class Deployment:
    def __init__(self, root: Path, db_url: str, extra_config: str = "") -> None:
        """extra_config: more top-level YAML for aggregator.yaml (e.g. a media section)."""
        self.root = root
        self.db_url = db_url
        self.extra_config = extra_config
        self.zmq_port = free_port()
        self.http_port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        (root / "keys").mkdir(parents=True, exist_ok=True)
        self.run("aggregator", "keys", "generate", "--dir", str(root / "keys"))
        self._write_config(root / "aggregator.yaml", self.zmq_port, self.http_port)

    def _write_config(self, path: Path, zmq_port: int, http_port: int) -> None:
        path.write_text(
            f"database_url: {self.db_url}\n"
            f"ingest:\n  bind: tcp://127.0.0.1:{zmq_port}\n"
            f"  server_secret_key: keys/aggregator.key_secret\n"
            f"http:\n  port: {http_port}\n" + self.extra_config
        )

    def replica_config(self, name: str) -> tuple[str, int]:
        """The config of one more aggregator process on the same database, keys and media
        folder, with its own HTTP port and ingest bind: its file name and HTTP port."""
        http_port = free_port()
        self._write_config(self.root / f"{name}.yaml", free_port(), http_port)
        return f"{name}.yaml", http_port

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            [*_cli(tool), *args], capture_output=True, text=True, cwd=self.root, timeout=60
        )
        assert res.returncode == 0, res.stderr
        return res

    def add_edge(self, name: str, register: bool = True) -> Path:
        self.run("edge", "keys", "generate", name, "--dir", str(self.root / "keys"))
        cfg = self.root / f"{name}.yaml"
        cfg.write_text(
            f"edge_id: {name}\noutbox:\n  path: {name}-outbox.sqlite3\n"
            f"aggregator:\n  endpoint: tcp://127.0.0.1:{self.zmq_port}\n"
            f"  server_public_key: keys/aggregator.key\n  secret_key: keys/{name}.key_secret\n"
            f"  ack_timeout_s: 1.0\n  max_backoff_s: 4.0\n  heartbeat_s: 0.5\n"
            + (f"  http_url: {self.url}\n  token_file: keys/{name}.token\n" if register else "")
        )
        if register:
            self.run(
                "aggregator", "edges", "add", "-c", "aggregator.yaml", name, f"keys/{name}.key"
            )
            self.run(
                "aggregator",
                "edges",
                "token",
                "-c",
                "aggregator.yaml",
                name,
                "--out",
                f"keys/{name}.token",
            )
        return cfg

    def spawn(self, tool: str, *args: str, log: str) -> subprocess.Popen[bytes]:
        out = (self.root / log).open("ab")
        p = subprocess.Popen([*_cli(tool), *args], cwd=self.root, stdout=out, stderr=out)
        self.procs.append(p)
        return p

    def start_aggregator(
        self,
        config: str = "aggregator.yaml",
        http_port: int | None = None,
        log: str = "aggregator.log",
    ) -> subprocess.Popen[bytes]:
        """Start `aggregator serve` (another replica: a config and port of replica_config)."""
        p = self.spawn("aggregator", "--log-level", "warning", "serve", "-c", config, log=log)
        self.wait_ready(p, http_port=http_port, log=log)
        return p

    def wait_ready(
        self,
        p: subprocess.Popen[bytes],
        timeout_s: float = 30,
        http_port: int | None = None,
        log: str = "aggregator.log",
    ) -> None:
        url = f"http://127.0.0.1:{http_port or self.http_port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert p.poll() is None, (self.root / log).read_text()[-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("aggregator did not become ready")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    ADMIN_PASSWORD = "admin-password-for-tests"

    def _ensure_admin(self) -> None:
        if getattr(self, "_admin_made", False):
            return
        pw = self.root / "admin.password"
        pw.write_text(self.ADMIN_PASSWORD)
        self.run(
            "aggregator",
            "users",
            "add",
            "-c",
            "aggregator.yaml",
            "admin",
            "--role",
            "admin",
            "--password-file",
            str(pw),
        )
        self._admin_made = True

    def client(self, username: str = "admin", password: str | None = None) -> httpx.Client:
        """An HTTP client logged in to the running aggregator (admin by default)."""
        if username == "admin":
            self._ensure_admin()
        c = httpx.Client(base_url=self.url, timeout=30)
        r = c.post(
            "/api/v1/auth/login",
            json={"username": username, "password": password or self.ADMIN_PASSWORD},
        )
        r.raise_for_status()
        c.headers["Authorization"] = f"Bearer {r.json()['token']}"
        return c

    def ingest_status(self) -> dict[str, object]:
        r = self.client().get("/api/v1/ingest")
        r.raise_for_status()
        data: dict[str, object] = r.json()
        return data

    def kill(self, p: subprocess.Popen[bytes]) -> None:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
