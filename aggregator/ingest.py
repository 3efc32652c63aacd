"""ZeroMQ ingest: ROUTER over CurveZMQ, ZAP allowlist, batched commits, then acks.

An edge's identity is the edge id its authenticated CURVE key maps to, never a payload
field. A message is acknowledged only after its batch is committed; duplicates are
acknowledged again. A malformed message is counted and dropped (or negatively acknowledged
when it carries a usable sequence number): the loop never stops for one bad message.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import zmq
from sqlalchemy import select
from zmq.auth.thread import ThreadAuthenticator

from aggregator.core.config import IngestConfig
from aggregator.db.models import MESSAGES
from aggregator.edges import EdgeRegistry
from aggregator.store import EventStore, Received
from contract import wire
from contract.keys import load_pair

log = logging.getLogger(__name__)
ZAP_DOMAIN = "streetwatch"


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    malformed: int = 0
    rejected: int = 0
    oversized: int = 0
    unauthorised: int = 0
    heartbeats: int = 0
    batches: int = 0
    db_errors: int = 0
    #: Newly stored event messages by event type (duplicates not counted).
    by_type: dict[str, int] = field(default_factory=dict)
    edges: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Allowlist:
    """ZAP credentials provider backed by the edges table; User-Id becomes the edge id."""

    def __init__(self, registry: EdgeRegistry) -> None:
        self.registry = registry

    def callback(self, domain: str, key: bytes) -> bool:
        ok = self.registry.edge_for_key(key.decode()) is not None
        if not ok:
            log.warning("refused CURVE key %s: not an allowed edge", key.decode())
        return ok


class _Authenticator(ThreadAuthenticator):
    registry: EdgeRegistry

    def curve_user_id(self, client_public_key: bytes) -> str:
        from zmq.utils import z85

        return self.registry.edge_for_key(z85.encode(client_public_key).decode()) or "?"


class IngestServer(threading.Thread):
    def __init__(self, cfg: IngestConfig, store: EventStore, registry: EdgeRegistry) -> None:
        super().__init__(name="ingest", daemon=True)
        self.cfg = cfg
        self.store = store
        self.registry = registry
        self.stats = IngestStats()
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._ctx = zmq.Context()
        self.error: BaseException | None = None

    def stop(self) -> None:
        self._stop.set()

    def snapshot(self) -> dict[str, Any]:
        # The ingest thread may add a key (a new edge or event type) while this copies.
        for _ in range(5):
            try:
                return asdict(self.stats)
            except RuntimeError:
                continue
        return asdict(self.stats)

    def run(self) -> None:
        try:
            self._serve()
        except BaseException as exc:  # the HTTP side reports it; the process exits non-zero
            self.error = exc
            log.exception("ingest stopped")
            self.ready.set()

    def _serve(self) -> None:
        public, secret = load_pair(self.cfg.server_secret_key)
        auth = _Authenticator(self._ctx)
        auth.registry = self.registry
        auth.start()
        auth.configure_curve_callback(ZAP_DOMAIN, credentials_provider=_Allowlist(self.registry))
        sock = self._ctx.socket(zmq.ROUTER)
        sock.curve_server = True
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.zap_domain = ZAP_DOMAIN.encode()
        sock.setsockopt(zmq.LINGER, 0)
        # Transport guard: libzmq drops a peer that sends more than this in one message.
        sock.setsockopt(zmq.MAXMSGSIZE, 4 * self.cfg.max_message_bytes + 1024)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        sock.bind(self.cfg.bind)
        self.ready.set()
        log.info("ingest listening on %s", self.cfg.bind)
        batch: list[tuple[bytes, Received]] = []
        first_at = 0.0
        try:
            while not self._stop.is_set():
                timeout = (
                    50
                    if not batch
                    else max(0, int(self.cfg.batch_ms - (time.monotonic() - first_at) * 1000))
                )
                if sock.poll(timeout):
                    while len(batch) < self.cfg.batch_max:
                        try:
                            parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        got = self._handle(sock, parts)
                        if got is not None:
                            if not batch:
                                first_at = time.monotonic()
                            batch.append(got)
                if batch and (
                    len(batch) >= self.cfg.batch_max
                    or (time.monotonic() - first_at) * 1000 >= self.cfg.batch_ms
                ):
                    self._commit(sock, batch)
                    batch = []
        finally:
            sock.close(0)
            auth.stop()
            self._ctx.term()

    def _handle(
        self, sock: zmq.Socket[bytes], parts: list[zmq.Frame]
    ) -> tuple[bytes, Received] | None:
        s = self.stats
        s.received += 1
        routing_id = parts[0].bytes
        edge_id = parts[-1].get("User-Id") if len(parts) > 1 else ""
        body = [p.bytes for p in parts[1:]]
        if sum(len(b) for b in body) > self.cfg.max_message_bytes + 256:
            s.oversized += 1
            log.warning("dropped oversized message from %s", edge_id)
            return None
        try:
            env = wire.parse(body)
        except wire.WireError as exc:
            s.malformed += 1
            if s.malformed % 1000 == 1:
                log.warning("malformed message from %s: %s (%d so far)", edge_id, exc, s.malformed)
            return None
        if env.edge_id != edge_id or not self.registry.allowed(edge_id):
            # Claims to be another edge, or the key was revoked while connected.
            s.unauthorised += 1
            return None
        info = s.edges.setdefault(edge_id, {"last_heard": 0.0, "depth": None, "max_seq": 0})
        info["last_heard"] = time.time()
        if env.kind == wire.KIND_HEARTBEAT:
            s.heartbeats += 1
            try:
                info["depth"] = wire.decode_heartbeat(env.payload).depth
            except wire.WireError as exc:
                # Still answered: the edge is authenticated and alive, only its figure is bad.
                s.malformed += 1
                info["depth"] = None
                log.warning("bad heartbeat from %s: %s", edge_id, exc)
            sock.send_multipart([routing_id, *wire.frames(wire.KIND_HEARTBEAT, edge_id, 0)])
            return None
        if env.kind != wire.KIND_EVENT:
            s.malformed += 1
            return None
        try:
            event = wire.decode_event(env.payload)
        except wire.WireError as exc:
            s.rejected += 1
            sock.send_multipart(
                [routing_id, *wire.frames(wire.KIND_NACK, edge_id, env.seq, str(exc).encode())]
            )
            return None
        info["max_seq"] = max(info["max_seq"], env.seq)
        return routing_id, Received(edge_id, env.seq, event)

    def _commit(self, sock: zmq.Socket[bytes], batch: list[tuple[bytes, Received]]) -> None:
        since = time.time()
        try:
            new = self.store.ingest([r for _, r in batch])
        except Exception:
            # Nothing is acknowledged: the edges resend, and nothing accepted is lost.
            self.stats.db_errors += 1
            log.exception("database write failed; %d messages will be resent", len(batch))
            time.sleep(0.5)
            return
        self.stats.batches += 1
        self.stats.stored += new
        self.stats.duplicates += len(batch) - new
        for r in self._fresh([r for _, r in batch], new, since):
            self.stats.by_type[r.event.type] = self.stats.by_type.get(r.event.type, 0) + 1
        for routing_id, r in batch:
            sock.send_multipart([routing_id, *wire.frames(wire.KIND_ACK, r.edge_id, r.seq)])

    def _fresh(self, batch: list[Received], new: int, since: float) -> list[Received]:
        """The messages of a committed batch that were new: all, none, or (with duplicates
        mixed in, which is rare) those whose row this commit wrote, one per (edge, seq)."""
        if new == len(batch):
            return batch
        if new == 0:
            return []
        m = MESSAGES
        try:
            with self.store.engine.connect() as conn:
                rows = conn.execute(
                    select(m.c.edge_id, m.c.seq).where(
                        m.c.committed_at >= since,
                        m.c.edge_id.in_({r.edge_id for r in batch}),
                        m.c.seq.in_({r.seq for r in batch}),
                    )
                ).all()
        except Exception:
            log.exception("could not tell which messages were new; by-type counts skip a batch")
            return []
        keys = {(str(eid), int(seq)) for eid, seq in rows}
        fresh: list[Received] = []
        for r in batch:
            if (r.edge_id, r.seq) in keys:
                keys.discard((r.edge_id, r.seq))
                fresh.append(r)
        return fresh
