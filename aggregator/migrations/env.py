"""Alembic environment: the URL comes from the caller (aggregator.db.engine.migrate)."""

from __future__ import annotations

from alembic import context

from aggregator.db.engine import make_engine
from aggregator.db.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url") or ""
engine = make_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
