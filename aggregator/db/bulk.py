"""Many-row INSERTs as one statement, for the ingest's batches.

On PostgreSQL the rows travel as one JSON document that json_to_recordset turns back into
rows (`insert`, `execute`), or, for the largest batches, by COPY into a staging table
(`copy_insert`): either way the statement is short and the same for any number of rows, so
the driver sends and the server plans it once. A multi-row VALUES statement costs the
driver more to build and parse than the server takes to write the rows (a quarter of the
throughput, bench/RESULTS.md). Elsewhere (SQLite) the rows are VALUES rows, which SQLAlchemy
sends as multi-row statements itself.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import psycopg
from sqlalchemy import (
    JSON,
    Connection,
    Executable,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    column,
    func,
    literal,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

#: The largest chunk of rows in one statement on SQLite (a power of two).
SQLITE_CHUNK = 256

try:  # optional: the standard library's json does the same, slower
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the installation
    _orjson = None  # type: ignore[assignment]


def insert(dialect: str, table: Table, columns: Sequence[str]) -> PgInsert | SqliteInsert:
    """INSERT INTO table (columns) of the rows given by `params`; on_conflict_* and
    returning() may be added as to any dialect insert."""
    if dialect != "postgresql":
        return sqlite_insert(table)
    rows = (
        func.json_to_recordset(cast(bindparam("rows", type_=Text), JSON))
        .table_valued(*[column(name, table.c[name].type) for name in columns])
        .render_derived(with_types=True)
    )
    return pg_insert(table).from_select(list(columns), select(*[rows.c[n] for n in columns]))


def execute(conn: Connection, stmt: Executable, rows: list[dict[str, Any]]) -> list[Any]:
    """Run an `insert` statement for these rows (each a dict of its columns); the rows it
    returns. On SQLite in chunks whose sizes are powers of two: the driver keeps up to 128
    prepared statements by their text, and a multi-row statement for every batch size would
    fill that cache with statements of hundreds of rows (27 MB more memory seen)."""
    if conn.dialect.name == "postgresql":
        return list(conn.execute(stmt, {"rows": dumps(rows)}))
    out: list[Any] = []
    at = 0
    while at < len(rows):
        size = min(SQLITE_CHUNK, 1 << ((len(rows) - at).bit_length() - 1))
        out += conn.execute(stmt, rows[at : at + size]).all()
        at += size
    return out


def dumps(value: Any) -> str:
    """JSON text of value. orjson where installed: encoding a batch's rows took the ingest
    as long as any statement of it (a fifth of its time, bench/RESULTS.md); it writes no
    non-finite number (neither does the wire decoder let one through), the standard library
    refuses them."""
    if _orjson is not None:
        return _orjson.dumps(value).decode()
    return json.dumps(value, allow_nan=False)


def rows_with(dialect: str, table: Table, key: str, values: Collection[Any]) -> Select[Any]:
    """SELECT the rows of table whose column key is one of values. On PostgreSQL the values
    are one array joined to the table, so the statement text is the same for any number of
    them and the key's index is probed per value: a prepared `= ANY($1)` filter may be
    planned as a scan comparing every row with every value."""
    col = table.c[key]
    if dialect != "postgresql":
        return select(table).where(col.in_(sorted(values)))
    wanted = (
        func.unnest(literal(sorted(values), ARRAY(col.type))).table_valued("v").render_derived()
    )
    return select(table).select_from(wanted.join(table, col == wanted.c.v))


def copy_insert(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """PostgreSQL: INSERT the rows (tuples in columns' order, JSON as text) .. ON CONFLICT DO
    NOTHING RETURNING those columns of the rows inserted, by COPY into a staging table
    (temporary, emptied at each commit, kept by the connection) and one INSERT .. SELECT
    from it: for the many rows of the ingest's messages a sixth faster than the JSON
    document (bench/RESULTS.md). Errors are raised as SQLAlchemy raises them (DataError,
    IntegrityError, OperationalError, ...), so that callers tell them apart as usual."""
    stage, cols = f"stage_{table.name}", ", ".join(f'"{c}"' for c in columns)
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"COPY needs a psycopg connection, not {type(driver).__name__}")
    statement = ""
    try:
        with driver.cursor() as cur:
            statement = (
                f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" ON COMMIT DELETE ROWS '
                f'AS SELECT {cols} FROM "{table.name}" WITH NO DATA'
            )
            cur.execute(statement)
            statement = f'COPY "{stage}" ({cols}) FROM STDIN'
            with cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            statement = (
                f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM "{stage}" '
                f"ON CONFLICT DO NOTHING RETURNING {', '.join(returning)}"
            )
            cur.execute(statement)
            return list(cur.fetchall())
    except psycopg.Error as exc:
        raise sa_exc.DBAPIError.instance(
            statement, None, exc, psycopg.Error, dialect=conn.dialect
        ) from exc
