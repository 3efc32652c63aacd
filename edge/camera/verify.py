"""Verification by camera: does a case's problem still show on a camera's live view?

A ``Look`` watches the results a running CameraChain computes anyway (no second decoder or
detector) for a few seconds and judges each frame against the zone's rule of the case's event
type, as the camera runs it now (the parameters of its current operating mode):

- a count rule (crowding): the frame shows the problem when the rule's classes in the zone
  reach its threshold (min_count, or min_density_per_m2 of a density rule);
- a dwell or left_object rule (parking, street vending, litter): when an object of the rule's
  classes stands in the zone. Presence is enough: the rule's dwell time is not waited for,
  the case already says the object stood there long enough.

The problem is still present when it shows in most frames looked at, else cleared. The frame
that shows it most (or, when cleared, the last frame) is kept for the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from contract.config.rules import CountRuleConfig, RuleConfig
from contract.verify import (
    CLEARED,
    FAILED,
    LOOK_EXTENSION,
    MIN_FRAMES,
    STILL_PRESENT,
    VerifyAnswer,
    VerifyRequest,
)
from edge.camera.chain import CameraChain, FrameResult
from edge.detectors.detections import Detections
from edge.evidence.verify_snapshot import Sight
from edge.pipeline.zones import Zone


class LookError(Exception):
    """The edge cannot judge this request (no such zone or rule); the message says why."""


@dataclass(frozen=True)
class Criterion:
    """What a frame of one zone must show: ``needed`` of the rule's classes in the zone
    (persons per m2 for a density rule)."""

    zone: Zone
    rule: RuleConfig
    class_ids: npt.NDArray[np.int64]
    needed: float
    #: The zone's ground area of a density rule: counts are divided by it.
    area_m2: float | None = None

    def value(self, in_zone: Detections) -> float:
        n = float(len(in_zone))
        return n / self.area_m2 if self.area_m2 else n


def criterion(chain: CameraChain, zone: str, event_type: str) -> Criterion:
    """The zone's rule of ``event_type`` as ``chain`` runs it now; LookError naming what is
    missing otherwise."""
    camera = chain.cfg.id
    names = [z.name for z in chain.cfg.zones]
    if zone not in names:
        raise LookError(
            f"camera '{camera}' has no zone '{zone}' (its zones: {', '.join(names) or 'none'})"
        )
    i = names.index(zone)
    rules = chain.cfg.zones[i].rules
    rule = next((r for r in rules if r.type == event_type), None)
    if rule is None:
        types = ", ".join(sorted({r.type for r in rules})) or "none"
        raise LookError(
            f"zone '{zone}' of camera '{camera}' has no {event_type} rule in mode "
            f"{chain.mode} (its rules: {types})"
        )
    ids = np.asarray([chain.class_names.index(n) for n in rule.classes], np.int64)
    if isinstance(rule, CountRuleConfig):
        area = rule.area_m2
        if rule.min_density_per_m2 is not None:
            needed = rule.min_density_per_m2
        else:
            needed = rule.min_count / area if area else float(rule.min_count)
        return Criterion(chain.zones[i], rule, ids, needed, area)
    return Criterion(chain.zones[i], rule, ids, 1.0)


@dataclass(frozen=True)
class Outcome:
    """A judged (or failed) look: the answer without its snapshot, and the frame to show."""

    answer: VerifyAnswer
    sight: Sight | None
    zone: Zone | None


class Look:
    """One request on one camera: ``observe`` each result of its chain, ``due`` says when it
    has looked long enough, ``outcome`` judges. Raises LookError when the request names a
    zone or rule the camera does not have."""

    def __init__(self, request: VerifyRequest, chain: CameraChain, started_mono_s: float) -> None:
        self.request = request
        self.started_mono_s = started_mono_s
        self._criterion = criterion(chain, request.zone, request.type)
        self._cfg = chain.cfg
        self.mode = chain.mode
        self.frames = 0
        self.present_frames = 0
        self.peak = 0.0
        self._best: Sight | None = None
        self._last: Sight | None = None
        self._lost: str | None = None

    def observe(self, result: FrameResult, chain: CameraChain) -> None:
        if chain.cfg is not self._cfg:  # a push reconfigured the camera: judge the new rule
            self._cfg, self.mode = chain.cfg, chain.mode
            try:
                self._criterion = criterion(chain, self.request.zone, self.request.type)
            except LookError as exc:
                self._lost = f"the camera's config changed while looking: {exc}"
                return
        if self._lost is not None:
            return
        if result.suspended is not None:
            # A covered or turned camera sees nothing; "cleared" would close the case wrongly.
            self._lost = f"the camera's view is {result.suspended} (camera_tamper): it cannot look"
            return
        c = self._criterion
        tracks = result.tracks
        inside = c.zone.contains(tracks.anchor_bottom_center, result.frame.wh)
        counted = tracks[inside & np.isin(tracks.class_id, c.class_ids)]
        sight = Sight(result.frame, tracks, counted, c.value(counted))
        self.frames += 1
        if sight.value >= c.needed:
            self.present_frames += 1
        if self._best is None or sight.value > self._best.value:
            self._best = sight
        self.peak = max(self.peak, sight.value)
        self._last = sight

    def due(self, now_mono_s: float) -> bool:
        """Looked for look_s with MIN_FRAMES frames, or for LOOK_EXTENSION times look_s."""
        looked = now_mono_s - self.started_mono_s
        if self._lost is not None:
            return True
        if looked >= self.request.look_s and self.frames >= MIN_FRAMES:
            return True
        return looked >= self.request.look_s * LOOK_EXTENSION

    def outcome(self, now_mono_s: float) -> Outcome:
        looked = now_mono_s - self.started_mono_s
        if self._lost is not None:
            return failure(self.request, self._lost, looked)
        if self.frames == 0:
            reason = f"no frame from camera '{self.request.camera}' in {looked:.1f} s"
            return failure(self.request, reason, looked)
        still = 2 * self.present_frames > self.frames
        answer = VerifyAnswer(
            request_id=self.request.request_id,
            camera=self.request.camera,
            verdict=STILL_PRESENT if still else CLEARED,
            frames=self.frames,
            present_frames=self.present_frames,
            peak=round(self.peak, 3),
            needed=round(self._criterion.needed, 3),
            rule=self._criterion.rule.name,
            mode=self.mode,
            looked_s=looked,
        )
        return Outcome(answer, self._best if still else self._last, self._criterion.zone)


def failure(request: VerifyRequest, reason: str, looked_s: float = 0.0) -> Outcome:
    """The answer of a request the edge could not judge."""
    answer = VerifyAnswer(
        request.request_id, request.camera, FAILED, reason=reason, looked_s=looked_s
    )
    return Outcome(answer, None, None)
