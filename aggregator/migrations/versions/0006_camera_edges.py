"""camera edges: each camera bound to the edge that may report it

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "camera_edges",
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("edge_id", sa.String(length=64), nullable=False),
        sa.Column("bound_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("camera_id"),
    )
    op.create_index(op.f("ix_camera_edges_edge_id"), "camera_edges", ["edge_id"], unique=False)
    # A camera already reported is bound to the edge that reported it first, as it would have
    # been had binding existed then (ties broken by edge id, so the result is one row each).
    op.execute(
        "INSERT INTO camera_edges (camera_id, edge_id, bound_at) "
        "SELECT e.camera, MIN(e.edge_id), MIN(e.received_at) FROM events e "
        "JOIN (SELECT camera, MIN(received_at) AS first_at FROM events GROUP BY camera) f "
        "ON e.camera = f.camera AND e.received_at = f.first_at "
        "GROUP BY e.camera"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_camera_edges_edge_id"), table_name="camera_edges")
    op.drop_table("camera_edges")
