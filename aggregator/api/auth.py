"""Login, logout, the current user, and the role dependencies every other route uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from pydantic import BaseModel, Field

from aggregator.api.deps import ServicesDep
from aggregator.auth import ROLES, User

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
COOKIE = "sw_session"


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


Viewer = Annotated[User, Depends(require("viewer"))]
Admin = Annotated[User, Depends(require("admin"))]


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserPublic(BaseModel):
    id: int
    username: str
    role: str


class LoginOut(BaseModel):
    token: str
    user: UserPublic


@router.post("/login")
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
    return LoginOut(
        token=token, user=UserPublic(id=user.id, username=user.username, role=user.role)
    )


@router.post("/logout", status_code=204)
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


@router.get("/me")
def me(user: Viewer) -> UserPublic:
    """Who is logged in."""
    return UserPublic(id=user.id, username=user.username, role=user.role)


users_router = APIRouter(prefix="/api/v1/users", tags=["users"])


@users_router.get("")
def list_users(services: ServicesDep, _: Admin) -> list[UserPublic]:
    """All accounts (admin)."""
    return [
        UserPublic(id=u.id, username=u.username, role=u.role)
        for u in services.accounts.list_users()
    ]


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=10, max_length=1024)
    role: str = Field(pattern="^(viewer|operator|supervisor|admin)$")


@users_router.post("", status_code=201)
def create_user(body: UserCreate, services: ServicesDep, _: Admin) -> dict[str, Any]:
    """Create an account (admin)."""
    from contract.errors import StreetwatchError

    try:
        services.accounts.add_user(body.username, body.password, body.role)
    except StreetwatchError as exc:
        raise HTTPException(409, str(exc)) from None
    return {"username": body.username, "role": body.role}
