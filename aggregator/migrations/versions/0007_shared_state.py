"""shared state: login failures, edge liveness and replicas, so any replica answers anyone

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Failed logins per (username, address); username '' counts an address whatever the name.
    op.create_table(
        "login_failures",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("username", "address"),
    )
    op.create_index("ix_login_failures_last_at", "login_failures", ["last_at"], unique=False)
    # What the ingest replica that last heard an edge saw: when, and its outbox depth.
    op.add_column("edges", sa.Column("last_heard_at", sa.Float(), nullable=True))
    op.add_column("edges", sa.Column("outbox_depth", sa.BigInteger(), nullable=True))
    # Every running ingest or API process, its address and counters, refreshed every second
    # or two: the fleet of replicas as the API shows it.
    op.create_table(
        "replicas",
        sa.Column("replica_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("endpoint", sa.String(length=256), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("replica_id"),
    )


def downgrade() -> None:
    op.drop_table("replicas")
    op.drop_column("edges", "outbox_depth")
    op.drop_column("edges", "last_heard_at")
    op.drop_index("ix_login_failures_last_at", table_name="login_failures")
    op.drop_table("login_failures")
