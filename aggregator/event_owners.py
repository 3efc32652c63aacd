"""Which edge owns each event, and the started_ts its row is filed under.

On PostgreSQL events are partitioned by started_ts (aggregator/db/partitions.py), so no
index can keep an event id unique, and finding an event by id alone probes every partition:
the ingest's look-up cost grew with the partitions (40 ms a batch at 60 of them). This plain
table, keyed by event id alone, answers in one index probe whatever the partitions, and
makes claiming a new event atomic: when two ingest processes meet the same new event, the
first claim stands, with its edge and started_ts, and the other process follows it. The
same table serves SQLite, so that the store has one code path.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import Connection

from aggregator.db import bulk
from aggregator.db.models import EVENT_OWNERS

#: An event's owning edge and its started_ts.
Owner = tuple[str, float]


def owners(conn: Connection, event_ids: Collection[str]) -> dict[str, Owner]:
    """{event id: (edge id, started_ts)} of the events among these that are claimed."""
    if not event_ids:
        return {}
    rows = conn.execute(bulk.rows_with(conn.dialect.name, EVENT_OWNERS, "event_id", event_ids))
    return {str(r.event_id): (str(r.edge_id), float(r.started_ts)) for r in rows}


def claim(conn: Connection, claims: Mapping[str, Owner]) -> dict[str, Owner]:
    """Claim each event for its (edge, started_ts) unless it is claimed already; returns
    who owns each of them now (another process's claim where it came first)."""
    if not claims:
        return {}
    dialect = conn.dialect.name
    stmt = (
        bulk.insert(dialect, EVENT_OWNERS, ("event_id", "edge_id", "started_ts"))
        .on_conflict_do_nothing()
        .returning(EVENT_OWNERS.c.event_id)
    )
    rows = [  # sorted, so that concurrent claims lock in one order
        {"event_id": eid, "edge_id": edge, "started_ts": ts}
        for eid, (edge, ts) in sorted(claims.items())
    ]
    won = {str(eid) for (eid,) in bulk.execute(conn, stmt, rows)}
    result = {eid: claims[eid] for eid in won}
    result.update(owners(conn, set(claims) - won))
    return result
