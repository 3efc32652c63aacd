"""The replicas of a deployment: each ingest or API process keeps a row in the database.

Several ingest and API processes share one database and nothing else. Each writes, every
period, its row in `replicas` (kind, endpoint, counters) and, for an ingest, when it last
heard each edge and the outbox depth it reported. Any API replica then shows the whole
fleet: the ingest counters summed over the live replicas, and every edge's liveness, however
its messages were spread. A replica that stops cleanly removes its row; one killed leaves a
row that turns stale and is removed after a day.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aggregator.db.models import EDGES, REPLICAS
from aggregator.fleet.inventory import FleetInbox, write_inventory

log = logging.getLogger(__name__)

KINDS = ("ingest", "api")
#: A replica not heard for this long is not counted as live (it beats every PERIOD_S).
PERIOD_S = 1.0
STALE_S = 10.0
FORGET_S = 86400.0


def default_id(kind: str, endpoint: str) -> str:
    """host/kind/pid: unique per process, readable in metrics and logs."""
    return f"{socket.gethostname()}/{kind}/{os.getpid()}"[:128]


@dataclass(frozen=True)
class Replica:
    replica_id: str
    kind: str
    endpoint: str
    started_at: float
    last_seen_at: float
    stats: Mapping[str, Any]

    def live(self, now_s: float) -> bool:
        return now_s - self.last_seen_at <= STALE_S


def replicas(engine: Engine) -> list[Replica]:
    """Every replica with a row, live or stale, by kind and id."""
    with engine.connect() as conn:
        rows = conn.execute(select(REPLICAS).order_by(REPLICAS.c.kind, REPLICAS.c.replica_id))
        return [Replica(**dict(r._mapping)) for r in rows]


class Beacon(threading.Thread):
    """Writes this process's replica row every PERIOD_S, and what its ingest heard of each
    edge since the last write. ``stats`` returns the counters to publish; ``heard`` (ingest
    only) returns edge id -> {"last_heard": unix s, "depth": int | None, "software": str |
    None, "source": str | None}; ``inbox`` (ingest only) holds the edges' latest camera
    statuses and config reports, written to fleet_cameras (aggregator/fleet/inventory.py)."""

    def __init__(
        self,
        engine: Engine,
        replica_id: str,
        kind: str,
        endpoint: str,
        stats: Callable[[], dict[str, Any]],
        heard: Callable[[], Mapping[str, Mapping[str, Any]]] | None = None,
        inbox: FleetInbox | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"replica kind '{kind}': one of {', '.join(KINDS)}")
        super().__init__(name="replica-beacon", daemon=True)
        self.engine = engine
        self.replica_id = replica_id
        self.kind = kind
        self.endpoint = endpoint
        self._stats = stats
        self._heard = heard
        self._inbox = inbox
        self._started_at = time.time()
        self._flushed: dict[str, float] = {}  # edge id -> last_heard already written
        self._stop_event = threading.Event()
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert

    def stop(self) -> None:
        """Stop beating and remove this replica's row."""
        self._stop_event.set()
        if self.is_alive():
            self.join(5)
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(REPLICAS).where(REPLICAS.c.replica_id == self.replica_id))
        except Exception as exc:  # the row turns stale instead; nothing is lost
            log.warning("replica %s: could not remove its row: %s", self.replica_id, exc)

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.beat()
            except Exception as exc:
                # The database may be away for a while: the ingest keeps nacking nothing and
                # answering what it stored; the row catches up on the next beat.
                log.warning("replica %s: beacon not written: %s", self.replica_id, exc)
            self._stop_event.wait(PERIOD_S)

    def beat(self) -> None:
        """Write the row and the edges heard since the last beat, in one transaction, then
        the fleet inventory in another (a failure there leaves liveness intact)."""
        now = time.time()
        row = {
            "replica_id": self.replica_id,
            "kind": self.kind,
            "endpoint": self.endpoint,
            "started_at": self._started_at,
            "last_seen_at": now,
            "stats": self._stats(),
        }
        upsert = self._insert(REPLICAS).values(row)
        upsert = upsert.on_conflict_do_update(
            index_elements=[REPLICAS.c.replica_id],
            set_={k: upsert.excluded[k] for k in ("endpoint", "last_seen_at", "stats")},
        )
        fresh = self._fresh_edges()
        with self.engine.begin() as conn:
            conn.execute(upsert)
            if fresh:
                # Only ever forward: another replica may have heard the edge later.
                conn.execute(
                    update(EDGES)
                    .where(
                        EDGES.c.edge_id == bindparam("e"),
                        or_(
                            EDGES.c.last_heard_at.is_(None),
                            EDGES.c.last_heard_at < bindparam("t"),
                        ),
                    )
                    .values(
                        last_heard_at=bindparam("t"),
                        outbox_depth=bindparam("d"),
                        software=bindparam("sw"),
                        config_source=bindparam("src"),
                    ),
                    fresh,
                )
            conn.execute(delete(REPLICAS).where(REPLICAS.c.last_seen_at < now - FORGET_S))
        for item in fresh:
            self._flushed[item["e"]] = item["t"]
        self._write_inventory()

    def _write_inventory(self) -> None:
        if self._inbox is None:
            return
        heartbeats, reports = self._inbox.take()
        if not heartbeats and not reports:
            return
        try:
            with self.engine.begin() as conn:
                write_inventory(conn, heartbeats, reports)
        except Exception:
            self._inbox.put_back(heartbeats, reports)  # written on a later beat
            raise

    def _fresh_edges(self) -> list[dict[str, Any]]:
        if self._heard is None:
            return []
        fresh = []
        for edge_id, info in sorted(self._heard().items()):
            t = float(info.get("last_heard") or 0.0)
            if t > self._flushed.get(edge_id, 0.0):
                fresh.append(
                    {
                        "e": edge_id,
                        "t": t,
                        "d": info.get("depth"),
                        "sw": info.get("software"),
                        "src": info.get("source"),
                    }
                )
        return fresh


def fleet_ingest(engine: Engine, now_s: float) -> dict[str, Any]:
    """The ingest as the whole deployment sees it: counters summed over the live ingest
    replicas, and each edge as last heard by any of them (the fields of IngestStatus)."""
    live = [r for r in replicas(engine) if r.kind == "ingest" and r.live(now_s)]
    totals: dict[str, Any] = {"running": bool(live), "by_type": {}}
    for r in live:
        for key, value in r.stats.items():
            if key == "by_type":
                for label, n in value.items():
                    totals["by_type"][label] = totals["by_type"].get(label, 0) + int(n)
            elif isinstance(value, int) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
    with engine.connect() as conn:
        heard = conn.execute(
            select(
                EDGES.c.edge_id, EDGES.c.last_heard_at, EDGES.c.outbox_depth, EDGES.c.max_seq
            ).where(EDGES.c.last_heard_at.is_not(None))
        ).all()
    totals["edges"] = {
        str(e.edge_id): {
            "last_heard": e.last_heard_at,
            "depth": e.outbox_depth,
            "max_seq": e.max_seq,
        }
        for e in heard
    }
    return totals
