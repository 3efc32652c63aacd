"""The wire contract between edge boxes and the aggregator (protocol version 1).

Both sides import this module; docs/protocol.md describes the same thing for other
implementations. One ZeroMQ multipart message per lifecycle event, DEALER (edge) to ROUTER
(aggregator), encrypted with CurveZMQ. Frames, after the ROUTER's routing id:

    [b"SW", version:1 byte, kind:1 byte, edge_id:utf-8, seq:8 bytes big-endian, payload]

kind E: event, payload msgpack (below). A: ack of seq. N: negative ack of seq, payload the
reason (utf-8). H: heartbeat (either way), seq 0, payload msgpack {depth} or empty.
The edge id frame must equal the id the aggregator authenticated from the CURVE key; the
payload never names the edge.
"""

from __future__ import annotations

import math
import struct
import uuid
from dataclasses import dataclass
from typing import Any

import msgpack

from contract.vocabulary import PHASES, SEVERITIES, Phase, Severity

MAGIC = b"SW"
VERSION = 1
KIND_EVENT, KIND_ACK, KIND_NACK, KIND_HEARTBEAT = b"E", b"A", b"N", b"H"
KINDS = {KIND_EVENT, KIND_ACK, KIND_NACK, KIND_HEARTBEAT}
MAX_PAYLOAD_BYTES = 16 * 1024
MAX_TEXT = 64
MAX_BOXES = 64


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
        }


def frames(kind: bytes, edge_id: str, seq: int, payload: bytes = b"") -> list[bytes]:
    return [MAGIC, bytes([VERSION]), kind, edge_id.encode(), struct.pack(">Q", seq), payload]


def parse(parts: list[bytes]) -> Envelope:
    """Check the envelope; raise WireError naming the first thing wrong."""
    if len(parts) != 6:
        raise WireError(f"expected 6 frames, got {len(parts)}")
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
    return Envelope(kind, eid, struct.unpack(">Q", seq)[0], payload)


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
    out: bytes = msgpack.packb(body, use_bin_type=True)
    return out


def _text(d: dict[str, Any], key: str, what: str, optional: bool = False) -> str | None:
    v = d.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, str) or not v or len(v) > MAX_TEXT:
        raise WireError(f"{what} must be text of 1..{MAX_TEXT} characters")
    return v


def _num(d: dict[str, Any], key: str, what: str, optional: bool = False) -> float | None:
    v = d.get(key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise WireError(f"{what} must be a finite number")
    return float(v)


def decode_event(payload: bytes) -> WireEvent:
    """Validate and decode an event payload; WireError names the bad field."""
    try:
        d = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several types for garbage
        raise WireError(f"payload is not msgpack ({type(exc).__name__})") from None
    if not isinstance(d, dict):
        raise WireError("payload must be a msgpack map")
    raw_id = d.get("i")
    if not isinstance(raw_id, bytes) or len(raw_id) != 16:
        raise WireError("event id must be 16 bytes (a UUID)")
    phase = d.get("p")
    if not isinstance(phase, int) or isinstance(phase, bool) or not 0 <= phase < len(PHASES):
        raise WireError("phase must be 0 (start), 1 (update) or 2 (end)")
    sev = d.get("s")
    if not isinstance(sev, int) or isinstance(sev, bool) or not 0 <= sev < len(SEVERITIES):
        raise WireError("severity must be 0 (low), 1 (medium) or 2 (high)")
    boxes = d.get("b", [])
    if (
        not isinstance(boxes, list)
        or len(boxes) > MAX_BOXES
        or not all(
            isinstance(b, list) and len(b) == 4 and all(isinstance(x, int) for x in b)
            for b in boxes
        )
    ):
        raise WireError(f"boxes must be at most {MAX_BOXES} lists of 4 integers")
    labels = d.get("l", [])
    if (
        not isinstance(labels, list)
        or len(labels) > MAX_BOXES
        or not all(isinstance(x, str) and len(x) <= MAX_TEXT for x in labels)
    ):
        raise WireError("labels must be a list of short texts")
    known = {
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
    }
    media: dict[str, str | None] = {}
    for key, what in (("m", "clip id"), ("n", "snapshot id")):
        raw = d.get(key)
        if raw is not None and (not isinstance(raw, bytes) or len(raw) != 16):
            raise WireError(f"{what} must be 16 bytes (a UUID)")
        media[key] = str(uuid.UUID(bytes=raw)) if raw is not None else None
    extra = set(d) - known
    if extra:
        raise WireError(f"unknown payload keys {sorted(map(str, extra))}")
    return WireEvent(
        event_id=str(uuid.UUID(bytes=raw_id)),
        type=str(_text(d, "t", "type")),
        phase=PHASES[phase],
        camera=str(_text(d, "c", "camera")),
        zone=str(_text(d, "z", "zone")),
        rule=str(_text(d, "r", "rule")),
        ts=float(_num(d, "ts", "ts") or 0.0),
        started_ts=float(_num(d, "st", "started_ts") or 0.0),
        value=float(_num(d, "v", "value") or 0.0),
        unit=str(_text(d, "u", "unit")),
        severity=SEVERITIES[sev],
        boxes=tuple(tuple(b) for b in boxes),
        labels=tuple(labels),
        stage=_text(d, "g", "stage", optional=True),
        peak=_num(d, "k", "peak", optional=True),
        created_wall=float(_num(d, "w", "created_wall") or 0.0),
        clip_id=media["m"],
        snapshot_id=media["n"],
    )


#: An outbox depth beyond this is not a real queue; it also keeps the value in a signed int64.
MAX_DEPTH = 2**62


@dataclass(frozen=True)
class Heartbeat:
    """An edge's periodic sign of life; ``depth`` is its outbox depth, None when not reported."""

    depth: int | None = None


def encode_heartbeat(hb: Heartbeat) -> bytes:
    """The heartbeat payload: msgpack ``{"depth": n}``, or empty when there is no depth."""
    if hb.depth is None:
        return b""
    out: bytes = msgpack.packb({"depth": hb.depth}, use_bin_type=True)
    return out


def decode_heartbeat(payload: bytes) -> Heartbeat:
    """Validate a heartbeat payload; WireError names what is wrong (the depth must be a
    non-negative integer, so nothing downstream ever sees a string or bytes there)."""
    if not payload:
        return Heartbeat()
    try:
        d = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several types for garbage
        raise WireError(f"heartbeat payload is not msgpack ({type(exc).__name__})") from None
    if not isinstance(d, dict) or set(d) - {"depth"}:
        raise WireError("heartbeat payload must be a map with at most the key 'depth'")
    depth = d.get("depth")
    if depth is None:
        return Heartbeat()
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= MAX_DEPTH:
        raise WireError(f"heartbeat depth must be an integer from 0 to {MAX_DEPTH}")
    return Heartbeat(depth=depth)
