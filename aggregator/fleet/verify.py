"""The ingest's side of verification by camera (contract/verify.py).

The API writes a pending row in ``verifications``; every ingest replica reads the pending
ones in a thread of its own (``VerifyDesk``), so the ingest loop never waits on the database.
When an edge's heartbeat arrives, ``due`` names the requests for the cameras bound to that
edge (or bound to none and named in its heartbeat), and the ingest sends them on the
heartbeat's connection: whichever replica holds the edge's connection asks. A request is
sent again every ``RESEND_S`` while no answer is recorded (the edge answers a repeat from its
recent answers), and no more once an answer could no longer arrive in time.

The edges' verdicts (W) are handed to the desk's thread, which writes each to its row and
audits ``verify`` on the case: only a pending row of the same camera, asked less than
``ANSWER_TIMEOUT_S`` ago, answered by the edge the camera is bound to (or any edge while it
is bound to none). Writing is idempotent: a repeated verdict changes nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select, update

from aggregator.auth import User
from aggregator.cameras import owners
from aggregator.db.grid_models import VERIFICATIONS
from aggregator.review import audit
from aggregator.verifications import VERIFY_ACTION
from contract.verify import (
    ANSWER_TIMEOUT_S,
    DEFAULT_LOOK_S,
    LOOK_EXTENSION,
    PENDING,
    VerifyAnswer,
    VerifyRequest,
)

log = logging.getLogger(__name__)

#: How often pending requests are reread, and a request is sent again without an answer.
POLL_S = 0.5
RESEND_S = 3.0
#: Pending requests read at once (the oldest beyond wait for the next read).
MAX_PENDING = 256
#: Verdicts waiting to be written; beyond, new ones are dropped (the edge answers again
#: when asked again).
MAX_ANSWERS = 1024
#: The desk reads only while edges are heard: it sleeps when no heartbeat asked for this long.
IDLE_S = 10.0


@dataclass(frozen=True)
class Pending:
    request: VerifyRequest
    requested_at: float
    #: The edge the camera is bound to; None while bound to nobody.
    owner: str | None


def record_answer(conn: Connection, edge_id: str, answer: VerifyAnswer, now: float) -> bool:
    """Write an edge's verdict to its row and audit it, in conn's transaction; False (and
    nothing written) when it answers no request it may answer."""
    row = conn.execute(
        select(VERIFICATIONS).where(VERIFICATIONS.c.request_id == answer.request_id)
    ).first()
    refusal = None
    if row is None:
        refusal = "no such request"
    elif row.verdict != PENDING:
        return False  # answered already (a repeat, or another replica wrote it)
    elif row.camera != answer.camera:
        refusal = f"it names camera '{answer.camera}', the request '{row.camera}'"
    elif now - row.requested_at > ANSWER_TIMEOUT_S:
        refusal = f"it came {now - row.requested_at:.0f} s after the request: too late"
    elif owners(conn, [row.camera]).get(row.camera, edge_id) != edge_id:
        refusal = f"camera '{row.camera}' belongs to another edge"
    if refusal is not None or row is None:
        log.warning("verdict of %s on %s not taken: %s", edge_id, answer.request_id, refusal)
        return False
    detail = {**answer.detail(), "look_s": (row.detail or {}).get("look_s"), "edge": edge_id}
    done = conn.execute(
        update(VERIFICATIONS)
        .where(VERIFICATIONS.c.id == row.id, VERIFICATIONS.c.verdict == PENDING)
        .values(
            verdict=answer.verdict,
            detail=detail,
            snapshot_id=answer.snapshot_id,
            answered_at=now,
        )
    ).rowcount
    if not done:
        return False
    audit(
        conn,
        # The person who asked; the edge that looked is in the detail.
        User(0, row.requested_by, "viewer"),
        VERIFY_ACTION,
        "case",
        str(row.case_id),
        {
            "request_id": answer.request_id,
            "verdict": answer.verdict,
            "snapshot_id": answer.snapshot_id,
            "edge": edge_id,
            **{k: detail[k] for k in ("frames", "present_frames", "reason") if k in detail},
        },
    )
    return True


def read_pending(conn: Connection, now: float) -> list[Pending]:
    """Pending requests an answer can still come for, with their cameras' owners."""
    v = VERIFICATIONS.c
    rows = conn.execute(
        select(v.request_id, v.camera, v.zone, v.rule_type, v.requested_at, v.detail)
        .where(v.verdict == PENDING, v.requested_at > now - ANSWER_TIMEOUT_S)
        .order_by(v.requested_at)
        .limit(MAX_PENDING)
    ).all()
    bound = owners(conn, {r.camera for r in rows})
    out = []
    for r in rows:
        look_s = float((r.detail or {}).get("look_s") or DEFAULT_LOOK_S)
        if now - r.requested_at > ANSWER_TIMEOUT_S - look_s * LOOK_EXTENSION:
            continue  # an edge asked now could not answer in time
        request = VerifyRequest(r.request_id, r.camera, r.zone, r.rule_type, look_s)
        out.append(Pending(request, float(r.requested_at), bound.get(r.camera)))
    return out


class VerifyDesk:
    """Thread-safe: the ingest thread calls ``due`` and ``answer``; the desk's own thread
    (``start``/``stop``) reads and writes the database."""

    def __init__(
        self,
        engine: Engine,
        poll_s: float = POLL_S,
        clock: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.poll_s = poll_s
        self._clock, self._mono = clock, mono
        self._lock = threading.Lock()
        self._pending: list[Pending] = []
        self._sent: dict[tuple[str, str], float] = {}  # (edge, request id) -> when (mono)
        self._answers: queue.Queue[tuple[str, VerifyAnswer]] = queue.Queue(MAX_ANSWERS)
        self._asked_mono = float("-inf")
        self._failing = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-verify", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def due(self, edge_id: str, cameras: frozenset[str]) -> list[VerifyRequest]:
        """The requests to send to ``edge_id`` now (noted as sent)."""
        now = self._mono()
        out = []
        with self._lock:
            self._asked_mono = now
            for p in self._pending:
                mine = p.owner == edge_id or (p.owner is None and p.request.camera in cameras)
                key = (edge_id, p.request.request_id)
                if not mine or now - self._sent.get(key, float("-inf")) < RESEND_S:
                    continue
                self._sent[key] = now
                out.append(p.request)
        return out

    def answer(self, edge_id: str, answer: VerifyAnswer) -> None:
        """An edge's verdict, for the desk's thread to write."""
        try:
            self._answers.put_nowait((edge_id, answer))
        except queue.Full:
            log.warning(
                "verdict of %s on %s dropped: %d waiting", edge_id, answer.request_id, MAX_ANSWERS
            )
            return
        self._wake.set()

    def refresh(self) -> bool:
        """Write the verdicts waiting, then reread the pending requests (when edges are
        heard); False when the database failed (the verdicts are written on a later try)."""
        answers = []
        while not self._answers.empty():
            answers.append(self._answers.get_nowait())
        now = self._clock()
        try:
            with self.engine.begin() as conn:
                for edge_id, answer in answers:
                    record_answer(conn, edge_id, answer, now)
                active = self._mono() - self._asked_mono < IDLE_S
                pending = read_pending(conn, now) if active else []
        except Exception as exc:
            if not self._failing:
                log.error("verifications not read or written, trying again: %s", exc)
            self._failing = True
            for item in answers:
                try:
                    self._answers.put_nowait(item)
                except queue.Full:
                    break
            return False
        self._failing = False
        ids = {p.request.request_id for p in pending}
        with self._lock:
            self._pending = pending
            # Forget what was sent for requests no longer pending (answered or too old).
            self._sent = {k: t for k, t in self._sent.items() if k[1] in ids}
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self.refresh()
            self._wake.wait(self.poll_s)
