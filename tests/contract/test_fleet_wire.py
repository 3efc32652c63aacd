"""Fleet control on the wire (contract/fleet.py): H, C and R payloads round trip, and every
kind of bad payload is refused with an error that names the field."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import msgpack
import pytest

from contract import fleet, wire

APPLIED = fleet.Applied(config_version=7, mode="emergency", mode_rev=42)
HB = fleet.Heartbeat(
    depth=3,
    software="0.1.0",
    source="central",
    cameras=(
        fleet.CameraStatus("cam-1", "online", 4.9, APPLIED, 1795750000.5, None),
        fleet.CameraStatus(
            "cam-2", "offline", 0.0, fleet.Applied(), None, "zones[0].rules[0].classes: bad"
        ),
    ),
)
PUSH = fleet.ConfigPush(
    camera="cam-1",
    applied=APPLIED,
    drill=True,
    config={"id": "cam-1", "zones": [{"name": "square", "rules": [{"preset": "crowding"}]}]},
    overrides=fleet.ModeOverrides(("emergency",), {"crowding": {"min_count": 4}}),
)
REPORT = fleet.ConfigReport("cam-1", APPLIED, ok=False, error="unknown class 'persn'")


def test_heartbeat_round_trip_with_cameras() -> None:
    assert fleet.decode_heartbeat(fleet.encode_heartbeat(HB)) == HB


def test_push_round_trip_with_and_without_a_config() -> None:
    assert fleet.decode_push(fleet.encode_push(PUSH)) == PUSH
    mode_only = dataclasses.replace(PUSH, config=None, drill=False, applied=fleet.Applied())
    assert fleet.decode_push(fleet.encode_push(mode_only)) == mode_only


def test_report_round_trip_and_long_errors_shortened() -> None:
    assert fleet.decode_report(fleet.encode_report(REPORT)) == REPORT
    ok = fleet.ConfigReport("cam-1", APPLIED, ok=True)
    assert fleet.decode_report(fleet.encode_report(ok)) == ok
    long = dataclasses.replace(REPORT, error="x\n" * 1000)
    got = fleet.decode_report(fleet.encode_report(long))
    assert got.error is not None
    assert len(got.error) == fleet.MAX_ERROR_CHARS
    assert "\n" not in got.error


def _changed(payload: bytes, **change: Any) -> bytes:
    d = msgpack.unpackb(payload)
    d.update(change)
    return bytes(msgpack.packb(d, use_bin_type=True))


def _cam(**change: Any) -> bytes:
    d = msgpack.unpackb(fleet.encode_heartbeat(HB))
    d["cams"][0].update(change)
    return bytes(msgpack.packb(d, use_bin_type=True))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xc1", "heartbeat payload is not msgpack"),
        (_changed(fleet.encode_heartbeat(HB), src="cloud"), "config source must be one of"),
        (_changed(fleet.encode_heartbeat(HB), sw=""), "software version must be text"),
        (_changed(fleet.encode_heartbeat(HB), extra=1), "unknown keys ['extra']"),
        (_changed(fleet.encode_heartbeat(HB), f=2), "heartbeat format 2 is not 1"),
        (_cam(s="asleep"), "camera state must be one of"),
        (_cam(fps=-1), "camera fps must be a number"),
        (_cam(v=0), "config version must be an integer from 1"),
        (_cam(m="a" * 40), "mode must be text of 1..32"),
        (_cam(le="yesterday"), "last event time must be a finite number"),
        (_cam(e="x" * 400), "error must be text of at most 300"),
        (_cam(c="cam-2"), "heartbeat names a camera twice"),
        (_cam(zz=1), "heartbeat camera must be a map of the keys"),
    ],
)
def test_bad_heartbeat_is_named(payload: bytes, message: str) -> None:
    with pytest.raises(wire.WireError, match=message.replace("[", r"\[").replace("]", r"\]")):
        fleet.decode_heartbeat(payload)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"c": ""}, "camera must be text of 1..64"),
        ({"c": "cam\x00"}, "camera must be text"),
        ({"d": [1]}, "config push config must be a map or null"),
        ({"x": 1}, "config push drill must be true or false"),
        ({"r": -1}, "mode revision must be an integer from 0"),
        ({"o": {"t": "emergency"}}, "mode tags must be a list of texts"),
        ({"o": {"p": {"crowding": 4}}}, "mode rule parameters must be a map of event type"),
        ({"o": {"q": 1}}, "mode overrides must be a map of 't'"),
        ({"f": 9}, "config push format 9 is not 1"),
        ({"why": 1}, "config push payload has unknown keys"),
    ],
)
def test_bad_push_is_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(wire.WireError, match=message):
        fleet.decode_push(_changed(fleet.encode_push(PUSH), **change))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ok": "yes"}, "config report ok must be true or false"),
        ({"e": 5}, "error must be text of at most"),
        ({"v": 2**63}, "config version must be an integer from 1"),
        ({"m": ""}, "mode must be text of 1..32"),
    ],
)
def test_bad_report_is_named(change: dict[str, Any], message: str) -> None:
    with pytest.raises(wire.WireError, match=message):
        fleet.decode_report(_changed(fleet.encode_report(REPORT), **change))


def test_push_too_large_for_one_message_is_refused_when_encoded() -> None:
    big = dataclasses.replace(PUSH, config={"id": "cam-1", "name": "n" * wire.MAX_PAYLOAD_BYTES})
    with pytest.raises(wire.WireError, match=r"config push for camera 'cam-1' of \d+ bytes"):
        fleet.encode_push(big)


def test_push_and_report_travel_in_protocol_frames() -> None:
    parts = wire.frames(wire.KIND_CONFIG, "box-017", 99, fleet.encode_push(PUSH))
    env = wire.parse(parts)
    assert (env.kind, env.seq) == (wire.KIND_CONFIG, 99)
    assert fleet.decode_push(env.payload) == PUSH
    env = wire.parse(wire.frames(wire.KIND_REPORT, "box-017", 99, fleet.encode_report(REPORT)))
    assert (env.kind, env.seq, fleet.decode_report(env.payload)) == (wire.KIND_REPORT, 99, REPORT)


def _event(**change: Any) -> wire.WireEvent:
    base = wire.WireEvent(
        event_id=str(uuid.uuid4()),
        type="crowding",
        phase="start",
        camera="cam-1",
        zone="square",
        rule="crowding",
        ts=1795750000.0,
        started_ts=1795749990.0,
        value=12.0,
        unit="persons",
        severity="medium",
        boxes=(),
        labels=(),
        stage=None,
        peak=None,
        created_wall=1795750000.1,
    )
    return dataclasses.replace(base, **change)


@pytest.mark.parametrize(("mode", "drill"), [("peacetime", False), ("emergency", False),
                                             ("drill", True)])  # fmt: skip
def test_wire_event_mode_and_drill_round_trip(mode: str, drill: bool) -> None:
    ev = _event(mode=mode, drill=drill)
    assert wire.decode_event(wire.encode_event(ev)) == ev
    if mode == "peacetime" and not drill:  # the defaults cost no bytes
        assert "o" not in msgpack.unpackb(wire.encode_event(ev))


@pytest.mark.parametrize(
    ("change", "message"), [({"x": "yes"}, "drill must be true or false"), ({"o": ""}, "mode")]
)
def test_bad_event_mode_is_named(change: dict[str, Any], message: str) -> None:
    payload = _changed(wire.encode_event(_event(mode="alert", drill=True)), **change)
    with pytest.raises(wire.WireError, match=message):
        wire.decode_event(payload)
