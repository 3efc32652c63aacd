"""Engines and migrations. SQLite runs in WAL mode, its files readable by their owner only;
every schema change is an Alembic revision, applied on start."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url

from contract.keys import owner_only

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def sqlite_owner_only(url: str) -> None:
    """Create a SQLite database file mode 600 (its WAL and shared-memory files take the
    same mode) and tighten one that others may read; no-op for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database or "")
    if not path.parent.is_dir():
        return  # SQLite itself says it cannot open the file
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        owner_only(path, 0o600)
    for sidecar in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if sidecar.exists():
            owner_only(sidecar, 0o600)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        sqlite_owner_only(url)
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        return engine
    # hide_parameters: errors name the statement, never the values (edges' payloads, tokens'
    # hashes) in logs.
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def migrate(url: str) -> None:
    sqlite_owner_only(url)  # before Alembic creates the file with the umask's mode
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")
