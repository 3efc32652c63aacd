"""The tables the code declares (aggregator/db/models.py, grid_models.py) are the tables the
migrations make, on SQLite and PostgreSQL: a column added to a model but not to a migration
(or the other way round) fails here, not in production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from aggregator.db import grid_models  # noqa: F401  (its tables join Base.metadata)
from aggregator.db.engine import make_engine, migrate
from aggregator.db.models import Base
from tests.deploy import database


def _known(kind: str, diff: Any) -> bool:
    """Differences made on purpose, by database kind."""
    text = repr(diff)
    if kind == "postgresql":
        # Partitions (migration 0008) are tables of their own that no model declares.
        return "_default" in text or "_p20" in text
    # SQLite keeps messages unique on (edge_id, seq); PostgreSQL's partitioned table must
    # add the partition key ts to it. SQLite does not enforce VARCHAR lengths, so 0009 left
    # audit_log.entity_id's declared length there.
    return ("event_messages" in text and "UniqueConstraint" in text) or (
        "audit_log" in text and "entity_id" in text
    )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_models_match_the_migrations(kind: str, tmp_path: Path) -> None:
    with database(kind, tmp_path) as url:
        migrate(url)
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"compare_type": True})
                diffs = compare_metadata(context, Base.metadata)
        finally:
            engine.dispose()
    unexpected = [d for d in diffs if not _known(kind, d)]
    assert unexpected == [], "\n".join(repr(d)[:300] for d in unexpected)
