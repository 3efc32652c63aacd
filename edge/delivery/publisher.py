"""Send the outbox to the aggregator: DEALER over CurveZMQ, bounded in flight, resent with
backoff until acknowledged, rejected messages moved to the dead-letter table.

The same connection carries fleet control (contract/fleet.py): every heartbeat reports the
box's fleet status, config pushes (C) are handed to the detect stage and its reports (R) go
back with the push's number; so do verify requests (V) and the stage's verdicts (W,
contract/verify.py)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass

import zmq

from contract import fleet, verify, wire
from contract.keys import load_pair, load_public
from edge.config.edge_box import EdgeBoxConfig
from edge.control.link import ControlLink
from edge.control.status import software_version
from edge.delivery.outbox import Outbox

log = logging.getLogger(__name__)

STATUS_KEY = "publisher_status"


@dataclass
class PublisherStats:
    connected: bool = False
    sent: int = 0
    acked: int = 0
    resends: int = 0
    rejected: int = 0
    malformed_replies: int = 0
    #: Config pushes that did not decode (dropped), received, and reports sent.
    malformed_pushes: int = 0
    pushes: int = 0
    reports: int = 0
    #: Verify requests received (malformed ones among them) and verdicts sent.
    verify_requests: int = 0
    malformed_verify: int = 0
    verdicts: int = 0
    in_flight: int = 0
    depth: int = 0
    last_heard_wall: float = 0.0


class Publisher:
    def __init__(
        self,
        cfg: EdgeBoxConfig,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        control: ControlLink | None = None,
    ) -> None:
        """``control``: where pushes go and reports and the fleet status come from; None in
        a process that serves no cameras (replay, loadgen), which reports none."""
        self.cfg = cfg
        self.control = control
        self._software = control.status.software if control else software_version()
        self.link = cfg.aggregator
        self._ctx = context or zmq.Context.instance()
        self._server_key = load_public(self.link.server_public_key)
        self._public, self._secret = load_pair(self.link.secret_key)
        self.stats = PublisherStats()

    def _socket(self) -> zmq.Socket[bytes]:
        s = self._ctx.socket(zmq.DEALER)
        s.curve_secretkey = self._secret
        s.curve_publickey = self._public
        s.curve_serverkey = self._server_key
        s.setsockopt(zmq.IMMEDIATE, 1)  # never queue messages for a peer that is not there
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RECONNECT_IVL, 200)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)
        # ZMTP pings: a replica that vanished without closing its connections (its machine
        # lost power) is dropped from the round-robin within seconds, not at TCP's timeout.
        s.setsockopt(zmq.HEARTBEAT_IVL, 1000)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
        s.setsockopt(zmq.SNDHWM, self.link.max_in_flight * 4)
        # One DEALER connected to every ingest replica: libzmq sends round-robin over the
        # peers that are connected (IMMEDIATE keeps messages off those that are not), and
        # each reply comes back over the connection its message went out on. A message lost
        # with a replica is resent after ack_timeout_s; the shared store makes that idempotent.
        for endpoint in self.link.ingest_endpoints:
            s.connect(endpoint)
        return s

    def _backoff_s(self, attempts: int) -> float:
        return float(min(self.link.max_backoff_s, self.link.ack_timeout_s * 2 ** min(attempts, 10)))

    def _beat(self, depth: int) -> fleet.Heartbeat:
        if self.control is not None:
            return self.control.status.heartbeat(depth)
        return fleet.Heartbeat(depth, self._software, self.cfg.fleet.source)

    def _on_push(self, env: wire.Envelope) -> None:
        try:
            push = fleet.decode_push(env.payload)
        except wire.WireError as exc:
            self.stats.malformed_pushes += 1
            log.warning("malformed config push %d from the aggregator, dropped: %s", env.seq, exc)
            return
        self.stats.pushes += 1
        if self.control is None:
            log.warning(
                "config push %d for camera %s ignored: this process serves no cameras",
                env.seq,
                push.camera,
            )
            return
        self.control.offer(env.seq, push)

    def _on_verify(self, env: wire.Envelope) -> None:
        self.stats.verify_requests += 1
        try:
            request = verify.decode_request(env.payload)
        except wire.WireError as exc:
            self.stats.malformed_verify += 1
            log.warning("malformed verify request from the aggregator, dropped: %s", exc)
            return
        if self.control is None:
            log.warning("verify request %s ignored: no cameras here", request.request_id)
            return
        self.control.offer_verify(request)

    def _send_verdicts(self, sock: zmq.Socket[bytes]) -> None:
        if self.control is None:
            return
        for answer in self.control.answers():
            body = verify.encode_answer(answer)
            try:
                sock.send_multipart(
                    wire.frames(wire.KIND_VERDICT, self.cfg.edge_id, 0, body), zmq.NOBLOCK
                )
                self.stats.verdicts += 1
            except zmq.Again:
                # The aggregator asks again while it has no answer; the stage answers a
                # repeat from its recent answers.
                log.info("verdict on %s not sent: not connected", answer.request_id)

    def _send_reports(self, sock: zmq.Socket[bytes]) -> None:
        if self.control is None:
            return
        for seq, report in self.control.reports():
            msg = wire.frames(wire.KIND_REPORT, self.cfg.edge_id, seq, fleet.encode_report(report))
            try:
                sock.send_multipart(msg, zmq.NOBLOCK)
                self.stats.reports += 1
            except zmq.Again:
                # Not connected: the aggregator repeats the push while heartbeats show the
                # camera out of line, and a repeat is answered at once.
                log.info("report on push %d not sent: the aggregator is not connected", seq)

    def run(self, stop: threading.Event) -> None:
        outbox = Outbox(self.cfg.outbox.path, self.cfg.outbox.max_rows)
        sock = self._socket()
        edge_id = self.cfg.edge_id
        in_flight: dict[int, float] = {}  # seq -> ack deadline (monotonic)
        retry_at: dict[int, float] = {}
        attempts: dict[int, int] = {}
        last_hb = 0.0
        last_heard = 0.0
        last_status = 0.0
        socket_since = time.monotonic()
        # libzmq stops retrying after the server refuses our key; a fresh socket tries again
        # (the operator may have registered the key since).
        renew_after_s = max(5.0, 5 * self.link.heartbeat_s)
        try:
            while not stop.is_set():
                now = time.monotonic()
                acked: list[int] = []
                while sock.poll(20 if not acked else 0):
                    try:
                        env = wire.parse(sock.recv_multipart())
                    except wire.WireError as exc:
                        self.stats.malformed_replies += 1
                        log.warning("malformed reply from aggregator: %s", exc)
                        continue
                    last_heard = time.monotonic()
                    if env.kind == wire.KIND_ACK:
                        acked.append(env.seq)
                    elif env.kind == wire.KIND_NACK:
                        reason = env.payload.decode(errors="replace")
                        log.error("aggregator rejected message %d: %s", env.seq, reason)
                        outbox.dead_letter(env.seq, reason)
                        self.stats.rejected += 1
                        in_flight.pop(env.seq, None)
                        retry_at.pop(env.seq, None)
                    elif env.kind == wire.KIND_CONFIG:
                        self._on_push(env)
                    elif env.kind == wire.KIND_VERIFY:
                        self._on_verify(env)
                self._send_reports(sock)
                self._send_verdicts(sock)
                if acked:
                    outbox.ack(acked)
                    self.stats.acked += len(acked)
                    for s in acked:
                        in_flight.pop(s, None)
                        retry_at.pop(s, None)
                        attempts.pop(s, None)
                now = time.monotonic()
                for s, deadline in list(in_flight.items()):
                    if now > deadline:
                        del in_flight[s]
                        retry_at[s] = (
                            now + self._backoff_s(attempts.get(s, 1)) - self.link.ack_timeout_s
                        )
                        self.stats.resends += 1
                room = self.link.max_in_flight - len(in_flight)
                if room > 0:
                    waiting = {s for s, t in retry_at.items() if t > now}
                    for p in outbox.pending(0, room, exclude=set(in_flight) | waiting):
                        if len(p.payload) > wire.MAX_PAYLOAD_BYTES:
                            # The aggregator's transport would drop the connection at such a
                            # frame, on every resend: never send it.
                            reason = (
                                f"payload of {len(p.payload)} bytes exceeds the protocol's "
                                f"{wire.MAX_PAYLOAD_BYTES}; not sent"
                            )
                            log.error("message %d: %s", p.seq, reason)
                            outbox.dead_letter(p.seq, reason)
                            self.stats.rejected += 1
                            continue
                        try:
                            sock.send_multipart(
                                wire.frames(wire.KIND_EVENT, edge_id, p.seq, p.payload), zmq.NOBLOCK
                            )
                        except zmq.Again:
                            break  # not connected: IMMEDIATE refuses to queue
                        in_flight[p.seq] = now + self.link.ack_timeout_s
                        attempts[p.seq] = attempts.get(p.seq, 0) + 1
                        retry_at.pop(p.seq, None)
                        self.stats.sent += 1
                if now - last_hb >= self.link.heartbeat_s:
                    last_hb = now
                    depth = outbox.depth()
                    self.stats.depth = depth
                    beat = wire.frames(
                        wire.KIND_HEARTBEAT, edge_id, 0, fleet.encode_heartbeat(self._beat(depth))
                    )
                    with contextlib.suppress(zmq.Again):  # not connected: skip this beat
                        sock.send_multipart(beat, zmq.NOBLOCK)
                connected = time.monotonic() - last_heard < 3 * self.link.heartbeat_s
                quiet_since = max(last_heard, socket_since)
                if not connected and time.monotonic() - quiet_since > renew_after_s:
                    sock.close(0)
                    sock = self._socket()
                    socket_since = time.monotonic()
                    for s in in_flight:
                        retry_at[s] = 0.0  # resend at once on the new connection
                    in_flight.clear()
                if connected != self.stats.connected:
                    log.info(
                        "aggregator %s: %s",
                        " ".join(self.link.ingest_endpoints),
                        "connected" if connected else "disconnected",
                    )
                self.stats.connected = connected
                self.stats.in_flight = len(in_flight)
                if now - last_status >= 1.0:
                    last_status = now
                    self.stats.last_heard_wall = (
                        time.time() - (time.monotonic() - last_heard) if last_heard else 0.0
                    )
                    outbox.set_meta({STATUS_KEY: json.dumps(asdict(self.stats))})
        finally:
            sock.close(0)
            outbox.set_meta({STATUS_KEY: json.dumps({**asdict(self.stats), "connected": False})})
            outbox.close()
