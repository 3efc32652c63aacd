"""Alembic environment: the URL comes from the caller (aggregator.db.engine.migrate).

Replicas started together all migrate on start: on PostgreSQL a session advisory lock makes
them take turns, and each reads the schema version only once it holds the lock, so the
first upgrades and the others find nothing left to do.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from aggregator.db import grid_models  # noqa: F401  (its tables join Base.metadata)
from aggregator.db.engine import make_engine
from aggregator.db.models import Base

#: pg_advisory_lock key of schema migrations ("swmigr" in ASCII).
MIGRATION_LOCK = 0x73776D69677200

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""
engine = make_engine(url)
with engine.connect() as connection:
    locked = connection.dialect.name == "postgresql"
    if locked:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        connection.commit()
    try:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if locked:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            connection.commit()
engine.dispose()
