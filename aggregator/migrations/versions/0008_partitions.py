"""partitions: events by started_ts and event_messages by ts, by time on PostgreSQL

A plain table event_owners (every database) holds each event's edge and started_ts, keyed by
event id: one index probe finds an event's owner however many partitions there are, and two
ingest processes claiming one new event agree (aggregator/event_owners.py).

On PostgreSQL each table becomes partitioned by RANGE of its time column, with a DEFAULT partition, every
row kept. Unique keys must carry the partition key there: events are keyed by (event_id,
started_ts) and messages by (id, ts), unique by (edge_id, seq, ts) and (event_id, phase, ts).
The periods that already hold rows get their partitions here (7 days, the default of
`retention.partition_days`); the service then keeps partitions ahead with
aggregator/db/partitions.py, filling gaps whatever period it is set to. SQLite keeps plain
tables: nothing changes there.

Revision ID: 0008
Revises: 0007
"""

import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PERIOD_S = 7 * 86400.0
#: Partitions made for existing rows at most (the newest periods); older rows go to DEFAULT.
MAX_BACKFILL = 1000
#: Keys from the epoch to the end of year 9999 get partitions (named by date), others DEFAULT.
LAST_S = 253402300800.0


@dataclass(frozen=True)
class Shape:
    key: str  # partition key column
    pk: tuple[str, ...]
    unique: dict[str, tuple[str, ...]] = field(default_factory=dict)
    indexes: dict[str, tuple[str, ...]] = field(default_factory=dict)


# The keys and indexes of 0001..0007 (those the review queue uses came with 0005), with the
# partition key added to the unique ones.
PARTITIONED = {
    "events": Shape(
        key="started_ts",
        pk=("event_id", "started_ts"),
        indexes={
            "ix_events_camera_started": ("camera", "started_ts"),
            "ix_events_case_id": ("case_id",),
            "ix_events_edge_id": ("edge_id",),
            "ix_events_started": ("started_ts",),
            "ix_events_status_started": ("review_status", "started_ts"),
            "ix_events_type_started": ("type", "started_ts"),
        },
    ),
    "event_messages": Shape(
        key="ts",
        pk=("id", "ts"),
        unique={
            "uq_message_edge_seq": ("edge_id", "seq", "ts"),
            "uq_message_lifecycle": ("event_id", "phase", "ts"),
        },
        indexes={"ix_event_messages_event_id": ("event_id",)},
    ),
}
PLAIN = {
    "events": Shape(key="started_ts", pk=("event_id",), indexes=PARTITIONED["events"].indexes),
    "event_messages": Shape(
        key="ts",
        pk=("id",),
        unique={
            "uq_message_edge_seq": ("edge_id", "seq"),
            "uq_message_lifecycle": ("event_id", "phase", "ts"),
        },
        indexes=PARTITIONED["event_messages"].indexes,
    ),
}


def _cols(names: tuple[str, ...]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _strip(conn: sa.Connection, table: str) -> None:
    """Drop table's keys and indexes, freeing their names for the table that replaces it."""
    constraints = conn.execute(
        sa.text(
            "SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) "
            "AND contype IN ('p', 'u')"
        ),
        {"t": table},
    ).scalars()
    for name in list(constraints):
        op.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
    indexes = conn.execute(
        sa.text("SELECT indexname FROM pg_indexes WHERE tablename = :t"), {"t": table}
    ).scalars()
    for name in list(indexes):
        op.execute(f'DROP INDEX "{name}"')


def _keys(table: str, shape: Shape) -> None:
    op.execute(
        f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_pkey" PRIMARY KEY ({_cols(shape.pk)})'
    )
    for name, cols in shape.unique.items():
        op.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" UNIQUE ({_cols(cols)})')
    for name, cols in shape.indexes.items():
        op.execute(f'CREATE INDEX "{name}" ON "{table}" ({_cols(cols)})')


def _partition_name(table: str, lo: float) -> str:
    # As aggregator/db/partitions.py names them: the UTC start, to the minute.
    return f"{table}_p{time.strftime('%Y%m%d_%H%M', time.gmtime(lo))}"


def _replace(conn: sa.Connection, table: str, shape: Shape, partitioned: bool) -> None:
    """Rebuild table (partitioned or plain) with every row, its keys and indexes."""
    old = f"{table}_{'unpartitioned' if partitioned else 'partitioned'}"
    seq = (
        conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar()
        if "id" in shape.pk
        else None
    )
    op.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    _strip(conn, old)
    if seq:  # the id sequence goes on with the new table, not dropped with the old one
        op.execute(f"ALTER SEQUENCE {seq} OWNED BY NONE")
    how = f' PARTITION BY RANGE ("{shape.key}")' if partitioned else ""
    op.execute(f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS){how}')
    if partitioned:
        op.execute(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT')
        periods = conn.execute(
            sa.text(
                f'SELECT DISTINCT floor("{shape.key}" / :p) AS k FROM "{old}" '
                f'WHERE "{shape.key}" >= 0 AND "{shape.key}" < :last ORDER BY k DESC LIMIT :n'
            ),
            {"p": PERIOD_S, "last": LAST_S - PERIOD_S, "n": MAX_BACKFILL},
        ).scalars()
        for k in list(periods):
            lo, hi = float(k) * PERIOD_S, (float(k) + 1) * PERIOD_S
            op.execute(
                f'CREATE TABLE "{_partition_name(table, lo)}" PARTITION OF "{table}" '
                f"FOR VALUES FROM ({lo!r}) TO ({hi!r})"
            )
    names = conn.execute(
        sa.text(
            "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ),
        {"t": old},
    ).scalars()
    cols = _cols(tuple(names))
    op.execute(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM "{old}"')
    # Keys and indexes after the rows: building them once is faster than row by row.
    _keys(table, shape)
    if seq:
        op.execute(f'ALTER SEQUENCE {seq} OWNED BY "{table}".id')
    op.execute(f'DROP TABLE "{old}"')
    op.execute(f'ANALYZE "{table}"')


def upgrade() -> None:
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    # On PostgreSQL the key comes after the rows (one sorted build, not millions of random
    # inserts); SQLite cannot add a key to a table, and its databases are small.
    op.create_table(
        "event_owners",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("edge_id", sa.String(length=64), nullable=False),
        sa.Column("started_ts", sa.Float(), nullable=False),
        *([] if postgres else [sa.PrimaryKeyConstraint("event_id")]),
    )
    op.execute(
        "INSERT INTO event_owners (event_id, edge_id, started_ts) "
        "SELECT event_id, edge_id, started_ts FROM events"
    )
    if not postgres:
        return
    op.create_primary_key("event_owners_pkey", "event_owners", ["event_id"])
    for table, shape in PARTITIONED.items():
        _replace(conn, table, shape, partitioned=True)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        for table, shape in PLAIN.items():
            _replace(conn, table, shape, partitioned=False)
    op.drop_table("event_owners")
