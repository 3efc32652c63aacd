"""The heartbeat and evidence-upload parts of the contract: round trips, and a named error for
every bad value (a depth that is text or bytes once made /metrics answer 500)."""

from __future__ import annotations

import uuid

import msgpack
import pytest

from contract import fleet, wire
from contract.uploads import UploadHeaderError, UploadHeaders


@pytest.mark.parametrize("depth", [None, 0, 7, fleet.MAX_DEPTH])
def test_heartbeat_round_trip(depth: int | None) -> None:
    hb = fleet.Heartbeat(depth)
    assert fleet.decode_heartbeat(fleet.encode_heartbeat(hb)) == hb


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (msgpack.packb({"depth": "12"}), "depth must be an integer"),
        (msgpack.packb({"depth": b"\x00"}), "depth must be an integer"),
        (msgpack.packb({"depth": True}), "depth must be an integer"),
        (msgpack.packb({"depth": -1}), "depth must be an integer"),
        (msgpack.packb({"depth": 2**64 - 1}), "depth must be an integer"),
        (msgpack.packb({"depth": 1.5}), "depth must be an integer"),
        (msgpack.packb({"depth": 1, "x": 2}), "unknown keys"),
        (msgpack.packb([1]), "must be a msgpack map"),
        (b"\xc1", "not msgpack"),
    ],
)
def test_bad_heartbeat_is_named(payload: bytes, message: str) -> None:
    with pytest.raises(wire.WireError, match=message):
        fleet.decode_heartbeat(payload)


GOOD = UploadHeaders(
    event_id=str(uuid.uuid4()),
    kind="clip",
    sha256="ab" * 32,
    content_type="video/mp4",
    start_ts=1795750000.25,
    duration_s=12.5,
)


class _Caseless(dict[str, str]):
    """Header names are case-insensitive in HTTP, as in httpx's and Starlette's mappings."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return {k.lower(): v for k, v in self.items()}.get(key.lower(), default)


def test_upload_headers_round_trip_through_http_names() -> None:
    sent = GOOD.to_http()
    lowered = _Caseless({k.lower(): v for k, v in sent.items()})
    assert UploadHeaders.from_http(lowered) == GOOD


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        ("X-Start-Ts", "nan", "X-Start-Ts must be a finite number"),
        ("X-Start-Ts", "inf", "X-Start-Ts must be a finite number"),
        ("X-Duration-S", "-1", "X-Duration-S must not be negative"),
        ("X-Duration-S", "soon", "X-Duration-S must be a number"),
        ("X-Event-Id", "../../etc", "X-Event-Id must be a UUID"),
        ("X-Media-Kind", "script", "X-Media-Kind must be one of clip, snapshot"),
        ("X-Content-SHA256", "abc", "X-Content-SHA256 must be 64 hexadecimal digits"),
        ("X-Event-Id", "", "missing header X-Event-Id"),
    ],
)
def test_bad_upload_header_is_named(header: str, value: str, message: str) -> None:
    headers = _Caseless({**GOOD.to_http(), header: value})
    with pytest.raises(UploadHeaderError, match=message):
        UploadHeaders.from_http(headers)
