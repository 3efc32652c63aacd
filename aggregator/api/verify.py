"""Verification by camera: ask the edge that runs a case's camera to look again, and list
what the edges answered (aggregator/verifications.py)."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import select

from aggregator.api.auth import Viewer, able, require
from aggregator.api.deps import RowId, ServicesDep
from aggregator.api.schemas.common import errors
from aggregator.api.schemas.verify import (
    VerificationPublic,
    VerificationsPublic,
    VerifyCreate,
)
from aggregator.auth import User
from aggregator.db.models import CASES
from aggregator.verifications import Verification, VerificationError, for_case, request

router = APIRouter(
    prefix="/api/v1/cases",
    tags=["verifications"],
    dependencies=[Depends(require("viewer"))],
    responses=errors(401),
)
CaseEditor = Annotated[User, Depends(able("update_cases"))]


def _public(v: Verification) -> VerificationPublic:
    return VerificationPublic.model_validate(asdict(v))


@router.post("/{case_id}/verify", status_code=202, responses=errors(403, 404, 409, 422))
def verify_case(
    case_id: RowId,
    services: ServicesDep,
    user: CaseEditor,
    body: VerifyCreate | None = None,
) -> VerificationPublic:
    """Ask the edge that runs the case's camera to look at the case's zone for look_s
    seconds: the answer (still_present or cleared, with a fresh snapshot) shows in the
    case's verifications within seconds. 409 for a case without a camera (a citizen report),
    a closed one, or one already waiting for an answer."""
    look_s = (body or VerifyCreate()).look_s
    try:
        with services.engine.begin() as conn:
            made = request(conn, case_id, user.username, look_s, time.time())
    except VerificationError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return _public(made)


@router.get("/{case_id}/verifications", responses=errors(404, 422))
def list_verifications(case_id: RowId, services: ServicesDep, user: Viewer) -> VerificationsPublic:
    """The case's verifications by camera, newest first; one still pending after
    ANSWER_TIMEOUT_S (30 s) reads as failed, no answer."""
    with services.engine.connect() as conn:
        if conn.execute(select(CASES.c.id).where(CASES.c.id == case_id)).first() is None:
            raise HTTPException(404, f"no case {case_id}")
        found = for_case(conn, case_id, time.time())
    return VerificationsPublic(items=[_public(v) for v in found])
