"""Idempotent, batched event storage: one transaction per batch, lifecycle merged per event.

Each edge may write only its own events and cameras: a message about an event another edge
created, or a camera bound to another edge (aggregator/cameras.py), is refused and stored
nowhere, and the caller nacks it.

Several ingest processes may write one database at once (issue 13), so a batch is a few
set-based statements that stay right under concurrency, never a read-then-write:
  * ownership: new events and cameras are claimed with INSERT .. ON CONFLICT DO NOTHING
    (aggregator/event_owners.py, aggregator/cameras.py): the first claim stands;
  * event_messages: one multi-row INSERT .. ON CONFLICT DO NOTHING RETURNING (on PostgreSQL
    from rows COPied into a staging table, aggregator/db/bulk.py): the unique
    (edge_id, seq[, ts]) key decides which process stores a message, the others see a
    duplicate. The batch is deduplicated by (edge id, seq) first, so a message that arrives
    twice in one batch is stored, and counted as fresh, once;
  * events: one multi-row upsert whose SET merges in SQL (latest ts wins for the current
    state, peak is the maximum, flags are OR-ed, counts are added), so two processes merging
    messages of one event both count; the operating mode and drill flag are the first
    stored message's (an event stays in the mode it was raised under);
  * edges: max_seq and received move in place.
Rows are written in key order so that concurrent batches lock in one order; a deadlock or
serialization failure that PostgreSQL still reports is retried here, never surfaced as a
fault of the messages.

An event's started_ts is part of its key on PostgreSQL (events are partitioned by it): the
event's first stored message sets it, and a later message that disagrees is merged into the
row filed under the first one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, case, func, or_, tuple_, update
from sqlalchemy import exc as sa_exc

from aggregator import cameras, event_owners
from aggregator.db import bulk
from aggregator.db.models import EDGES, EVENTS, MESSAGES
from contract.wire import WireEvent

#: SQLSTATEs of a transaction that lost a race with another one (deadlock detected,
#: serialization failure): run again, it commits once the other has.
RETRY_SQLSTATES = frozenset({"40P01", "40001"})
MAX_ATTEMPTS = 5
RETRY_BASE_S = 0.005
MESSAGE_COLUMNS = (
    "edge_id",
    "seq",
    "event_id",
    "phase",
    "ts",
    "value",
    "payload",
    "created_wall",
    "committed_at",
)
#: What the ingest writes of an event (the review columns but its first status are people's).
EVENT_COLUMNS = (
    "event_id",
    "edge_id",
    "camera",
    "zone",
    "rule",
    "type",
    "status",
    "started_ts",
    "last_ts",
    "ended_ts",
    "value",
    "peak",
    "unit",
    "severity",
    "stage",
    "boxes",
    "labels",
    "has_start",
    "has_end",
    "n_messages",
    "received_at",
    "updated_at",
    "clip_id",
    "snapshot_id",
    "review_status",
    "mode",
    "drill",
)


@dataclass(frozen=True)
class Received:
    edge_id: str
    seq: int
    event: WireEvent


@dataclass(frozen=True)
class Outcome:
    """What a committed batch did: the messages stored for the first time (the others were
    stored before or refused), and the refused ones with why, by (edge id, seq)."""

    fresh: tuple[Received, ...] = ()
    refused: Mapping[tuple[str, int], str] = field(default_factory=dict)

    @property
    def new(self) -> int:
        return len(self.fresh)


def retryable(exc: BaseException) -> bool:
    """Whether exc is a lost race between transactions (see RETRY_SQLSTATES)."""
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    return getattr(orig, "sqlstate", None) in RETRY_SQLSTATES


class EventStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._messages = (
            bulk.insert(self._dialect, MESSAGES, MESSAGE_COLUMNS)
            .on_conflict_do_nothing()
            .returning(MESSAGES.c.edge_id, MESSAGES.c.seq)
        )
        self._events = self._upsert_events()
        self._edges = (
            update(EDGES)
            .where(EDGES.c.edge_id == bindparam("b_edge"))
            .values(
                max_seq=case(
                    (EDGES.c.max_seq > bindparam("b_max"), EDGES.c.max_seq),
                    else_=bindparam("b_max"),
                ),
                received=EDGES.c.received + bindparam("b_n"),
            )
        )
        #: Transactions run again after a lost race (for tests and figures).
        self.retries = 0

    def ingest(self, batch: list[Received]) -> Outcome:
        """Commit a batch. Duplicates change nothing; messages about another edge's event or
        camera are refused. Raises whatever the database raises, with nothing committed."""
        if not batch:
            return Outcome()
        unique: dict[tuple[str, int], Received] = {}
        for r in batch:
            unique.setdefault((r.edge_id, r.seq), r)
        todo = list(unique.values())
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    return self._ingest(conn, todo, time.time())
            except sa_exc.DBAPIError as exc:
                if attempt == MAX_ATTEMPTS or not retryable(exc):
                    raise
                self.retries += 1
                time.sleep(random.uniform(0, RETRY_BASE_S * 2**attempt))
        raise AssertionError("unreachable")

    def _ingest(self, conn: Connection, batch: list[Received], now: float) -> Outcome:
        refused, started = self._foreign(conn, batch, now)
        accepted = [r for r in batch if (r.edge_id, r.seq) not in refused]
        fresh = self._store_messages(conn, accepted, now)
        if fresh:
            lost = self._merge(conn, fresh, started, now)
            if lost:
                fresh = self._unstore(conn, fresh, lost, refused)
            self._edge_progress(conn, fresh)
        return Outcome(tuple(fresh), refused)

    def _foreign(
        self, conn: Connection, batch: list[Received], now: float
    ) -> tuple[dict[tuple[str, int], str], dict[str, float]]:
        """The messages of the batch about another edge's event or camera, with the reason,
        and the started_ts each event of the batch is filed under. Cameras not yet bound are
        claimed by the first accepted message naming them, and a new event belongs to the
        first edge whose message about it is accepted; when another process claimed one of
        them first, its claim stands and ours are refused."""
        event_owner = event_owners.owners(conn, {r.event.event_id for r in batch})
        camera_owner = cameras.owners(conn, {r.event.camera for r in batch})
        refused: dict[tuple[str, int], str] = {}
        event_claims: dict[str, event_owners.Owner] = {}
        camera_claims: dict[str, str] = {}
        for r in batch:
            ev = r.event
            reason = _foreign_reason(r, event_owner, camera_owner)
            if reason:
                refused[(r.edge_id, r.seq)] = reason
                continue
            if ev.event_id not in event_owner:
                event_owner[ev.event_id] = event_claims[ev.event_id] = (r.edge_id, ev.started_ts)
            if ev.camera not in camera_owner:
                camera_owner[ev.camera] = camera_claims[ev.camera] = r.edge_id
        if event_claims or camera_claims:
            event_owner.update(event_owners.claim(conn, event_claims))
            if camera_claims:  # sorted, so that concurrent claims lock in one order
                cameras.claim(conn, dict(sorted(camera_claims.items())), now)
                camera_owner.update(cameras.owners(conn, camera_claims))
            for r in batch:
                reason = _foreign_reason(r, event_owner, camera_owner)
                if reason:
                    refused.setdefault((r.edge_id, r.seq), reason)
        return refused, {eid: ts for eid, (_, ts) in event_owner.items()}

    def _store_messages(
        self, conn: Connection, accepted: list[Received], now: float
    ) -> list[Received]:
        """Insert the messages; those stored now (not before, by this or another process),
        in batch order."""
        if not accepted:
            return []
        ordered = sorted(accepted, key=lambda r: (r.edge_id, r.seq))
        if self._dialect == "postgresql":
            tuples = [_message_tuple(r, now) for r in ordered]
            result = bulk.copy_insert(conn, MESSAGES, MESSAGE_COLUMNS, tuples, ("edge_id", "seq"))
        else:
            rows = [_message_row(r, now) for r in ordered]
            result = bulk.execute(conn, self._messages, rows)
        new_keys = {(str(edge), int(seq)) for edge, seq in result}
        return [r for r in accepted if (r.edge_id, r.seq) in new_keys]

    def _upsert_events(self) -> Any:
        """One statement for every event of a batch: insert it, or merge into the stored row
        (only the edge that owns the event may), returning the event ids written."""
        stmt = bulk.insert(self._dialect, EVENTS, EVENT_COLUMNS)
        x, t = stmt.excluded, EVENTS.c
        newer = x.last_ts >= t.last_ts
        boxed = and_(newer, func.json_array_length(x.boxes) > 0)

        def larger(a: Any, b: Any) -> Any:  # NULL-safe greatest, in SQL both dialects speak
            return case((a.is_(None), b), (b.is_(None), a), (a > b, a), else_=b)

        # PostgreSQL's events are partitioned: their key carries the partition key.
        postgres = self._dialect == "postgresql"
        return stmt.on_conflict_do_update(
            index_elements=["event_id", "started_ts"] if postgres else ["event_id"],
            set_={
                "value": case((newer, x.value), else_=t.value),
                "severity": case((newer, x.severity), else_=t.severity),
                "stage": case((newer, func.coalesce(x.stage, t.stage)), else_=t.stage),
                "boxes": case((boxed, x.boxes), else_=t.boxes),
                "labels": case((boxed, x.labels), else_=t.labels),
                "last_ts": case((newer, x.last_ts), else_=t.last_ts),
                "peak": larger(x.peak, t.peak),
                "has_start": or_(t.has_start, x.has_start),
                "has_end": or_(t.has_end, x.has_end),
                "ended_ts": larger(x.ended_ts, t.ended_ts),
                "status": case((x.has_end, "closed"), else_=t.status),
                "clip_id": func.coalesce(x.clip_id, t.clip_id),
                "snapshot_id": func.coalesce(x.snapshot_id, t.snapshot_id),
                "n_messages": t.n_messages + x.n_messages,
                "updated_at": x.updated_at,
            },
            where=t.edge_id == x.edge_id,
        ).returning(t.event_id)

    def _merge(
        self, conn: Connection, fresh: list[Received], started: Mapping[str, float], now: float
    ) -> set[str]:
        """Fold the fresh messages into their events; the ids of events whose stored row
        another edge owns (none while every row is written here: a guard, not a path)."""
        by_event: dict[str, list[Received]] = {}
        for r in fresh:
            by_event.setdefault(r.event.event_id, []).append(r)
        rows = [_event_row(eid, by_event[eid], started[eid], now) for eid in sorted(by_event)]
        result = bulk.execute(conn, self._events, rows)
        return set(by_event) - {str(eid) for (eid,) in result}

    def _unstore(
        self,
        conn: Connection,
        fresh: list[Received],
        lost: set[str],
        refused: dict[tuple[str, int], str],
    ) -> list[Received]:
        """Take back the messages of events that turned out to be another edge's."""
        gone = [r for r in fresh if r.event.event_id in lost]
        m = MESSAGES.c
        conn.execute(
            MESSAGES.delete().where(
                tuple_(m.edge_id, m.seq).in_([(r.edge_id, r.seq) for r in gone])
            )
        )
        for r in gone:
            refused[(r.edge_id, r.seq)] = f"event {r.event.event_id} belongs to another edge"
        return [r for r in fresh if r.event.event_id not in lost]

    def _edge_progress(self, conn: Connection, fresh: list[Received]) -> None:
        per_edge: dict[str, list[int]] = {}
        for r in fresh:
            per_edge.setdefault(r.edge_id, []).append(r.seq)
        conn.execute(
            self._edges,
            [
                {"b_edge": edge, "b_max": max(seqs), "b_n": len(seqs)}
                for edge, seqs in sorted(per_edge.items())
            ],
        )


def _foreign_reason(
    r: Received, event_owner: Mapping[str, event_owners.Owner], camera_owner: Mapping[str, str]
) -> str | None:
    """Why r may not be stored, if it is about another edge's event or camera."""
    owner = event_owner.get(r.event.event_id)
    if owner is not None and owner[0] != r.edge_id:
        return f"event {r.event.event_id} belongs to another edge"
    if camera_owner.get(r.event.camera, r.edge_id) != r.edge_id:
        return f"camera '{r.event.camera}' belongs to another edge"
    return None


def _message_row(r: Received, now: float) -> dict[str, Any]:
    return {
        "edge_id": r.edge_id,
        "seq": r.seq,
        "event_id": r.event.event_id,
        "phase": r.event.phase,
        "ts": r.event.ts,
        "value": r.event.value,
        "payload": r.event.to_dict(),
        "created_wall": r.event.created_wall,
        "committed_at": now,
    }


def _message_tuple(r: Received, now: float) -> tuple[Any, ...]:
    """_message_row's values in MESSAGE_COLUMNS order, the payload as JSON text (for COPY)."""
    ev = r.event
    payload = bulk.dumps(ev.to_dict())
    return (r.edge_id, r.seq, ev.event_id, ev.phase, ev.ts, ev.value, payload, ev.created_wall, now)


def _event_row(
    event_id: str, recs: list[Received], started_ts: float, now: float
) -> dict[str, Any]:
    """The events row these messages make on their own: what is inserted for a new event and
    merged into a stored one (the merge in SQL treats it as one newer message)."""
    first = recs[0].event
    row: dict[str, Any] = {
        "event_id": event_id,
        "edge_id": recs[0].edge_id,
        "camera": first.camera,
        "zone": first.zone,
        "rule": first.rule,
        "type": first.type,
        "status": "open",
        "started_ts": started_ts,
        "ended_ts": None,
        "peak": None,
        "unit": first.unit,
        "stage": None,
        "boxes": [],
        "labels": [],
        "has_start": False,
        "has_end": False,
        "n_messages": len(recs),
        "received_at": now,
        "updated_at": now,
        "clip_id": None,
        "snapshot_id": None,
        "review_status": "new",
        # Only inserted, never merged: the mode the event was raised under.
        "mode": first.mode,
        "drill": first.drill,
    }
    for r in sorted(recs, key=lambda x: x.event.ts):  # later messages carry the current state
        ev = r.event
        row["value"], row["severity"], row["last_ts"] = ev.value, ev.severity, ev.ts
        row["stage"] = ev.stage or row["stage"]
        if ev.boxes:
            row["boxes"], row["labels"] = [list(b) for b in ev.boxes], list(ev.labels)
        if ev.peak is not None:
            row["peak"] = ev.peak if row["peak"] is None else max(ev.peak, row["peak"])
        row["clip_id"] = ev.clip_id or row["clip_id"]
        row["snapshot_id"] = ev.snapshot_id or row["snapshot_id"]
        if ev.phase == "start":
            row["has_start"] = True
        if ev.phase == "end":
            row["has_end"], row["ended_ts"], row["status"] = True, ev.ts, "closed"
    return row
