"""fleet: central camera configs, operating-mode switches, what edges' cameras report

camera_configs holds every version of each camera's central config; mode_switches is the
audit trail of mode switches (its ids are the mode revisions edges report); fleet_cameras
is what each edge's cameras last reported. Edges get their software and config source;
cameras a group a mode can be switched for; events and cases the mode they were raised
under and whether it was a drill. Existing events and cases were raised in peacetime, not
in a drill: the server defaults fill them in.

On PostgreSQL events is partitioned (0008): a column added to the parent is added to every
partition, so nothing here needs to know the partitions.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: Tables whose rows get the mode they were raised under and the drill flag.
MODE_COLUMNS = ("events", "cases")


def _mode_columns(table: str) -> None:
    op.add_column(
        table,
        sa.Column("mode", sa.String(length=32), server_default="peacetime", nullable=False),
    )
    op.add_column(
        table, sa.Column("drill", sa.Boolean(), server_default=sa.false(), nullable=False)
    )


def upgrade() -> None:
    op.create_table(
        "camera_configs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("camera_id", "version", name="uq_camera_config_version"),
    )
    op.create_table(
        "mode_switches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("mode", sa.String(length=32), nullable=False),
        sa.Column("scope_kind", sa.String(length=8), nullable=False),
        sa.Column("scope_value", sa.String(length=64), server_default="", nullable=False),
        sa.Column("starts_at", sa.Float(), nullable=False),
        sa.Column("ends_at", sa.Float(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("cancelled_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_mode_switches_starts_at"), "mode_switches", ["starts_at"], unique=False
    )
    op.create_table(
        "fleet_cameras",
        sa.Column("edge_id", sa.String(length=64), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("fps", sa.Float(), nullable=False),
        sa.Column("config_version", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(length=32), nullable=False),
        sa.Column("mode_rev", sa.Integer(), nullable=False),
        sa.Column("last_event_wall", sa.Float(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("reported_at", sa.Float(), nullable=False),
        sa.Column("applied_at", sa.Float(), nullable=True),
        sa.Column("failed_config_version", sa.Integer(), nullable=True),
        sa.Column("failed_mode_rev", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("edge_id", "camera_id"),
    )
    op.add_column("edges", sa.Column("software", sa.String(length=32), nullable=True))
    op.add_column("edges", sa.Column("config_source", sa.String(length=8), nullable=True))
    op.add_column(
        "cameras",
        sa.Column("camera_group", sa.String(length=64), server_default="", nullable=False),
    )
    for table in MODE_COLUMNS:
        _mode_columns(table)
    # Config saves are audited by camera id (up to 64 characters), not only by event uuids
    # and case numbers. SQLite does not enforce the length: nothing to change there.
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "audit_log",
            "entity_id",
            type_=sa.String(length=64),
            existing_type=sa.String(length=36),
            existing_nullable=False,
        )


def downgrade() -> None:
    # audit_log.entity_id stays 64 wide: entries written since may need it.
    # None of these columns is indexed or keyed, so SQLite (3.35+) drops them in place too.
    for table in MODE_COLUMNS:
        op.drop_column(table, "drill")
        op.drop_column(table, "mode")
    op.drop_column("cameras", "camera_group")
    op.drop_column("edges", "config_source")
    op.drop_column("edges", "software")
    op.drop_table("fleet_cameras")
    op.drop_index(op.f("ix_mode_switches_starts_at"), table_name="mode_switches")
    op.drop_table("mode_switches")
    op.drop_table("camera_configs")
