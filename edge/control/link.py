"""The way between the publisher thread (which hears the aggregator) and the detect stage
(which owns the cameras' chains): pushes and verify requests go one way, reports and verdicts
the other, and both read the box's fleet status."""

from __future__ import annotations

import logging
import queue
import threading

from contract.fleet import ConfigPush, ConfigReport
from contract.verify import VerifyAnswer, VerifyRequest
from edge.control.status import FleetStatus

log = logging.getLogger(__name__)

#: Pushes waiting for the stage. The aggregator sends one per camera and heartbeat at most,
#: so a full queue means the stage is stuck; later pushes are dropped (the aggregator
#: repeats them while the heartbeats show the camera out of line).
MAX_PENDING = 256


class ControlLink:
    def __init__(self, status: FleetStatus, wake: threading.Event | None = None) -> None:
        self.status = status
        self._wake = wake
        self._pushes: queue.Queue[tuple[int, ConfigPush]] = queue.Queue(MAX_PENDING)
        self._reports: queue.SimpleQueue[tuple[int, ConfigReport]] = queue.SimpleQueue()
        self._requests: queue.Queue[VerifyRequest] = queue.Queue(MAX_PENDING)
        self._answers: queue.SimpleQueue[VerifyAnswer] = queue.SimpleQueue()
        self.dropped = 0

    def offer(self, seq: int, push: ConfigPush) -> bool:
        """From the publisher: a decoded push (``seq``: its number, echoed in the report)."""
        try:
            self._pushes.put_nowait((seq, push))
        except queue.Full:
            self.dropped += 1
            log.warning(
                "config push %d for camera %s dropped: %d waiting", seq, push.camera, MAX_PENDING
            )
            return False
        if self._wake is not None:
            self._wake.set()
        return True

    def take(self) -> list[tuple[int, ConfigPush]]:
        """From the stage: every push waiting, oldest first."""
        out = []
        while True:
            try:
                out.append(self._pushes.get_nowait())
            except queue.Empty:
                return out

    def report(self, seq: int, report: ConfigReport) -> None:
        """From the stage: the outcome of push ``seq``, for the publisher to send."""
        self._reports.put((seq, report))

    def reports(self) -> list[tuple[int, ConfigReport]]:
        out = []
        while not self._reports.empty():
            out.append(self._reports.get_nowait())
        return out

    def offer_verify(self, request: VerifyRequest) -> bool:
        """From the publisher: a verify request (the aggregator repeats one it gets no answer
        to, so one dropped here is asked again)."""
        try:
            self._requests.put_nowait(request)
        except queue.Full:
            self.dropped += 1
            log.warning("verify request %s dropped: %d waiting", request.request_id, MAX_PENDING)
            return False
        if self._wake is not None:
            self._wake.set()
        return True

    def take_verify(self) -> list[VerifyRequest]:
        """From the stage: every verify request waiting, oldest first."""
        out = []
        while True:
            try:
                out.append(self._requests.get_nowait())
            except queue.Empty:
                return out

    def answer(self, answer: VerifyAnswer) -> None:
        """From the stage: a verdict, for the publisher to send."""
        self._answers.put(answer)

    def answers(self) -> list[VerifyAnswer]:
        out = []
        while not self._answers.empty():
            out.append(self._answers.get_nowait())
        return out
