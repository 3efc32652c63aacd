"""Login, logout, the current user, and the role dependencies every other route uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response

from aggregator.api.deps import ServicesDep
from aggregator.api.schemas.auth import (
    Ability,
    Can,
    LoginIn,
    LoginOut,
    MePublic,
    Role,
    UserCreate,
    UserCreated,
    UserPublic,
)
from aggregator.api.schemas.common import errors
from aggregator.auth import ROLES, User
from aggregator.review import DISMISS_REASONS
from contract.errors import StreetwatchError
from contract.vocabulary import EVENT_TYPES, SEVERITIES

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
COOKIE = "sw_session"

#: The least role each ability needs. The routes guard themselves with ``able(ability)``
#: and GET /auth/me reports ``can`` from this same table, so the UI offers what they allow.
ABILITIES: dict[Ability, Role] = {
    "review": "operator",
    "update_cases": "operator",
    "view_ingest": "supervisor",
    "manage_users": "admin",
}


def _token(request: Request, authorization: str | None) -> str | None:
    if authorization and authorization.startswith("Bearer "):
        return authorization.removeprefix("Bearer ").strip()
    return request.cookies.get(COOKIE)


def current_user(
    request: Request,
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> User:
    """The logged-in user (session cookie or Bearer token), or 401."""
    token = _token(request, authorization)
    user = services.accounts.user_for_token(token) if token else None
    if user is None:
        raise HTTPException(
            401,
            "not logged in: POST /api/v1/auth/login first",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


def require(role: str) -> Callable[..., User]:
    """A dependency that lets through users with ``role`` or a higher one, else 403."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role}")

    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if not user.has(role):
            raise HTTPException(403, f"this needs the {role} role; {user.username} is {user.role}")
        return user

    check.required_role = role  # type: ignore[attr-defined]  # read by the route-walking test
    return check


def able(ability: Ability) -> Callable[..., User]:
    """The dependency for a route that does ``ability``: its role from ABILITIES."""
    return require(ABILITIES[ability])


def can(user: User) -> Can:
    """What ``user`` may do, by the role checks of ``able``."""
    return Can.model_validate({ability: user.has(role) for ability, role in ABILITIES.items()})


Viewer = Annotated[User, Depends(require("viewer"))]
UserAdmin = Annotated[User, Depends(able("manage_users"))]


def _public(user: User) -> UserPublic:
    return UserPublic.model_validate(user, from_attributes=True)


@router.post("/login", responses=errors(400, 401, 422, 429))
def login(body: LoginIn, request: Request, response: Response, services: ServicesDep) -> LoginOut:
    """Exchange a username and password for a session (cookie, and token for API clients).

    Five failures for one username or one address within five minutes lock further tries
    for the rest of that window (429).
    """
    client = request.client.host if request.client else "?"
    keys = [f"user:{body.username}", f"addr:{client}"]
    wait = services.accounts.limiter.retry_after_s(keys)
    if wait > 0:
        raise HTTPException(
            429,
            f"too many failed logins; try again in {wait:.0f} s",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    result = services.accounts.login(body.username, body.password)
    if result is None:
        services.accounts.limiter.failed(keys)
        raise HTTPException(401, "wrong username or password")
    services.accounts.limiter.succeeded(keys)
    user, token = result
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=12 * 3600)
    return LoginOut(token=token, user=_public(user))


@router.post(
    "/logout",
    status_code=204,
    response_description="Logged out: no content.",
    responses=errors(401),
)
def logout(
    request: Request,
    response: Response,
    services: ServicesDep,
    user: Viewer,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    """End this session; its token stops working at once."""
    token = _token(request, authorization)
    if token:
        services.accounts.logout(token)
    response.delete_cookie(COOKIE)


@router.get("/me", responses=errors(401))
def me(user: Viewer) -> MePublic:
    """Who is logged in, what their role lets them do, and the vocabulary to offer: the UI
    keeps no copy of these rules."""
    return MePublic(
        **_public(user).model_dump(),
        can=can(user),
        dismiss_reasons=list(DISMISS_REASONS),
        event_types=list(EVENT_TYPES),
        severities=list(SEVERITIES),
    )


users_router = APIRouter(prefix="/api/v1/users", tags=["users"], responses=errors(401, 403))


@users_router.get("")
def list_users(services: ServicesDep, _: UserAdmin) -> list[UserPublic]:
    """All accounts (admin)."""
    return [_public(u) for u in services.accounts.list_users()]


@users_router.post("", status_code=201, responses=errors(400, 409, 422))
def create_user(body: UserCreate, services: ServicesDep, _: UserAdmin) -> UserCreated:
    """Create an account (admin)."""
    try:
        services.accounts.add_user(body.username, body.password, body.role)
    except StreetwatchError as exc:
        raise HTTPException(409, str(exc)) from None
    return UserCreated(username=body.username, role=body.role)
