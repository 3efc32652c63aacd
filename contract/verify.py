"""Verification by camera on the wire: the aggregator asks the edge that runs a case's camera
to look at its live view again, and the edge answers whether the problem is still there
(protocol version 1; frames in contract/wire.py, seq 0 both ways).

- V (aggregator -> edge): ``VerifyRequest``: the request id, the camera, the case's zone and
  event type, and how long to look (``look_s``).
- W (edge -> aggregator): ``VerifyAnswer``: the verdict (``still_present``, ``cleared``, or
  ``failed`` with the reason), what the edge saw (frames looked at, frames where the problem
  showed, the most objects seen at once, how many make the problem) and the id of a fresh
  annotated snapshot, uploaded like any evidence (contract/uploads.py; its X-Event-Id is the
  request id).

The aggregator sends a request on the connection an edge's heartbeat came in on, again while
no answer came (an edge treats a repeat as a request for the same answer), and gives up after
``ANSWER_TIMEOUT_S``: the verification then reads as failed, no answer. Payloads are msgpack
maps with short keys and the fleet format ``f``, checked here: a decode error (WireError)
names the field.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any, Literal, get_args

from contract.fleet import FLEET_FORMAT, MAX_ERROR_CHARS, _pack, _text, _unpack, short_error
from contract.wire import (
    MAX_CAMERA_CHARS,
    MAX_MODE_CHARS,
    MAX_RULE_CHARS,
    MAX_TYPE_CHARS,
    MAX_ZONE_CHARS,
    WireError,
)

#: What an edge can answer. ``failed``: it could not look (camera not on the box, offline,
#: no such zone or rule, no frames); the reason says which.
Verdict = Literal["still_present", "cleared", "failed"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
STILL_PRESENT, CLEARED, FAILED = VERDICTS
#: A verification as the aggregator keeps it: waiting for the edge, or answered.
VerificationStatus = Literal["pending", Verdict]
PENDING: Literal["pending"] = "pending"
VERIFICATION_STATUSES: tuple[VerificationStatus, ...] = (PENDING, *VERDICTS)

#: How long an edge looks by default, and the range a request may ask for, in seconds.
DEFAULT_LOOK_S = 5.0
MIN_LOOK_S = 1.0
MAX_LOOK_S = 12.0
#: An edge looks on past look_s (up to this many times it) until it has MIN_FRAMES frames, so
#: a camera detecting at a low rate still gives a judgement of several frames.
LOOK_EXTENSION = 2.0
MIN_FRAMES = 3
#: A request not answered this long after it was made reads as failed (no answer: the edge
#: is offline or does not speak V). Above MAX_LOOK_S * LOOK_EXTENSION, so a slow look fits.
ANSWER_TIMEOUT_S = 30.0
#: Frames one answer can report (a look of MAX_LOOK_S * LOOK_EXTENSION at 400 fps).
MAX_FRAMES = 10_000
#: The most objects (or persons per m2) an answer can report for one frame.
MAX_VALUE = 1e6


@dataclass(frozen=True)
class VerifyRequest:
    request_id: str
    camera: str
    zone: str
    #: The case's event type: the edge judges the zone's rule of this type (in the mode the
    #: camera runs now).
    type: str
    look_s: float = DEFAULT_LOOK_S


@dataclass(frozen=True)
class VerifyAnswer:
    request_id: str
    camera: str
    verdict: Verdict
    #: Frames looked at, and of those the frames where the problem showed.
    frames: int = 0
    present_frames: int = 0
    #: The most objects of the rule's classes in the zone in one frame (persons per m2 for a
    #: density rule), and how many make the problem (a count rule's min_count; 1 otherwise).
    peak: float | None = None
    needed: float | None = None
    #: The rule judged and the mode the camera ran it under.
    rule: str | None = None
    mode: str | None = None
    looked_s: float = 0.0
    #: Why the edge could not look (``failed`` only).
    reason: str | None = None
    snapshot_id: str | None = None

    def detail(self) -> dict[str, Any]:
        """What the aggregator keeps with the verdict (JSON types), without the ids."""
        out: dict[str, Any] = {
            "frames": self.frames,
            "present_frames": self.present_frames,
            "peak": self.peak,
            "needed": self.needed,
            "rule": self.rule,
            "mode": self.mode,
            "looked_s": round(self.looked_s, 2),
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def _uuid(v: Any, what: str) -> str:
    if not isinstance(v, bytes) or len(v) != 16:
        raise WireError(f"{what} must be 16 bytes (a UUID)")
    return str(uuid.UUID(bytes=v))


def _number(v: Any, what: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise WireError(f"{what} must be a finite number from {lo:g} to {hi:g}")
    if not lo <= v <= hi:
        raise WireError(f"{what} must be a finite number from {lo:g} to {hi:g}")
    return float(v)


def _count(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_FRAMES:
        raise WireError(f"{what} must be an integer from 0 to {MAX_FRAMES}")
    return v


def _optional(v: Any, what: str, max_chars: int) -> str | None:
    return None if v is None else _text(v, what, max_chars)


# --- V: verify request --------------------------------------------------------------------


def encode_request(req: VerifyRequest) -> bytes:
    body = {
        "f": FLEET_FORMAT,
        "i": uuid.UUID(req.request_id).bytes,
        "c": req.camera,
        "z": req.zone,
        "t": req.type,
        "l": req.look_s,
    }
    return _pack(body, "verify request")


_REQUEST_KEYS = frozenset({"f", "i", "c", "z", "t", "l"})


def decode_request(payload: bytes) -> VerifyRequest:
    """Validate a V payload; WireError names the field that is wrong."""
    d = _unpack(payload, "verify request", _REQUEST_KEYS)
    return VerifyRequest(
        request_id=_uuid(d.get("i"), "verify request id"),
        camera=_text(d.get("c"), "camera", MAX_CAMERA_CHARS),
        zone=_text(d.get("z"), "zone", MAX_ZONE_CHARS),
        type=_text(d.get("t"), "event type", MAX_TYPE_CHARS),
        look_s=_number(d.get("l", DEFAULT_LOOK_S), "look_s", MIN_LOOK_S, MAX_LOOK_S),
    )


# --- W: verdict ---------------------------------------------------------------------------


def encode_answer(a: VerifyAnswer) -> bytes:
    body = {
        "f": FLEET_FORMAT,
        "i": uuid.UUID(a.request_id).bytes,
        "c": a.camera,
        "v": a.verdict,
        "fr": a.frames,
        "pr": a.present_frames,
        "pk": a.peak,
        "nd": a.needed,
        "r": a.rule,
        "o": a.mode,
        "d": round(a.looked_s, 3),
        "e": None if a.reason is None else short_error(a.reason),
        "n": None if a.snapshot_id is None else uuid.UUID(a.snapshot_id).bytes,
    }
    return _pack(body, "verdict")


_ANSWER_KEYS = frozenset({"f", "i", "c", "v", "fr", "pr", "pk", "nd", "r", "o", "d", "e", "n"})


def _value(v: Any, what: str) -> float | None:
    return None if v is None else _number(v, what, 0.0, MAX_VALUE)


def decode_answer(payload: bytes) -> VerifyAnswer:
    """Validate a W payload; WireError names the field that is wrong. A failed verdict
    carries its reason; a judged one (still present, cleared) at least one frame."""
    d = _unpack(payload, "verdict", _ANSWER_KEYS)
    verdict = d.get("v")
    if verdict not in VERDICTS:
        raise WireError(f"verdict must be one of {', '.join(VERDICTS)}")
    frames = _count(d.get("fr", 0), "verdict frames")
    present = _count(d.get("pr", 0), "verdict present frames")
    if present > frames:
        raise WireError("verdict present frames must not exceed its frames")
    reason = d.get("e")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_ERROR_CHARS):
        raise WireError(f"verdict reason must be text of at most {MAX_ERROR_CHARS} characters")
    if verdict == FAILED and not reason:
        raise WireError("a failed verdict must say why (reason)")
    if verdict != FAILED and frames == 0:
        raise WireError(f"a {verdict} verdict must have looked at one frame or more")
    snapshot = d.get("n")
    return VerifyAnswer(
        request_id=_uuid(d.get("i"), "verdict request id"),
        camera=_text(d.get("c"), "camera", MAX_CAMERA_CHARS),
        verdict=verdict,
        frames=frames,
        present_frames=present,
        peak=_value(d.get("pk"), "verdict peak"),
        needed=_value(d.get("nd"), "verdict needed"),
        rule=_optional(d.get("r"), "verdict rule", MAX_RULE_CHARS),
        mode=_optional(d.get("o"), "verdict mode", MAX_MODE_CHARS),
        looked_s=_number(d.get("d", 0.0), "verdict looked_s", 0.0, ANSWER_TIMEOUT_S),
        reason=reason,
        snapshot_id=None if snapshot is None else _uuid(snapshot, "verdict snapshot id"),
    )
