"""grid: the unit grid, staged case deadlines, notifications, citizen clients, verification

grid_cells holds the unit grid (GeoJSON geometry per cell, with its bounding box);
notifications is the durable queue of signed webhooks; api_clients the keys of citizen-report
clients (hashed); verifications each check of a case's camera view. Cases get the catalogue
category code, district, current stage and its due time, source (camera or citizen), the
citizen's client, text and photo, and rework and escalation counts. Existing cases came from
cameras, are on their first stage and were never reworked: the server defaults say so.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _case_columns() -> tuple[sa.Column, ...]:  # type: ignore[type-arg]
    """Fresh Column objects each call: a Column belongs to one table once added."""
    return (
        sa.Column("category_code", sa.String(length=16), server_default="", nullable=False),
        sa.Column("district", sa.String(length=64), server_default="", nullable=False),
        sa.Column("stage_index", sa.Integer(), server_default="0", nullable=False),
        sa.Column("stage_due_at", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=16), server_default="camera", nullable=False),
        sa.Column("reporter", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("photo_id", sa.String(length=36), nullable=True),
        sa.Column("rework_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("escalation_level", sa.Integer(), server_default="0", nullable=False),
        sa.Column("escalated_stage", sa.Integer(), server_default="-1", nullable=False),
    )


def upgrade() -> None:
    op.create_table(
        "grid_cells",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("district", sa.String(length=64), nullable=False),
        sa.Column("responsible", sa.String(length=128), nullable=False),
        sa.Column("geometry", sa.JSON(), nullable=False),
        sa.Column("min_lon", sa.Float(), nullable=False),
        sa.Column("min_lat", sa.Float(), nullable=False),
        sa.Column("max_lon", sa.Float(), nullable=False),
        sa.Column("max_lat", sa.Float(), nullable=False),
        sa.Column("imported_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index("ix_grid_cells_district", "grid_cells", ["district"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("notification_id", sa.String(length=36), nullable=False),
        sa.Column("webhook", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("leased_by", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("notification_id"),
    )
    op.create_index("ix_notifications_case_id", "notifications", ["case_id"])
    op.create_index("ix_notifications_next_attempt_at", "notifications", ["next_attempt_at"])
    op.create_table(
        "api_clients",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("key_sha256"),
    )
    op.create_table(
        "verifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("camera", sa.String(length=64), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("rule_type", sa.String(length=64), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("snapshot_id", sa.String(length=36), nullable=True),
        sa.Column("answered_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_index("ix_verifications_case_id", "verifications", ["case_id"])
    op.create_index("ix_verifications_pending", "verifications", ["verdict", "requested_at"])
    for column in _case_columns():
        op.add_column("cases", column)
    op.create_index("ix_cases_grid_cell", "cases", ["grid_cell"])
    op.create_index("ix_cases_photo_id", "cases", ["photo_id"])


def downgrade() -> None:
    op.drop_index("ix_cases_photo_id", table_name="cases")
    op.drop_index("ix_cases_grid_cell", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        for column in _case_columns():
            batch.drop_column(column.name)
    for table in ("verifications", "api_clients", "notifications", "grid_cells"):
        op.drop_table(table)
