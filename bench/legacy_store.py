"""BASELINE for bench/bench_ingest.py: aggregator/store.py as it was before issue 13's fast path
(commit 4c7370d), kept unchanged but for this paragraph so that one benchmark run measures
both. Not used by the service. Row-by-row message inserts and a read-modify-write merge
in Python: correct for one writer, not for several at once.

Idempotent, batched event storage: one transaction per batch, lifecycle merged per event.

Each edge may write only its own events and cameras: a message about an event another edge
created, or a camera bound to another edge (aggregator/cameras.py), is refused and stored
nowhere, and the caller nacks it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aggregator import cameras
from aggregator.db.models import EDGES, EVENTS, MESSAGES
from contract.wire import WireEvent


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


class EventStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert

    def ingest(self, batch: list[Received]) -> Outcome:
        """Commit a batch. Duplicates change nothing; messages about another edge's event or
        camera are refused. Raises whatever the database raises, with nothing committed."""
        if not batch:
            return Outcome()
        now = time.time()
        msgs = MESSAGES
        with self.engine.begin() as conn:
            refused = self._foreign(conn, batch, now)
            accepted = [r for r in batch if (r.edge_id, r.seq) not in refused]
            new_keys: set[tuple[str, int]] = set()
            # Row by row so that a duplicate inside one batch is caught by the constraint too.
            stmt = self._insert(msgs).on_conflict_do_nothing().returning(msgs.c.edge_id, msgs.c.seq)
            for r in accepted:
                for eid, seq in conn.execute(stmt, self._message_row(r, now)):
                    new_keys.add((eid, int(seq)))
            fresh = [r for r in accepted if (r.edge_id, r.seq) in new_keys]
            if fresh:
                self._merge(conn, fresh, now)
                self._edge_progress(conn, fresh)
        return Outcome(tuple(fresh), refused)

    @staticmethod
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

    def _foreign(
        self, conn: Connection, batch: list[Received], now: float
    ) -> dict[tuple[str, int], str]:
        """The messages of the batch about another edge's event or camera, with the reason.
        Cameras not yet bound are claimed by the first accepted message naming them, and a
        new event belongs to the first edge whose message about it is accepted."""
        ids = {r.event.event_id for r in batch}
        event_owner = {
            str(eid): str(edge)
            for eid, edge in conn.execute(
                select(EVENTS.c.event_id, EVENTS.c.edge_id).where(EVENTS.c.event_id.in_(ids))
            )
        }
        camera_owner = cameras.owners(conn, {r.event.camera for r in batch})
        refused: dict[tuple[str, int], str] = {}
        claims: dict[str, str] = {}
        for r in batch:
            ev, key = r.event, (r.edge_id, r.seq)
            if event_owner.get(ev.event_id, r.edge_id) != r.edge_id:
                refused[key] = f"event {ev.event_id} belongs to another edge"
            elif camera_owner.get(ev.camera, r.edge_id) != r.edge_id:
                refused[key] = f"camera '{ev.camera}' belongs to another edge"
            else:
                event_owner[ev.event_id] = r.edge_id
                if ev.camera not in camera_owner:
                    camera_owner[ev.camera] = claims[ev.camera] = r.edge_id
        cameras.claim(conn, claims, now)  # those already bound stay as they are
        return refused

    def _merge(self, conn: Any, fresh: list[Received], now: float) -> None:
        by_event: dict[str, list[Received]] = {}
        for r in fresh:
            by_event.setdefault(r.event.event_id, []).append(r)
        events = EVENTS
        existing = {
            row.event_id: dict(row._mapping)
            for row in conn.execute(select(events).where(events.c.event_id.in_(list(by_event))))
        }
        for event_id, recs in by_event.items():
            row = existing.get(event_id)
            is_new = row is None
            if row is None:
                first = recs[0]
                row = {
                    "event_id": event_id,
                    "edge_id": first.edge_id,
                    "camera": first.event.camera,
                    "zone": first.event.zone,
                    "rule": first.event.rule,
                    "type": first.event.type,
                    "status": "open",
                    "started_ts": first.event.started_ts,
                    "last_ts": float("-inf"),
                    "ended_ts": None,
                    "value": first.event.value,
                    "peak": None,
                    "unit": first.event.unit,
                    "severity": first.event.severity,
                    "stage": None,
                    "boxes": [],
                    "labels": [],
                    "has_start": False,
                    "has_end": False,
                    "n_messages": 0,
                    "received_at": now,
                    "clip_id": None,
                    "snapshot_id": None,
                    "review_status": "new",
                }
            for r in sorted(recs, key=lambda x: x.event.ts):
                ev = r.event
                if ev.ts >= row["last_ts"]:  # later messages carry the current state
                    row["value"], row["severity"] = ev.value, ev.severity
                    row["stage"] = ev.stage or row["stage"]
                    if ev.boxes:
                        row["boxes"] = [list(b) for b in ev.boxes]
                        row["labels"] = list(ev.labels)
                    row["last_ts"] = ev.ts
                if ev.peak is not None:
                    row["peak"] = max(ev.peak, row["peak"] or ev.peak)
                row["started_ts"] = min(row["started_ts"], ev.started_ts)
                if ev.clip_id:
                    row["clip_id"] = ev.clip_id
                if ev.snapshot_id:
                    row["snapshot_id"] = ev.snapshot_id
                if ev.phase == "start":
                    row["has_start"] = True
                if ev.phase == "end":
                    row["has_end"], row["ended_ts"], row["status"] = True, ev.ts, "closed"
                row["n_messages"] += 1
            row["updated_at"] = now
            if is_new:
                conn.execute(events.insert(), row)
            else:
                conn.execute(update(events).where(events.c.event_id == event_id), row)

    def _edge_progress(self, conn: Any, fresh: list[Received]) -> None:
        edges = EDGES
        per_edge: dict[str, list[int]] = {}
        for r in fresh:
            per_edge.setdefault(r.edge_id, []).append(r.seq)
        for edge_id, seqs in per_edge.items():
            row = conn.execute(
                select(edges.c.max_seq, edges.c.received).where(edges.c.edge_id == edge_id)
            ).first()
            if row is None:
                continue
            conn.execute(
                update(edges)
                .where(edges.c.edge_id == edge_id)
                .values(max_seq=max(row.max_seq, *seqs), received=row.received + len(seqs))
            )
