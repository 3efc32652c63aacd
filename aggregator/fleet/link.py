"""The ingest's side of fleet control: what it does with an edge's heartbeats, reports and
verdicts.

The ingest thread calls ``on_heartbeat``, ``verify_requests``, ``on_report`` and
``on_verdict`` and sends what they return; the database is read by the desired cache's and the
verify desk's own threads and written by the replica's beacon and the verify desk, so no call
waits on it.
"""

from __future__ import annotations

import logging
import random
import time

from sqlalchemy import Engine

from aggregator.core.fleet_config import FleetConfig, ModesConfig
from aggregator.fleet.desired import DesiredCache
from aggregator.fleet.inventory import FleetInbox
from aggregator.fleet.reconcile import Reconciler
from aggregator.fleet.verify import VerifyDesk
from contract import fleet, verify, wire

log = logging.getLogger(__name__)


class FleetLink:
    def __init__(self, engine: Engine, fleet_cfg: FleetConfig, modes: ModesConfig) -> None:
        self.desired = DesiredCache(engine, modes, fleet_cfg.desired_refresh_s)
        self.reconciler = Reconciler(fleet_cfg.push_retry_s)
        #: Heartbeats and config reports for the replica's beacon to write.
        self.inbox = FleetInbox()
        #: Verification by camera: pending requests out, the edges' verdicts in.
        self.verify = VerifyDesk(engine)
        # Reports are matched to pushes by (edge, camera, state); the push number is for logs,
        # and a random start keeps replicas' numbers apart.
        self._push_number = random.getrandbits(32)

    def start(self) -> None:
        self.desired.start()
        self.verify.start()

    def stop(self) -> None:
        self.desired.stop()
        self.verify.stop()

    def on_heartbeat(self, edge_id: str, hb: fleet.Heartbeat) -> list[list[bytes]]:
        """Note what the edge says; the C messages (frames) that bring each of its cameras
        to its desired state, if any is due."""
        self.inbox.heartbeat(edge_id, hb, time.time())
        self.desired.watch(edge_id, frozenset(c.camera for c in hb.cameras))
        outlook = self.desired.outlook()
        messages = []
        for push in self.reconciler.on_heartbeat(edge_id, hb, outlook, time.monotonic()):
            try:
                body = fleet.encode_push(push)
            except wire.WireError as exc:  # refused where configs are saved: a last guard
                log.error("config push to %s not sent: %s", edge_id, exc)
                continue
            self._push_number = (self._push_number + 1) % wire.MAX_SEQ
            messages.append(wire.frames(wire.KIND_CONFIG, edge_id, self._push_number, body))
        return messages

    def on_report(self, edge_id: str, seq: int, report: fleet.ConfigReport) -> bool:
        """Note a report for the beacon (applied; or refused, and not pushed again). False
        when it answers no push in flight (superseded, or sent by another replica): ignored,
        the edge's heartbeats tell what it runs."""
        if not self.reconciler.on_report(edge_id, report):
            log.debug("report %d of %s (%s) answers no push in flight", seq, edge_id, report)
            return False
        if not report.ok:
            log.warning("edge %s refused %s: %s", edge_id, report.applied, report.error)
        self.inbox.report(edge_id, report, time.time())
        return True

    def verify_requests(self, edge_id: str, hb: fleet.Heartbeat) -> list[list[bytes]]:
        """The V messages (frames) due to this edge: pending verifications of its cameras."""
        due = self.verify.due(edge_id, frozenset(c.camera for c in hb.cameras))
        return [wire.frames(wire.KIND_VERIFY, edge_id, 0, verify.encode_request(r)) for r in due]

    def on_verdict(self, edge_id: str, payload: bytes) -> bool:
        """An edge's verdict, for the verify desk to write; False when it does not decode."""
        try:
            answer = verify.decode_answer(payload)
        except wire.WireError as exc:
            log.warning("malformed verdict from %s: %s", edge_id, exc)
            return False
        self.verify.answer(edge_id, answer)
        return True
