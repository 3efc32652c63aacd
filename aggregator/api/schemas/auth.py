"""Accounts and sessions: login, the current user and what they may do, user management."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from contract.vocabulary import Severity

#: aggregator.auth.ROLES as a type, lowest first (a test keeps the two equal).
Role = Literal["viewer", "operator", "supervisor", "admin"]
#: What the UI asks the server it may offer; aggregator.api.auth.ABILITIES maps each to the
#: least role the routes require for it.
Ability = Literal["review", "update_cases", "view_ingest", "manage_users"]


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserPublic(BaseModel):
    id: int
    username: str
    role: Role


class LoginOut(BaseModel):
    token: str = Field(description="For API clients: send as Authorization: Bearer <token>.")
    user: UserPublic


class Can(BaseModel):
    """What this user's role lets them do, by the same role checks the routes make."""

    review: bool = Field(description="Confirm, dismiss and bulk-review events (operator).")
    update_cases: bool = Field(description="Change a case (operator; some moves: supervisor).")
    view_ingest: bool = Field(description="Read the ingest status (supervisor).")
    manage_users: bool = Field(description="List and create accounts (admin).")


class MePublic(UserPublic):
    """The logged-in user, what they may do, and the vocabulary the UI offers."""

    can: Can
    dismiss_reasons: list[str] = Field(description="The reasons a dismissal may give.")
    event_types: list[str] = Field(description="The standard event types (filters).")
    severities: list[Severity]


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=10, max_length=1024)
    role: Role


class UserCreated(BaseModel):
    username: str
    role: Role
