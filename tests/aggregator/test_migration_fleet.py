"""Migration 0009 (issue 14) on a database that already holds events and cases: on SQLite and
on PostgreSQL, where events is partitioned (0008) and the new columns must reach every
partition. Old rows read as raised in peacetime, not in a drill; downgrade gives 0008 back
with the rows kept."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text

from aggregator.db.engine import MIGRATIONS, make_engine
from tests.deploy import database

WEEK_S = 7 * 86400.0
#: Three weeks apart: on PostgreSQL each lands in its own partition (0008 makes them).
STARTS = (1_700_000_000.0, 1_700_000_000.0 + 3 * WEEK_S, 1_700_000_000.0 + 6 * WEEK_S)
NEW_TABLES = {"camera_configs", "mode_switches", "fleet_cameras"}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path) as u:
        yield u


def _alembic(url: str, action: str, rev: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    getattr(command, action)(cfg, rev)


def _fill(engine: Engine) -> None:
    """Rows as a 0007 database holds them: three events, a case, a camera, an edge."""
    with engine.begin() as conn:
        for i, started in enumerate(STARTS):
            conn.execute(
                text(
                    "INSERT INTO events (event_id, edge_id, camera, zone, rule, type, status, "
                    "started_ts, last_ts, value, unit, severity, boxes, labels, has_start, "
                    "has_end, n_messages, received_at, updated_at, review_status) VALUES "
                    "(:id, 'box', 'cam-1', 'z', 'r', 'crowding', 'open', :s, :s, 5, "
                    "'persons', 'low', '[]', '[]', true, false, 1, :s, :s, 'new')"
                ),
                {"id": f"ev-{i}", "s": started},
            )
        conn.execute(
            text(
                "INSERT INTO cases (camera, zone, type, category, department, priority, status, "
                "deadline_at, address, grid_cell, created_at, updated_at) VALUES "
                "('cam-1', 'z', 'crowding', 'public order', 'police', 'high', 'filed', "
                "1, '', 'G-1', 1, 1)"
            )
        )
        conn.execute(
            text("INSERT INTO cameras (camera_id, address, grid_cell) VALUES ('cam-1', '', 'G-1')")
        )
        conn.execute(
            text(
                "INSERT INTO edges (edge_id, public_key, created_at, max_seq, received) "
                "VALUES ('box', :k, 1, 0, 0)"
            ),
            {"k": "k" * 40},
        )


def _columns(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}


def test_upgrade_keeps_rows_as_peacetime_and_downgrade_undoes_it(url: str) -> None:
    # Filled before 0008, which partitions the weeks that hold rows on PostgreSQL.
    _alembic(url, "upgrade", "0007")
    engine = make_engine(url)
    try:
        _fill(engine)
        _alembic(url, "upgrade", "0008")
        _alembic(url, "upgrade", "0009")
        with engine.connect() as conn:
            events = conn.execute(
                text("SELECT event_id, mode, drill FROM events ORDER BY event_id")
            ).all()
            cases = conn.execute(text("SELECT mode, drill FROM cases")).all()
            group = conn.execute(text("SELECT camera_group FROM cameras")).scalar_one()
            edge = conn.execute(text("SELECT software, config_source FROM edges")).one()
        assert [tuple(r) for r in events] == [(f"ev-{i}", "peacetime", False) for i in range(3)]
        assert [tuple(r) for r in cases] == [("peacetime", False)]
        assert (group, tuple(edge)) == ("", (None, None))
        assert set(inspect(engine).get_table_names()) >= NEW_TABLES
        if engine.dialect.name == "postgresql":
            _assert_every_partition_has_the_columns(engine)
        # New rows without the columns get the defaults too (the ingest sets them).
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO mode_switches (mode, scope_kind, starts_at, actor, reason, "
                    "created_at) VALUES ('emergency', 'city', 1, 'sup', 'flood', 1)"
                )
            )
            scope = conn.execute(text("SELECT scope_value FROM mode_switches")).scalar_one()
        assert scope == ""

        _alembic(url, "downgrade", "0008")
        assert {"mode", "drill"}.isdisjoint(_columns(engine, "events"))
        assert {"mode", "drill"}.isdisjoint(_columns(engine, "cases"))
        assert "camera_group" not in _columns(engine, "cameras")
        assert NEW_TABLES.isdisjoint(inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == 3
        _alembic(url, "upgrade", "head")  # and up again, cleanly
        assert {"mode", "drill"} <= _columns(engine, "events")
    finally:
        engine.dispose()


def _assert_every_partition_has_the_columns(engine: Engine) -> None:
    with engine.connect() as conn:
        parts = (
            conn.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = CAST('events' AS regclass)"
                )
            )
            .scalars()
            .all()
        )
        # The default partition and one per week that held rows.
        assert len(parts) == len(STARTS) + 1
        for part in parts:
            rows = conn.execute(text(f'SELECT mode, drill FROM "{part}"')).all()
            assert all(tuple(r) == ("peacetime", False) for r in rows), part
