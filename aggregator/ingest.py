"""ZeroMQ ingest: ROUTER over CurveZMQ, ZAP allowlist, batched commits, then acks.

An edge's identity is the edge id its authenticated CURVE key maps to, never a payload
field. A message is acknowledged only after its batch is committed; duplicates are
acknowledged again. A malformed message is counted and dropped (or negatively acknowledged
when it carries a usable sequence number): the loop never stops for one bad message.

No message can hold up the others: frames over the largest legal one make libzmq drop the
peer, messages of too many frames are read to their end and discarded, payloads are checked
against the columns when decoded, and a batch the database still refuses is split until the
message it refuses is alone, which is nacked while the rest are committed and acknowledged.

Fleet control rides on the heartbeats: each is answered with H and may bring C pushes of
cameras' desired configs and modes, and V requests to verify a case by camera; the edges' R
reports are noted for the beacon, their W verdicts for the verify desk
(aggregator/fleet/link.py). None of it waits on the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

import zmq
from sqlalchemy import exc as sa_exc
from zmq.auth.thread import ThreadAuthenticator

from aggregator.core.config import IngestConfig
from aggregator.core.fleet_config import FleetConfig, ModesConfig
from aggregator.edges import EdgeRegistry
from aggregator.fleet.link import FleetLink
from aggregator.store import EventStore, Outcome, Received
from contract import fleet, wire
from contract.keys import load_pair
from contract.vocabulary import EVENT_TYPES

log = logging.getLogger(__name__)
ZAP_DOMAIN = "streetwatch"
#: The label of event types outside the known ones, in by_type (and so on /metrics).
OTHER_TYPE = "other"
#: A message's frames as the ROUTER hands them over: its routing id, then the protocol's.
_FRAMES_WITH_ROUTING_ID = 1 + wire.FRAMES
#: libzmq applies MAXMSGSIZE to the encrypted frame: CurveZMQ's MESSAGE command adds its name
#: (8 bytes), a nonce (8), a MAC (16) and a flags byte to every frame.
CURVE_FRAME_OVERHEAD_BYTES = 33


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
    #: Fleet control: config pushes sent, and the edges' reports on them (matched to a push).
    pushes_sent: int = 0
    reports_ok: int = 0
    reports_refused: int = 0
    #: Newly stored event messages by event type (duplicates not counted); types outside the
    #: known ones count under OTHER_TYPE, so an edge cannot add keys (or metric series).
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


def _message_fault(exc: BaseException) -> bool:
    """Whether the database refused this data (its type, size or a constraint), as opposed to
    failing by itself (connection lost, disk full, locked): only then may a message be nacked,
    since an edge drops what is nacked. Errors raised before the database is reached (the
    driver cannot convert a value) are the data's too."""
    if isinstance(exc, sa_exc.DataError | sa_exc.IntegrityError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        return False
    if isinstance(exc, sa_exc.StatementError):
        return exc.orig is not None and _message_fault(exc.orig)
    return isinstance(exc, ValueError | TypeError | OverflowError)


def _brief(exc: BaseException) -> str:
    """The driver's first line, without the statement SQLAlchemy appends (a batch's INSERT
    runs to kilobytes and would bury the log)."""
    orig = exc.orig if isinstance(exc, sa_exc.StatementError) and exc.orig is not None else exc
    first = (str(orig).strip().splitlines() or [""])[0]
    return f"{type(orig).__name__}: {first}"[:300]


def _reason(exc: BaseException) -> str:
    """The nack reason for a message the database refused: the driver's words, first line."""
    return f"not stored: the database refused it ({_brief(exc)})"[:300]


class IngestServer(threading.Thread):
    def __init__(
        self,
        cfg: IngestConfig,
        store: EventStore,
        registry: EdgeRegistry,
        known_types: Collection[str] = EVENT_TYPES,
        fleet_cfg: FleetConfig | None = None,
        modes: ModesConfig | None = None,
    ) -> None:
        """known_types: the event types counted under their own name in by_type (the
        vocabulary's and those with a case category); the rest count as OTHER_TYPE.
        fleet_cfg and modes (defaults when None): how edges are brought to their cameras'
        desired configs and modes (aggregator/fleet/)."""
        super().__init__(name="ingest", daemon=True)
        self.cfg = cfg
        self.store = store
        self.registry = registry
        self.known_types = frozenset(known_types)
        self.stats = IngestStats()
        self.ready = threading.Event()
        self._stop_event = threading.Event()
        self._ctx = zmq.Context()
        self.error: BaseException | None = None
        self.fleet = FleetLink(store.engine, fleet_cfg or FleetConfig(), modes or ModesConfig())

    def stop(self) -> None:
        self._stop_event.set()

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
        # Transport guard: libzmq drops a peer that sends a frame over the largest legal one
        # (the payload) before buffering it. The limit is per frame: the frame count is
        # checked in _receive, the configured payload limit in _handle.
        sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_PAYLOAD_BYTES + CURVE_FRAME_OVERHEAD_BYTES)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        sock.bind(self.cfg.bind)
        self.fleet.start()
        self.ready.set()
        log.info("ingest listening on %s", self.cfg.bind)
        batch: list[tuple[bytes, Received]] = []
        first_at = 0.0
        try:
            while not self._stop_event.is_set():
                timeout = (
                    50
                    if not batch
                    else max(0, int(self.cfg.batch_ms - (time.monotonic() - first_at) * 1000))
                )
                if sock.poll(timeout):
                    # Until the batch is full or due: a flood of bad messages, which never
                    # join it, must not hold up the good ones waiting in it.
                    while len(batch) < self.cfg.batch_max and not self._due(batch, first_at):
                        try:
                            parts = self._receive(sock)
                        except zmq.Again:
                            break
                        got = self._handle(sock, parts) if parts is not None else None
                        if got is not None:
                            if not batch:
                                first_at = time.monotonic()
                            batch.append(got)
                if batch and (len(batch) >= self.cfg.batch_max or self._due(batch, first_at)):
                    self._commit(sock, batch)
                    batch = []
        finally:
            self.fleet.stop()
            sock.close(0)
            auth.stop()
            self._ctx.term()

    def _due(self, batch: list[tuple[bytes, Received]], first_at: float) -> bool:
        return bool(batch) and (time.monotonic() - first_at) * 1000 >= self.cfg.batch_ms

    def _receive(self, sock: zmq.Socket[bytes]) -> list[zmq.Frame] | None:
        """The next message, frame by frame (zmq.Again when there is none). A message of more
        frames than the protocol's is read to its end without keeping the rest, counted as
        oversized and dropped (None): it costs no more memory than libzmq already holds."""
        frame = sock.recv(zmq.NOBLOCK, copy=False)
        parts = [frame]
        extra = 0
        while frame.more:
            # libzmq hands over a multipart message only once it is whole: no wait here.
            frame = sock.recv(copy=False)
            if len(parts) < _FRAMES_WITH_ROUTING_ID:
                parts.append(frame)
            else:
                extra += 1  # not kept: its memory goes back as soon as the next one comes
        if not extra:
            return parts
        self.stats.received += 1
        self.stats.oversized += 1
        if self.stats.oversized % 1000 == 1:
            edge_id = parts[-1].get("User-Id")
            log.warning(
                "dropped a message of %d frames from %s (the protocol has %d; %d so far)",
                len(parts) - 1 + extra,
                edge_id,
                wire.FRAMES,
                self.stats.oversized,
            )
        return None

    def _handle(
        self, sock: zmq.Socket[bytes], parts: list[zmq.Frame]
    ) -> tuple[bytes, Received] | None:
        s = self.stats
        s.received += 1
        routing_id = parts[0].bytes
        edge_id = parts[-1].get("User-Id") if len(parts) > 1 else ""
        body = [p.bytes for p in parts[1:]]  # at most 6 frames of at most MAX_PAYLOAD_BYTES
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
            self._heartbeat(sock, routing_id, edge_id, env.payload, info)
            return None
        if env.kind == wire.KIND_REPORT:
            self._report(edge_id, env)
            return None
        if env.kind == wire.KIND_VERDICT:
            if not self.fleet.on_verdict(edge_id, env.payload):
                s.malformed += 1
            return None
        if env.kind != wire.KIND_EVENT:
            s.malformed += 1
            return None
        if len(env.payload) > self.cfg.max_message_bytes:
            s.oversized += 1
            reason = f"payload of {len(env.payload)} bytes exceeds {self.cfg.max_message_bytes}"
            sock.send_multipart(
                [routing_id, *wire.frames(wire.KIND_NACK, edge_id, env.seq, reason.encode())]
            )
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

    def _heartbeat(
        self,
        sock: zmq.Socket[bytes],
        routing_id: bytes,
        edge_id: str,
        payload: bytes,
        info: dict[str, Any],
    ) -> None:
        """Answer with H, note what the edge says, and push each camera that runs other than
        its desired state (aggregator/fleet/reconcile.py)."""
        s = self.stats
        s.heartbeats += 1
        try:
            hb = fleet.decode_heartbeat(payload)
        except wire.WireError as exc:
            hb = None
            self._malformed(edge_id, "heartbeat", exc)
        # Answered even when bad: the edge is authenticated and alive, only its figures are not.
        sock.send_multipart([routing_id, *wire.frames(wire.KIND_HEARTBEAT, edge_id, 0)])
        info["depth"] = None if hb is None else hb.depth
        if hb is None:
            return
        info["software"], info["source"] = hb.software, hb.source
        for frames in self.fleet.on_heartbeat(edge_id, hb):
            sock.send_multipart([routing_id, *frames])
            s.pushes_sent += 1
        for frames in self.fleet.verify_requests(edge_id, hb):
            sock.send_multipart([routing_id, *frames])

    def _report(self, edge_id: str, env: wire.Envelope) -> None:
        """An edge's report on a push (aggregator/fleet/link.py)."""
        try:
            report = fleet.decode_report(env.payload)
        except wire.WireError as exc:
            self._malformed(edge_id, "config report", exc)
            return
        if self.fleet.on_report(edge_id, env.seq, report):
            if report.ok:
                self.stats.reports_ok += 1
            else:
                self.stats.reports_refused += 1

    def _malformed(self, edge_id: str, what: str, exc: Exception) -> None:
        s = self.stats
        s.malformed += 1
        if s.malformed % 1000 == 1:
            log.warning("bad %s from %s: %s (%d malformed)", what, edge_id, exc, s.malformed)

    def _commit(self, sock: zmq.Socket[bytes], batch: list[tuple[bytes, Received]]) -> None:
        """Store the batch and answer every message in it, or (when the database itself fails)
        none of those not stored yet: the edges resend them, and nothing accepted is lost."""
        if not self._store(sock, batch):
            log.error("database write failed; unanswered messages will be resent by their edges")
            time.sleep(0.5)

    def _store(self, sock: zmq.Socket[bytes], batch: list[tuple[bytes, Received]]) -> bool:
        """Commit and answer batch; when the database refuses it, the two halves in turn, down
        to the message it refuses, which is nacked. False when the database failed by itself
        (nothing more is tried then)."""
        try:
            outcome = self.store.ingest([r for _, r in batch])
        except Exception as exc:
            self.stats.db_errors += 1
            if not _message_fault(exc):
                # Not split: a locked or lost database would only fail (or wait) again per half.
                log.error("database failure: %s", _brief(exc))
                return False
            if len(batch) > 1:
                log.warning("a batch of %d was refused (%s); splitting it", len(batch), _brief(exc))
                half = len(batch) // 2
                return self._store(sock, batch[:half]) and self._store(sock, batch[half:])
            routing_id, r = batch[0]
            reason = _reason(exc)
            log.warning("message %d of %s refused by the database: %s", r.seq, r.edge_id, reason)
            self.stats.rejected += 1
            self._reply(sock, routing_id, wire.KIND_NACK, r, reason)
            return True
        self._answer(sock, batch, outcome)
        return True

    def _answer(
        self, sock: zmq.Socket[bytes], batch: list[tuple[bytes, Received]], outcome: Outcome
    ) -> None:
        s = self.stats
        s.batches += 1
        s.stored += outcome.new
        s.duplicates += len(batch) - outcome.new - len(outcome.refused)
        s.unauthorised += len(outcome.refused)
        for r in outcome.fresh:
            label = r.event.type if r.event.type in self.known_types else OTHER_TYPE
            s.by_type[label] = s.by_type.get(label, 0) + 1
        for routing_id, r in batch:
            reason = outcome.refused.get((r.edge_id, r.seq))
            if reason is None:
                self._reply(sock, routing_id, wire.KIND_ACK, r)
            else:
                self._reply(sock, routing_id, wire.KIND_NACK, r, reason)
        n = len(outcome.refused)
        if n and (s.unauthorised == n or (s.unauthorised - n) // 1000 < s.unauthorised // 1000):
            log.warning(
                "refused messages about other edges' events or cameras (%d so far), e.g. %s",
                s.unauthorised,
                next(iter(outcome.refused.values())),
            )

    @staticmethod
    def _reply(
        sock: zmq.Socket[bytes], routing_id: bytes, kind: bytes, r: Received, reason: str = ""
    ) -> None:
        sock.send_multipart([routing_id, *wire.frames(kind, r.edge_id, r.seq, reason.encode())])
