"""Verification by camera, the aggregator's side: a person asks for a case's camera to be
looked at again (a pending row in ``verifications``), the ingest that holds the connection
of the camera's edge sends the request (aggregator/fleet/verify.py) and writes the edge's
verdict back; the review workflow asks ``closing_refusal`` before a camera case is verified
or closed.

A row still pending ``ANSWER_TIMEOUT_S`` after it was asked reads as failed (no answer): its
edge is offline or does not speak V. The stored row stays pending; a late answer is not
taken, so what a person saw at that moment stays what the row says.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import Connection, String, select

from aggregator.db.grid_models import VERIFICATIONS
from aggregator.db.models import AUDIT, CASES
from contract.verify import (
    ANSWER_TIMEOUT_S,
    CLEARED,
    DEFAULT_LOOK_S,
    FAILED,
    PENDING,
    STILL_PRESENT,
    VerificationStatus,
)

#: Audit actions on a case: an edge's verdict arrived, a supervisor closed against it.
VERIFY_ACTION = "verify"
OVERRIDE_ACTION = "verify_override"
#: The statuses a camera case reaches only when its camera shows the problem gone.
GUARDED_STATUSES = ("verified", "closed")
NO_ANSWER = (
    f"no answer from the camera's edge within {ANSWER_TIMEOUT_S:.0f} s "
    "(the edge is offline, or its software does not verify)"
)


class VerificationError(Exception):
    """A verification that cannot be asked for; ``status`` is the HTTP code."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Verification:
    """A row as people see it: ``verdict`` is failed once a pending one waited too long."""

    id: int
    request_id: str
    case_id: int
    camera: str
    zone: str
    rule_type: str
    requested_by: str
    requested_at: float
    verdict: VerificationStatus
    detail: dict[str, Any]
    snapshot_id: str | None
    answered_at: float | None

    @property
    def look_s(self) -> float:
        return float(self.detail.get("look_s") or DEFAULT_LOOK_S)


def effective(row: Any, now: float) -> Verification:
    """The row's verification as of ``now``."""
    v = Verification(**{k: row._mapping[k] for k in Verification.__dataclass_fields__})
    if v.verdict == PENDING and now - v.requested_at > ANSWER_TIMEOUT_S:
        return replace(v, verdict=FAILED, detail={**v.detail, "reason": NO_ANSWER})
    return v


def for_case(conn: Connection, case_id: int, now: float, limit: int = 100) -> list[Verification]:
    """The case's verifications, newest first."""
    rows = conn.execute(
        select(VERIFICATIONS)
        .where(VERIFICATIONS.c.case_id == case_id)
        .order_by(VERIFICATIONS.c.requested_at.desc(), VERIFICATIONS.c.id.desc())
        .limit(limit)
    ).all()
    return [effective(r, now) for r in rows]


def latest(conn: Connection, case_id: int, now: float) -> Verification | None:
    found = for_case(conn, case_id, now, limit=1)
    return found[0] if found else None


def request(
    conn: Connection, case_id: int, username: str, look_s: float, now: float
) -> Verification:
    """Ask for the case's camera to be looked at: a pending row (VerificationError when the
    case cannot be verified by camera, or already waits for an answer)."""
    case = conn.execute(select(CASES).where(CASES.c.id == case_id)).first()
    if case is None:
        raise VerificationError(404, f"no case {case_id}")
    if case.source != "camera" or not case.camera:
        raise VerificationError(
            409,
            f"case {case_id} is a {case.source} report: it has no camera to verify by; "
            "check it on site",
        )
    if case.status in ("closed", "cancelled"):
        raise VerificationError(409, f"case {case_id} is {case.status}: nothing to verify")
    limit = cast(String, VERIFICATIONS.c.rule_type.type).length
    if limit is not None and len(case.type) > limit:
        raise VerificationError(
            409, f"case {case_id}: event type '{case.type}' is longer than {limit} characters"
        )
    last = latest(conn, case_id, now)
    if last is not None and last.verdict == PENDING:
        raise VerificationError(
            409,
            f"case {case_id} is being verified already (request {last.request_id}, "
            f"asked {now - last.requested_at:.0f} s ago): wait for its answer",
        )
    values = {
        "request_id": str(uuid.uuid4()),
        "case_id": case_id,
        "camera": case.camera,
        "zone": case.zone,
        "rule_type": case.type,
        "requested_by": username,
        "requested_at": now,
        "verdict": PENDING,
        "detail": {"look_s": look_s},
        "snapshot_id": None,
        "answered_at": None,
    }
    inserted = conn.execute(VERIFICATIONS.insert().values(**values)).inserted_primary_key
    assert inserted is not None
    return Verification(id=int(inserted[0]), **values)


def _overridden_since(conn: Connection, case_id: int, since: float) -> bool:
    """Whether a supervisor closed against the camera after ``since`` (an override given to
    verify the case stands for its close, until a newer verification)."""
    found = conn.execute(
        select(AUDIT.c.id).where(
            AUDIT.c.entity == "case",
            AUDIT.c.entity_id == str(case_id),
            AUDIT.c.action == OVERRIDE_ACTION,
            AUDIT.c.at >= since,
        )
    ).first()
    return found is not None


def closing_refusal(
    conn: Connection, case_id: int, new_status: str, now: float | None = None
) -> tuple[str, Verification | None] | None:
    """Why a camera case may not move to ``new_status`` on what its camera shows, with its
    latest verification; None when it may (the latest verification says cleared, or a
    supervisor overrode it before for the close)."""
    now = time.time() if now is None else now
    last = latest(conn, case_id, now)
    if last is not None and last.verdict == CLEARED:
        return None
    since = 0.0 if last is None else last.requested_at
    if new_status == "closed" and _overridden_since(conn, case_id, since):
        return None
    way_out = (
        f"verify it by camera (POST /api/v1/cases/{case_id}/verify) until it says cleared, "
        "or override as a supervisor with a note (override: true)"
    )
    if last is None:
        why = f"case {case_id} has not been verified by camera"
    elif last.verdict == STILL_PRESENT:
        d = last.detail
        why = (
            f"case {case_id}: its camera still shows the problem (verification "
            f"{last.request_id}: still present in {d.get('present_frames')} of "
            f"{d.get('frames')} frames)"
        )
    elif last.verdict == PENDING:
        why = f"case {case_id} is being verified by camera (request {last.request_id})"
    else:
        why = (
            f"case {case_id}: its last verification by camera failed "
            f"({last.detail.get('reason', 'no reason given')})"
        )
    return f"{why}: it cannot go to {new_status}; {way_out}", last
