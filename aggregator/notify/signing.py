"""Signed webhooks: how a notification body is signed, and the check a receiver makes.

Every POST carries three headers: ``X-Streetwatch-Id`` (the notification id, a UUID: the
idempotency key, also in the body as ``notification_id``), ``X-Streetwatch-Timestamp`` (unix
seconds, an integer) and ``X-Streetwatch-Signature: sha256=<hex>``, the HMAC-SHA256 with the
webhook's secret of ``f"{timestamp}.".encode() + body``. Signing the timestamp with the body
lets a receiver refuse a captured request replayed later; ``verify`` is the documented check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping

HEADER_ID = "X-Streetwatch-Id"
HEADER_TIMESTAMP = "X-Streetwatch-Timestamp"
HEADER_SIGNATURE = "X-Streetwatch-Signature"
SCHEME = "sha256="
#: How far a request's timestamp may be from the receiver's clock, by default.
TOLERANCE_S = 300.0

#: Why a request is refused: SignatureError.reason is one of these.
REASONS = ("missing_header", "bad_id", "bad_timestamp", "stale_timestamp", "bad_signature")


class SignatureError(ValueError):
    """A request that is not a genuine, fresh notification; ``reason`` is one of REASONS
    and the message says what exactly is wrong."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The X-Streetwatch-Signature value of body sent at timestamp."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def signed_headers(
    secret: bytes, notification_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The headers of one delivery of body."""
    return {
        HEADER_ID: notification_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: sign(secret, timestamp, body),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    # Header names are case-insensitive and proxies change their case.
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value.strip()
    raise SignatureError("missing_header", f"the request has no {name} header")


def verify(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_s: float = TOLERANCE_S,
) -> None:
    """Refuse (SignatureError) a request that is not a fresh notification signed with
    secret: a header missing, an id that is not a UUID, a timestamp that is not an integer
    or is more than tolerance_s from now, a signature that does not match the body, or a
    body whose notification_id is not the X-Streetwatch-Id (someone changed the header to
    slip past the receiver's dedupe). Returns None for a genuine one."""
    notification_id = _header(headers, HEADER_ID)
    raw_ts = _header(headers, HEADER_TIMESTAMP)
    signature = _header(headers, HEADER_SIGNATURE)
    try:
        uuid.UUID(notification_id)
    except ValueError:
        raise SignatureError(
            "bad_id", f"{HEADER_ID} {notification_id[:64]!r} is not a UUID"
        ) from None
    if not raw_ts.isdigit():
        raise SignatureError(
            "bad_timestamp", f"{HEADER_TIMESTAMP} {raw_ts[:32]!r} is not unix seconds (an integer)"
        )
    timestamp = int(raw_ts)
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(
            "stale_timestamp",
            f"{HEADER_TIMESTAMP} {timestamp} is {now - timestamp:+.0f} s from now, more than "
            f"the {tolerance_s:.0f} s allowed (a replay, or a clock that is off)",
        )
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureError(
            "bad_signature",
            f"{HEADER_SIGNATURE} does not match the body and timestamp signed with this "
            f"webhook's secret (it must be {SCHEME}<hex HMAC-SHA256>)",
        )
    _same_id(notification_id, body)


def _same_id(notification_id: str, body: bytes) -> None:
    """The header's id is the body's (the signed one), where the body names one."""
    try:
        payload = json.loads(body)
    except ValueError:
        return  # not a notification body: the signature alone vouches for it
    named = payload.get("notification_id") if isinstance(payload, dict) else None
    if named is not None and named != notification_id:
        raise SignatureError(
            "bad_id",
            f"{HEADER_ID} {notification_id} is not the signed body's notification_id {named!r}",
        )
