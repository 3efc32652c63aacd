"""The ways of writing a batch that issue 13 measured against the shipped one (messages by
COPY into a staging table, the other rows as one JSON document read by json_to_recordset,
aggregator/db/bulk.py), for bench/bench_ingest.py --variants: multi-row VALUES statements
(SQLAlchemy's insertmanyvalues); the messages as one JSON document too; each message sent
as its payload alone, the columns taken out of it in SQL. Not used by the service."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert

from aggregator.db import bulk
from aggregator.store import MESSAGE_COLUMNS, EventStore, Received, _message_row


@contextlib.contextmanager
def values_rows() -> Iterator[None]:
    """While inside: every bulk statement is multi-row VALUES, on PostgreSQL too."""
    insert, execute = bulk.insert, bulk.execute

    def values_insert(dialect: str, table: Table, columns: Sequence[str]) -> Insert:
        return pg_insert(table)

    def values_execute(conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> list[Any]:
        return list(conn.execute(stmt, rows))

    bulk.insert, bulk.execute = values_insert, values_execute
    try:
        yield
    finally:
        bulk.insert, bulk.execute = insert, execute


class ValuesStore(EventStore):
    """EventStore with multi-row VALUES statements (built, and run, under values_rows)."""

    def __init__(self, engine: Engine) -> None:
        with values_rows():
            super().__init__(engine)

    def ingest(self, batch: list[Received]) -> Any:
        with values_rows():
            return super().ingest(batch)


class JsonStore(EventStore):
    """EventStore that sends the messages as one JSON document (json_to_recordset), as it
    does the other rows, instead of by COPY."""

    def _store_messages(
        self, conn: Connection, accepted: list[Received], now: float
    ) -> list[Received]:
        if not accepted:
            return []
        rows = [_message_row(r, now) for r in sorted(accepted, key=lambda r: (r.edge_id, r.seq))]
        result = bulk.execute(conn, self._messages, rows)
        new = {(str(e), int(s)) for e, s in result}
        return [r for r in accepted if (r.edge_id, r.seq) in new]


class PayloadStore(EventStore):
    """EventStore that sends each message as [edge id, seq, payload] and takes the other
    columns out of the payload in SQL (jsonb, parsed once)."""

    def _store_messages(
        self, conn: Connection, accepted: list[Received], now: float
    ) -> list[Received]:
        if not accepted:
            return []
        rows = [
            [r.edge_id, r.seq, r.event.to_dict()]
            for r in sorted(accepted, key=lambda r: (r.edge_id, r.seq))
        ]
        result = conn.execute(PAYLOAD_INSERT, {"rows": bulk.dumps(rows), "now": now})
        new = {(str(e), int(s)) for e, s in result}
        return [r for r in accepted if (r.edge_id, r.seq) in new]


PAYLOAD_INSERT = text(
    f"INSERT INTO event_messages ({', '.join(MESSAGE_COLUMNS)}) "
    "SELECT e->>0, (e->>1)::bigint, e->2->>'event_id', e->2->>'phase', (e->2->>'ts')::float8, "
    "(e->2->>'value')::float8, (e->2)::json, (e->2->>'created_wall')::float8, :now "
    "FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS e "
    "ON CONFLICT DO NOTHING RETURNING edge_id, seq"
)
