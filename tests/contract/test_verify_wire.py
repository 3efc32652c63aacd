"""Verification by camera on the wire (contract/verify.py): V and W payloads round trip in
their frames, and every kind of bad payload is refused with an error naming the field."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import msgpack
import pytest

from contract import verify, wire

REQUEST = verify.VerifyRequest(str(uuid.uuid4()), "cam-1", "kerb", "illegal_parking", 4.5)
SEEN = verify.VerifyAnswer(
    request_id=REQUEST.request_id,
    camera="cam-1",
    verdict="still_present",
    frames=10,
    present_frames=9,
    peak=1.0,
    needed=1.0,
    rule="illegal_parking",
    mode="peacetime",
    looked_s=5.02,
    snapshot_id=str(uuid.uuid4()),
)
FAILED = verify.VerifyAnswer(
    REQUEST.request_id, "cam-1", "failed", reason="camera 'cam-1' is offline: no frames"
)


def _changed(payload: bytes, **change: Any) -> bytes:
    d = msgpack.unpackb(payload)
    for k, v in change.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    out: bytes = msgpack.packb(d, use_bin_type=True)
    return out


def test_request_round_trip_in_its_frames() -> None:
    parts = wire.frames(wire.KIND_VERIFY, "box-017", 0, verify.encode_request(REQUEST))
    env = wire.parse(parts)
    assert (env.kind, env.edge_id, env.seq) == (wire.KIND_VERIFY, "box-017", 0)
    assert verify.decode_request(env.payload) == REQUEST
    # A request without look_s asks for the default look.
    short = _changed(verify.encode_request(REQUEST), l=None)
    assert verify.decode_request(short).look_s == verify.DEFAULT_LOOK_S


@pytest.mark.parametrize("answer", [SEEN, FAILED], ids=["still_present", "failed"])
def test_answer_round_trip_in_its_frames(answer: verify.VerifyAnswer) -> None:
    env = wire.parse(wire.frames(wire.KIND_VERDICT, "box-017", 0, verify.encode_answer(answer)))
    assert env.kind == wire.KIND_VERDICT
    assert verify.decode_answer(env.payload) == answer


def test_long_reasons_are_shortened_to_one_line() -> None:
    long = dataclasses.replace(FAILED, reason="no zone\n" * 200)
    got = verify.decode_answer(verify.encode_answer(long))
    assert got.reason is not None
    assert len(got.reason) == verify.MAX_ERROR_CHARS
    assert "\n" not in got.reason


def test_detail_keeps_what_the_edge_saw() -> None:
    assert SEEN.detail() == {
        "frames": 10,
        "present_frames": 9,
        "peak": 1.0,
        "needed": 1.0,
        "rule": "illegal_parking",
        "mode": "peacetime",
        "looked_s": 5.02,
    }
    assert FAILED.detail()["reason"] == FAILED.reason


def test_the_timeout_leaves_room_for_the_longest_look() -> None:
    assert verify.MAX_LOOK_S * verify.LOOK_EXTENSION < verify.ANSWER_TIMEOUT_S
    assert verify.VERIFICATION_STATUSES == ("pending", "still_present", "cleared", "failed")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"i": b"short"}, "verify request id must be 16 bytes"),
        ({"c": ""}, "camera must be text of 1..64"),
        ({"c": "cam\x00"}, "camera must be text"),
        ({"z": None}, "zone must be text"),
        ({"t": "x" * 65}, "event type must be text of 1..64"),
        ({"l": 0.5}, "look_s must be a finite number from 1 to 12"),
        ({"l": 13}, "look_s must be a finite number from 1 to 12"),
        ({"l": float("nan")}, "look_s must be a finite number"),
        ({"l": True}, "look_s must be a finite number"),
        ({"f": 2}, "verify request format 2 is not 1"),
        ({"zz": 1}, "verify request payload has unknown keys"),
    ],
)
def test_bad_requests_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(wire.WireError, match=message):
        verify.decode_request(_changed(verify.encode_request(REQUEST), **change))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"v": "gone"}, "verdict must be one of still_present, cleared, failed"),
        ({"v": None}, "verdict must be one of"),
        ({"i": "not bytes"}, "verdict request id must be 16 bytes"),
        ({"fr": -1}, "verdict frames must be an integer from 0 to 10000"),
        ({"fr": 1.5}, "verdict frames must be an integer"),
        ({"pr": 11}, "present frames must not exceed its frames"),
        ({"fr": 0, "pr": 0}, "a still_present verdict must have looked at one frame"),
        ({"pk": float("inf")}, "verdict peak must be a finite number"),
        ({"nd": -1}, "verdict needed must be a finite number from 0"),
        ({"d": 31}, "verdict looked_s must be a finite number from 0 to 30"),
        ({"n": b"x" * 15}, "verdict snapshot id must be 16 bytes"),
        ({"r": ""}, "verdict rule must be text"),
        ({"o": "m" * 33}, "verdict mode must be text of 1..32"),
        ({"e": 5}, "verdict reason must be text of at most 300"),
        ({"c": "a\nb"}, "camera must be text"),
        ({"extra": 1}, "verdict payload has unknown keys"),
        ({"f": "1"}, "verdict format '1' is not 1"),
    ],
)
def test_bad_answers_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(wire.WireError, match=message):
        verify.decode_answer(_changed(verify.encode_answer(SEEN), **change))


def test_a_failed_verdict_must_say_why() -> None:
    with pytest.raises(wire.WireError, match="a failed verdict must say why"):
        verify.decode_answer(_changed(verify.encode_answer(FAILED), e=None))


@pytest.mark.parametrize("payload", [b"", b"\xc1", msgpack.packb([1, 2])])
def test_garbage_is_refused(payload: bytes) -> None:
    with pytest.raises(wire.WireError, match="verdict payload"):
        verify.decode_answer(payload)
    with pytest.raises(wire.WireError, match="verify request payload"):
        verify.decode_request(payload)
