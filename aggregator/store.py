"""Idempotent, batched event storage: one transaction per batch, lifecycle merged per event."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aggregator.db.models import EDGES, EVENTS, MESSAGES
from contract.wire import WireEvent


@dataclass(frozen=True)
class Received:
    edge_id: str
    seq: int
    event: WireEvent


class EventStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert

    def ingest(self, batch: list[Received]) -> int:
        """Commit a batch; return how many messages were new. Duplicates change nothing."""
        if not batch:
            return 0
        now = time.time()
        msgs = MESSAGES
        rows = [
            {
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
            for r in batch
        ]
        with self.engine.begin() as conn:
            new_keys: set[tuple[str, int]] = set()
            # Row by row so that a duplicate inside one batch is caught by the constraint too.
            stmt = self._insert(msgs).on_conflict_do_nothing().returning(msgs.c.edge_id, msgs.c.seq)
            for row in rows:
                for eid, seq in conn.execute(stmt, row):
                    new_keys.add((eid, int(seq)))
            fresh = [r for r in batch if (r.edge_id, r.seq) in new_keys]
            if fresh:
                self._merge(conn, fresh, now)
                self._edge_progress(conn, fresh)
        return len(fresh)

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
