"""The wire contract: round trip, size, and a named error for every kind of bad input."""

from __future__ import annotations

import re
import uuid

import msgpack
import pytest

from contract import wire

EV = wire.WireEvent(
    event_id=str(uuid.uuid4()),
    type="illegal_parking",
    phase="update",
    camera="main-st-north",
    zone="crossing-east",
    rule="illegal_parking",
    ts=1795750000.125,
    started_ts=1795749700.5,
    value=299.6,
    unit="s",
    severity="medium",
    boxes=((412, 218, 598, 331),),
    labels=("car",),
    stage="violation",
    peak=None,
    created_wall=1795750000.2,
)


def test_round_trip_and_size() -> None:
    payload = wire.encode_event(EV)
    assert wire.decode_event(payload) == EV
    parts = wire.frames(wire.KIND_EVENT, "box-017", 123456, payload)
    assert sum(map(len, parts)) < 300
    env = wire.parse(parts)
    assert (env.kind, env.edge_id, env.seq, env.payload) == (
        wire.KIND_EVENT,
        "box-017",
        123456,
        payload,
    )


def _body(**change: object) -> bytes:
    d = msgpack.unpackb(wire.encode_event(EV))
    d.update(change)
    for k, v in list(d.items()):
        if v is None:
            del d[k]
    return bytes(msgpack.packb(d, use_bin_type=True))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xc1", "payload is not msgpack"),
        (msgpack.packb([1, 2]), "payload must be a msgpack map"),
        (_body(i=b"short"), "event id must be 16 bytes"),
        (_body(p=7), "phase must be 0 (start), 1 (update) or 2 (end)"),
        (_body(s=-1), "severity must be"),
        (_body(t=""), "type must be text"),
        (_body(c="x" * 65), "camera must be text of 1..64"),
        (_body(ts=float("nan")), "ts must be a finite number"),
        (_body(v="12"), "value must be a finite number"),
        (_body(b=[[1, 2, 3]]), "boxes must be"),
        (_body(l=[1]), "labels must be"),
        (_body(edge="box-9"), "unknown payload keys ['edge']"),
    ],
)
def test_bad_payload_names_the_problem(payload: bytes, message: str) -> None:
    with pytest.raises(wire.WireError, match=re.escape(message)):
        wire.decode_event(payload)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([b"SW"], "expected 6 frames, got 1"),
        ([b"XX", b"\x01", b"E", b"e", b"\x00" * 8, b""], "bad magic"),
        ([b"SW", b"\x02", b"E", b"e", b"\x00" * 8, b""], "unsupported protocol version"),
        ([b"SW", b"\x01", b"Z", b"e", b"\x00" * 8, b""], "unknown message kind"),
        ([b"SW", b"\x01", b"E", b"e", b"\x00" * 7, b""], "sequence frame must be 8 bytes"),
        ([b"SW", b"\x01", b"E", b"\xff", b"\x00" * 8, b""], "edge id is not UTF-8"),
        ([b"SW", b"\x01", b"E", b"e", b"\x00" * 8, b"x" * 20_000], "exceeds"),
    ],
)
def test_bad_envelope_names_the_problem(parts: list[bytes], message: str) -> None:
    with pytest.raises(wire.WireError, match=message):
        wire.parse(parts)
