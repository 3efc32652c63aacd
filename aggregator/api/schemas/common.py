"""What every resource shares: the error answers and the audit trail entries."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorPublic(BaseModel):
    """Every refusal answers FastAPI's shape: the UI shows ``detail`` as it is."""

    detail: str = Field(description="What is wrong, in words a user can act on.")


class ValidationIssue(BaseModel):
    """One problem with a request, as FastAPI reports request validation failures."""

    loc: list[str | int]
    msg: str
    type: str


class InvalidPublic(BaseModel):
    """422: a message from the route, or FastAPI's list of issues when the request itself
    does not validate."""

    detail: str | list[ValidationIssue]


_MEANING = {
    400: "The body cannot be parsed, or an upload does not match its description.",
    401: "Not logged in, or the session or token is unknown, expired or revoked.",
    403: "Logged in, but the user's role does not allow this.",
    404: "No such thing.",
    409: "Conflicts with the current state.",
    413: "The upload is larger than allowed.",
    415: "The upload's media type is not accepted or its body is not that type.",
    422: "The request is invalid.",
    429: "Too many failed logins: wait for Retry-After seconds.",
    503: "Not ready: the database or the ingest is unavailable.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entries that document which errors a route answers with."""
    return {
        code: {
            "model": InvalidPublic if code == 422 else ErrorPublic,
            "description": _MEANING[code],
        }
        for code in codes
    }


class AuditEntryPublic(BaseModel):
    """One change a person made: who, when, what, why."""

    id: int
    at: float = Field(description="Unix seconds.")
    username: str
    action: str = Field(description="e.g. confirm, dismiss, file_case, join_case, update_case")
    entity: str = Field(description="event or case")
    entity_id: str
    detail: dict[str, Any]
    reason: str | None = Field(description="The note the user gave, if any.")
