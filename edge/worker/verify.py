"""The detect stage's verifications by camera (contract/verify.py): requests come from the
publisher through the control link; each becomes a ``Look`` at its camera's chain results,
which the stage computes anyway; when it has looked long enough the verdict goes back with
the id of a fresh snapshot, which is queued for upload like any evidence.

Runs on the stage's thread only. A repeated request (the aggregator asks again until it hears
an answer; two ingest replicas may both ask) is answered again from the recent answers, or
ignored while its look is still running.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from contract.verify import VerifyAnswer, VerifyRequest
from edge.camera.chain import CameraChain, FrameResult
from edge.camera.verify import Look, LookError, Outcome, failure
from edge.control.link import ControlLink
from edge.evidence.media import MediaItem
from edge.evidence.verify_snapshot import Sight, write_snapshot
from edge.pipeline.zones import Zone

if TYPE_CHECKING:
    from edge.worker.stage import CameraUnit

log = logging.getLogger(__name__)

#: Looks running at once on a box; more are answered as failed (busy) at once.
MAX_LOOKS = 16
#: Answers kept to answer a repeated request again.
MAX_ANSWERED = 64


class Verifier:
    """``media_dir``: where snapshots are written (one folder per camera), None when the box
    uploads no evidence (answers then carry no snapshot); ``on_media`` queues a written one."""

    def __init__(
        self,
        edge_id: str,
        link: ControlLink,
        media_dir: Path | None,
        on_media: Callable[[MediaItem], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.edge_id = edge_id
        self.link = link
        self.media_dir = media_dir
        self._on_media = on_media
        self._clock = clock
        self._looks: dict[str, tuple[Look, str]] = {}  # request id -> (look, camera)
        self._answered: OrderedDict[str, VerifyAnswer] = OrderedDict()

    @property
    def looking(self) -> int:
        return len(self._looks)

    def start(self, units: Mapping[str, CameraUnit]) -> None:
        """Take the waiting requests: start a look, or answer at once when there is nothing
        to look at (the camera is not on this box or offline, no such zone or rule)."""
        for request in self.link.take_verify():
            rid = request.request_id
            if rid in self._looks:
                continue  # a repeat while looking: the answer comes when the look ends
            if rid in self._answered:
                self.link.answer(self._answered[rid])
                continue
            outcome = self._begin(request, units)
            if outcome is not None:
                self._finish(request, outcome, None)

    def _begin(self, request: VerifyRequest, units: Mapping[str, CameraUnit]) -> Outcome | None:
        unit = units.get(request.camera)
        if unit is None:
            reason = f"camera '{request.camera}' is not served by edge box '{self.edge_id}'"
            return failure(request, reason)
        state = unit.feed.state
        if state != "online":
            why = f": {unit.feed.error}" if unit.feed.error else ""
            return failure(request, f"camera '{request.camera}' is {state}{why}")
        if len(self._looks) >= MAX_LOOKS:
            return failure(request, f"edge box '{self.edge_id}' is busy: {MAX_LOOKS} looks run")
        try:
            look = Look(request, unit.chain, self._clock())
        except LookError as exc:
            return failure(request, str(exc))
        self._looks[request.request_id] = (look, request.camera)
        log.info(
            "verifying %s/%s (%s) for %.1f s: request %s",
            request.camera,
            request.zone,
            request.type,
            request.look_s,
            request.request_id,
        )
        return None

    def observe(self, camera: str, result: FrameResult, chain: CameraChain) -> None:
        """A frame of ``camera`` the stage just advanced."""
        for look, cam in self._looks.values():
            if cam == camera:
                look.observe(result, chain)

    def finish_due(self, units: Mapping[str, CameraUnit]) -> None:
        """Judge the looks that have looked long enough, and answer them."""
        now = self._clock()
        for rid, (look, camera) in list(self._looks.items()):
            if not look.due(now):
                continue
            del self._looks[rid]
            unit = units.get(camera)
            self._finish(look.request, look.outcome(now), unit.chain if unit else None)

    def _finish(self, request: VerifyRequest, outcome: Outcome, chain: CameraChain | None) -> None:
        answer = outcome.answer
        sight, zone = outcome.sight, outcome.zone
        if sight is not None and zone is not None and chain is not None:
            answer = replace(answer, snapshot_id=self._snapshot(answer, sight, zone, chain))
        self._answered[request.request_id] = answer
        while len(self._answered) > MAX_ANSWERED:
            self._answered.popitem(last=False)
        self.link.answer(answer)
        log.info(
            "verified %s/%s (%s): %s, %d of %d frames%s",
            request.camera,
            request.zone,
            request.type,
            answer.verdict,
            answer.present_frames,
            answer.frames,
            f" ({answer.reason})" if answer.reason else "",
        )

    def _snapshot(
        self, answer: VerifyAnswer, sight: Sight, zone: Zone, chain: CameraChain
    ) -> str | None:
        """Write and queue the snapshot; its media id, or None (no evidence uploads, or the
        disk refused it: the verdict still goes out)."""
        if self.media_dir is None:
            return None
        try:
            item = write_snapshot(
                sight,
                zone,
                answer,
                chain.class_names,
                chain.cfg.privacy,
                self.media_dir / answer.camera,
            )
        except OSError as exc:
            log.error("verification %s: no snapshot: %s", answer.request_id, exc)
            return None
        self._on_media(item)
        return item.media_id
