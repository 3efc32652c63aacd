"""The wire contract between edge boxes and the aggregator (protocol version 1).

Both sides import this module; docs/protocol.md describes the same thing for other
implementations. One ZeroMQ multipart message per lifecycle event, DEALER (edge) to ROUTER
(aggregator), encrypted with CurveZMQ. Frames, after the ROUTER's routing id:

    [b"SW", version:1 byte, kind:1 byte, edge_id:utf-8, seq:8 bytes big-endian, payload]

kind E: event, payload msgpack (below). A: ack of seq. N: negative ack of seq, payload the
reason (utf-8). H: heartbeat (either way), seq 0; from an edge its payload is its fleet status
(contract/fleet.py), from the aggregator empty. C: a camera's config and operating mode, from
the aggregator (seq: the push's number). R: the edge's report on a push (same seq): applied,
or refused and rolled back. contract/fleet.py has the C, R and H payloads. V: a request to
verify a case on a camera's live view, from the aggregator (seq 0); W: the edge's verdict on it
(seq 0; the payload names the request). contract/verify.py has the V and W payloads.
The edge id frame must equal the id the aggregator authenticated from the CURVE key; the
payload never names the edge.
"""

from __future__ import annotations

import math
import re
import struct
import uuid
from dataclasses import dataclass
from typing import Any

import msgpack

from contract.vocabulary import PEACETIME, PHASES, SEVERITIES, Phase, Severity

MAGIC = b"SW"
VERSION = 1
KIND_EVENT, KIND_ACK, KIND_NACK, KIND_HEARTBEAT = b"E", b"A", b"N", b"H"
KIND_CONFIG, KIND_REPORT = b"C", b"R"
KIND_VERIFY, KIND_VERDICT = b"V", b"W"
KINDS = {
    KIND_EVENT,
    KIND_ACK,
    KIND_NACK,
    KIND_HEARTBEAT,
    KIND_CONFIG,
    KIND_REPORT,
    KIND_VERIFY,
    KIND_VERDICT,
}
#: The protocol's frame count (the ROUTER sees its routing id in front of them).
FRAMES = 6
#: The largest payload, which is the largest frame of any legal message.
MAX_PAYLOAD_BYTES = 16 * 1024
#: Sequence numbers fit a signed 64-bit column (an edge outbox's SQLite INTEGER key is one).
MAX_SEQ = 2**63 - 1
#: Longest text of each field, in characters. The aggregator's columns have these sizes
#: (aggregator/db/models.py uses these names), so anything decoded here can be stored.
MAX_EDGE_ID_CHARS = 64
MAX_TYPE_CHARS = 64
MAX_CAMERA_CHARS = 64
MAX_ZONE_CHARS = 64
MAX_RULE_CHARS = 64
MAX_UNIT_CHARS = 32
MAX_STAGE_CHARS = 64
MAX_LABEL_CHARS = 64
MAX_MODE_CHARS = 32
#: The longest of the texts above.
MAX_TEXT = 64
MAX_BOXES = 64
#: Box corners are frame pixels: a signed 32-bit range is far beyond any camera.
MAX_BOX_COORD = 2**31 - 1
#: C0 and C1 control characters (NUL among them): no id, name or label has a use for them,
#: PostgreSQL text cannot hold NUL, and they garble logs and the review UI.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class WireError(ValueError):
    """A frame or payload that does not follow the contract; the message says what."""


@dataclass(frozen=True)
class Envelope:
    kind: bytes
    edge_id: str
    seq: int
    payload: bytes


@dataclass(frozen=True)
class WireEvent:
    """An event as it travels: what the aggregator stores, nothing about the edge."""

    event_id: str
    type: str
    phase: Phase
    camera: str
    zone: str
    rule: str
    ts: float
    started_ts: float
    value: float
    unit: str
    severity: Severity
    boxes: tuple[tuple[int, int, int, int], ...]
    labels: tuple[str, ...]
    stage: str | None
    peak: float | None
    created_wall: float  # Unix time the edge created the message, for end-to-end latency
    clip_id: str | None = None  # evidence uploaded separately over HTTP
    snapshot_id: str | None = None
    #: The operating mode the event was raised under, and whether that mode is a drill.
    mode: str = PEACETIME
    drill: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "phase": self.phase,
            "camera": self.camera,
            "zone": self.zone,
            "rule": self.rule,
            "ts": self.ts,
            "started_ts": self.started_ts,
            "value": self.value,
            "unit": self.unit,
            "severity": self.severity,
            "boxes": [list(b) for b in self.boxes],
            "labels": list(self.labels),
            "stage": self.stage,
            "peak": self.peak,
            "created_wall": self.created_wall,
            "clip_id": self.clip_id,
            "snapshot_id": self.snapshot_id,
            "mode": self.mode,
            "drill": self.drill,
        }


def frames(kind: bytes, edge_id: str, seq: int, payload: bytes = b"") -> list[bytes]:
    return [MAGIC, bytes([VERSION]), kind, edge_id.encode(), struct.pack(">Q", seq), payload]


def parse(parts: list[bytes]) -> Envelope:
    """Check the envelope; raise WireError naming the first thing wrong."""
    if len(parts) != FRAMES:
        raise WireError(f"expected {FRAMES} frames, got {len(parts)}")
    magic, version, kind, edge_id, seq, payload = parts
    if magic != MAGIC:
        raise WireError("not a Streetwatch message (bad magic)")
    if version != bytes([VERSION]):
        raise WireError(f"unsupported protocol version {version!r}, this side speaks {VERSION}")
    if kind not in KINDS:
        raise WireError(f"unknown message kind {kind!r}")
    if len(seq) != 8:
        raise WireError("sequence frame must be 8 bytes")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise WireError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        eid = edge_id.decode()
    except UnicodeDecodeError:
        raise WireError("edge id is not UTF-8") from None
    _check_text(eid, "edge id", MAX_EDGE_ID_CHARS)
    number: int = struct.unpack(">Q", seq)[0]
    if number > MAX_SEQ:
        raise WireError(
            f"sequence number {_power_of_two(number)} is over 2^63-1 (a signed 64-bit integer)"
        )
    return Envelope(kind, eid, number, payload)


def _power_of_two(n: int) -> str:
    """n as written in errors: 2^63 and 2^64-1 read better than their 19 or 20 digits."""
    for k in (63, 64):
        if n == 2**k:
            return f"2^{k}"
        if n == 2**k - 1:
            return f"2^{k}-1"
    return str(n)


def _check_text(v: str, what: str, max_chars: int) -> str:
    if not v or len(v) > max_chars:
        raise WireError(f"{what} must be text of 1..{max_chars} characters")
    if _CONTROL.search(v):
        raise WireError(f"{what} must not contain control characters")
    return v


def encode_event(ev: WireEvent) -> bytes:
    body = {
        "i": uuid.UUID(ev.event_id).bytes,
        "t": ev.type,
        "p": PHASES.index(ev.phase),
        "c": ev.camera,
        "z": ev.zone,
        "r": ev.rule,
        "ts": ev.ts,
        "st": ev.started_ts,
        "v": ev.value,
        "u": ev.unit,
        "s": SEVERITIES.index(ev.severity),
        "b": [list(b) for b in ev.boxes],
        "l": list(ev.labels),
        "w": ev.created_wall,
    }
    if ev.stage is not None:
        body["g"] = ev.stage
    if ev.peak is not None:
        body["k"] = ev.peak
    if ev.clip_id is not None:
        body["m"] = uuid.UUID(ev.clip_id).bytes
    if ev.snapshot_id is not None:
        body["n"] = uuid.UUID(ev.snapshot_id).bytes
    if ev.mode != PEACETIME:
        body["o"] = ev.mode
    if ev.drill:
        body["x"] = True
    out: bytes = msgpack.packb(body, use_bin_type=True)
    return out


def _text(
    d: dict[str, Any], key: str, what: str, max_chars: int, optional: bool = False
) -> str | None:
    v = d.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, str):
        raise WireError(f"{what} must be text of 1..{max_chars} characters")
    return _check_text(v, what, max_chars)


def _num(d: dict[str, Any], key: str, what: str, optional: bool = False) -> float | None:
    v = d.get(key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise WireError(f"{what} must be a finite number")
    return float(v)


_KEYS = frozenset(
    {
        "i",
        "t",
        "p",
        "c",
        "z",
        "r",
        "ts",
        "st",
        "v",
        "u",
        "s",
        "b",
        "l",
        "g",
        "k",
        "w",
        "m",
        "n",
        "o",
        "x",
    }
)


def _index(d: dict[str, Any], key: str, size: int, message: str) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < size:
        raise WireError(message)
    return v


def _boxes(d: dict[str, Any]) -> tuple[tuple[int, int, int, int], ...]:
    boxes = d.get("b", [])
    if (
        not isinstance(boxes, list)
        or len(boxes) > MAX_BOXES
        or not all(
            isinstance(b, list)
            and len(b) == 4
            and all(
                isinstance(x, int) and not isinstance(x, bool) and abs(x) <= MAX_BOX_COORD
                for x in b
            )
            for b in boxes
        )
    ):
        raise WireError(f"boxes must be at most {MAX_BOXES} lists of 4 integers of -2^31+1..2^31-1")
    return tuple((b[0], b[1], b[2], b[3]) for b in boxes)


def _labels(d: dict[str, Any]) -> tuple[str, ...]:
    labels = d.get("l", [])
    if (
        not isinstance(labels, list)
        or len(labels) > MAX_BOXES
        or not all(
            isinstance(x, str) and len(x) <= MAX_LABEL_CHARS and not _CONTROL.search(x)
            for x in labels
        )
    ):
        raise WireError(
            f"labels must be a list of at most {MAX_BOXES} texts of up to {MAX_LABEL_CHARS} "
            "characters without control characters"
        )
    return tuple(labels)


def _uuid(d: dict[str, Any], key: str, what: str) -> str | None:
    raw = d.get(key)
    if raw is None:
        return None
    if not isinstance(raw, bytes) or len(raw) != 16:
        raise WireError(f"{what} must be 16 bytes (a UUID)")
    return str(uuid.UUID(bytes=raw))


def decode_event(payload: bytes) -> WireEvent:
    """Validate and decode an event payload; WireError names the bad field. Whatever passes
    fits the aggregator's columns (text sizes, no control characters, finite numbers)."""
    try:
        d = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several types for garbage
        raise WireError(f"payload is not msgpack ({type(exc).__name__})") from None
    if not isinstance(d, dict):
        raise WireError("payload must be a msgpack map")
    if not isinstance(d.get("i"), bytes) or len(d["i"]) != 16:
        raise WireError("event id must be 16 bytes (a UUID)")
    phase = _index(d, "p", len(PHASES), "phase must be 0 (start), 1 (update) or 2 (end)")
    sev = _index(d, "s", len(SEVERITIES), "severity must be 0 (low), 1 (medium) or 2 (high)")
    boxes, labels = _boxes(d), _labels(d)
    clip_id, snapshot_id = _uuid(d, "m", "clip id"), _uuid(d, "n", "snapshot id")
    extra = set(d) - _KEYS
    if extra:
        raise WireError(f"unknown payload keys {sorted(map(str, extra))}")
    drill = d.get("x", False)
    if not isinstance(drill, bool):
        raise WireError("drill must be true or false")
    return WireEvent(
        event_id=str(uuid.UUID(bytes=d["i"])),
        type=str(_text(d, "t", "type", MAX_TYPE_CHARS)),
        phase=PHASES[phase],
        camera=str(_text(d, "c", "camera", MAX_CAMERA_CHARS)),
        zone=str(_text(d, "z", "zone", MAX_ZONE_CHARS)),
        rule=str(_text(d, "r", "rule", MAX_RULE_CHARS)),
        ts=float(_num(d, "ts", "ts") or 0.0),
        started_ts=float(_num(d, "st", "started_ts") or 0.0),
        value=float(_num(d, "v", "value") or 0.0),
        unit=str(_text(d, "u", "unit", MAX_UNIT_CHARS)),
        severity=SEVERITIES[sev],
        boxes=boxes,
        labels=labels,
        stage=_text(d, "g", "stage", MAX_STAGE_CHARS, optional=True),
        peak=_num(d, "k", "peak", optional=True),
        created_wall=float(_num(d, "w", "created_wall") or 0.0),
        clip_id=clip_id,
        snapshot_id=snapshot_id,
        mode=str(_text(d, "o", "mode", MAX_MODE_CHARS, optional=True) or PEACETIME),
        drill=drill,
    )
