"""Login, logout, the current user, and the role dependencies every other route uses."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import Scope

from aggregator.api.deps import Services, ServicesDep
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
from aggregator.auth import ROLES, SESSION_S, User
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


NOT_LOGGED_IN = "not logged in: POST /api/v1/auth/login first"
#: Where the body gate (``session_refusal``) leaves the session it checked, so the route's
#: own check does not look it up again.
_CHECKED = "streetwatch.session"


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
    checked = request.scope.get("state", {}).get(_CHECKED)
    if token and checked is not None and checked[0] == token:
        user: User | None = checked[1]
    else:
        user = services.accounts.user_for_token(token) if token else None
    if user is None:
        raise HTTPException(401, NOT_LOGGED_IN, headers={"WWW-Authenticate": "Bearer"})
    return user


async def session_refusal(services: Services, scope: Scope) -> str | None:
    """For the body gate (aggregator/core/http.py): the session of a request from its
    headers alone, before any of its body is read. None when logged in, else why not."""
    request = Request(scope)
    token = _token(request, request.headers.get("authorization"))
    if not token:
        return NOT_LOGGED_IN
    user = await anyio.to_thread.run_sync(services.accounts.user_for_token, token)
    if user is None:
        return NOT_LOGGED_IN
    scope.setdefault("state", {})[_CHECKED] = (token, user)
    return None


def needs_login(route: APIRoute) -> bool:
    """Whether ``route`` checks the session (depends on ``current_user``)."""

    def walk(dep: Dependant) -> bool:
        return dep.call is current_user or any(walk(sub) for sub in dep.dependencies)

    return walk(route.dependant)


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


def _too_many(wait_s: float, detail: str) -> HTTPException:
    return HTTPException(429, detail, headers={"Retry-After": str(max(1, math.ceil(wait_s)))})


def _cookie_secure(request: Request, services: Services) -> bool:
    # The scheme is https over TLS, or from X-Forwarded-Proto of a trusted proxy.
    return request.url.scheme == "https" or services.http.secure_cookies


@router.post("/login", responses=errors(400, 401, 422, 429))
async def login(
    body: LoginIn, request: Request, response: Response, services: ServicesDep
) -> LoginOut:
    """Exchange a username and password for a session (cookie, and token for API clients).

    Failed logins slow down further tries from the same address: after three for one
    username (ten for any usernames) each failure doubles the wait, from 1 s up to 5 min
    (429 with Retry-After). Other addresses are not affected.
    """
    client = request.client.host if request.client else "?"
    slots = services.login_slots
    busy = slots.statistics()
    if (
        busy.borrowed_tokens >= busy.total_tokens
        and busy.tasks_waiting >= services.http.login_queue
    ):
        raise _too_many(1, "too many logins at once; try again in a second")
    limiter = services.accounts.limiter  # in the database: every replica counts the same
    wait_s = await anyio.to_thread.run_sync(limiter.attempt, body.username, client)
    if wait_s > 0:
        raise _too_many(wait_s, f"too many failed logins; try again in {math.ceil(wait_s)} s")
    # Counted above before the check, so concurrent guesses cannot outrun the limiter;
    # the slots bound the checks in progress, and waiting for one holds no thread.
    result = await anyio.to_thread.run_sync(
        services.accounts.login, body.username, body.password, limiter=slots
    )
    if result is None:
        raise HTTPException(401, "wrong username or password")
    await anyio.to_thread.run_sync(limiter.succeeded, body.username, client)
    user, token = result
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request, services),
        max_age=int(SESSION_S),
    )
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
    response.delete_cookie(
        COOKIE, httponly=True, samesite="strict", secure=_cookie_secure(request, services)
    )


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
