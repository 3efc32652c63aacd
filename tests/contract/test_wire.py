"""The wire contract: round trip, size, and a named error for every kind of bad input."""

from __future__ import annotations

import dataclasses
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
        # Each text fits its database column (issue 12, finding 1: 33..64 characters of unit
        # or a NUL stopped the PostgreSQL ingest for every edge).
        (_body(u="u" * (wire.MAX_UNIT_CHARS + 1)), "unit must be text of 1..32 characters"),
        (_body(g="s" * (wire.MAX_STAGE_CHARS + 1)), "stage must be text of 1..64 characters"),
        (_body(c="cam\x00"), "camera must not contain control characters"),
        (_body(z="zone\n2"), "zone must not contain control characters"),
        (_body(r="\x7f"), "rule must not contain control characters"),
        (_body(t="crowding\x9b"), "type must not contain control characters"),
        (_body(l=["car\x00"]), "labels must be"),
        (_body(l=["x" * (wire.MAX_LABEL_CHARS + 1)]), "labels must be"),
        (_body(b=[[True, 2, 3, 4]]), "boxes must be"),
        (_body(b=[[0, 0, 2**31, 4]]), "boxes must be"),
        (_body(b=[[0, -(2**63), 3, 4]]), "boxes must be"),
        (_body(v=2**64 - 1, k=True), "peak must be a finite number"),
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
        # A seq must fit a signed 64-bit column (issue 12, finding 1).
        (
            [b"SW", b"\x01", b"E", b"e", b"\x80" + b"\x00" * 7, b""],
            r"sequence number 2\^63 is over",
        ),
        ([b"SW", b"\x01", b"E", b"e", b"\xff" * 8, b""], r"sequence number 2\^64-1 is over"),
        ([b"SW", b"\x01", b"E", b"e" * 65, b"\x00" * 8, b""], "edge id must be text of 1..64"),
        ([b"SW", b"\x01", b"E", b"", b"\x00" * 8, b""], "edge id must be text of 1..64"),
        ([b"SW", b"\x01", b"E", b"e\x00", b"\x00" * 8, b""], "edge id must not contain"),
    ],
)
def test_bad_envelope_names_the_problem(parts: list[bytes], message: str) -> None:
    with pytest.raises(wire.WireError, match=message):
        wire.parse(parts)


@pytest.mark.parametrize("text", ["\u00e9t\u00e9", "caf\u00e9 \u2603", "x" * wire.MAX_TEXT])
def test_printable_unicode_texts_pass(text: str) -> None:
    ev = dataclasses.replace(EV, camera=text, zone=text, labels=(text,), unit=text[:32])
    assert wire.decode_event(wire.encode_event(ev)) == ev


@pytest.mark.parametrize("seq", [0, 1, wire.MAX_SEQ])
def test_sequence_numbers_up_to_int64(seq: int) -> None:
    assert wire.parse(wire.frames(wire.KIND_EVENT, "e", seq)).seq == seq
