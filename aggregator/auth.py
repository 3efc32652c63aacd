"""Accounts, sessions and roles. Passwords are hashed with argon2id (argon2-cffi); session
tokens are random and only their sha256 is stored. Sessions and failed logins live in the
database, so any API replica answers any user (aggregator/login_limiter.py)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, select, update

from aggregator.db.models import SESSIONS, USERS
from aggregator.login_limiter import LoginLimiter
from contract.errors import StreetwatchError

ROLES = ("viewer", "operator", "supervisor", "admin")  # each includes the ones before it
SESSION_S = 12 * 3600.0
_hasher = PasswordHasher()
# Verifying against this keeps the time of a login for an unknown user like a real one.
_DUMMY_HASH = _hasher.hash("not a password")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str

    def has(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.limiter = LoginLimiter(engine)  # in the database: shared by every replica

    def add_user(self, username: str, password: str, role: str) -> None:
        if role not in ROLES:
            raise StreetwatchError(f"unknown role '{role}': one of {', '.join(ROLES)}")
        if len(password) < 10:
            raise StreetwatchError("password must have at least 10 characters")
        with self.engine.begin() as conn:
            if conn.execute(select(USERS.c.id).where(USERS.c.username == username)).first():
                raise StreetwatchError(f"user '{username}' already exists")
            conn.execute(
                USERS.insert().values(
                    username=username,
                    password_hash=_hasher.hash(password),
                    role=role,
                    created_at=time.time(),
                    disabled=False,
                )
            )

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(USERS).order_by(USERS.c.username)).all()
        return [User(r.id, r.username, r.role) for r in rows]

    def login(self, username: str, password: str) -> tuple[User, str] | None:
        """A new session token for valid credentials, else None. The rate limit and the bound
        on concurrent password checks (64 MiB each) are the caller's: see api/auth.py."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(USERS).where(USERS.c.username == username, USERS.c.disabled.is_(False))
            ).first()
        try:
            _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                SESSIONS.insert().values(
                    token_sha256=_digest(token),
                    user_id=row.id,
                    created_at=now,
                    expires_at=now + SESSION_S,
                    revoked=False,
                )
            )
        return User(row.id, row.username, row.role), token

    def user_for_token(self, token: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(USERS.c.id, USERS.c.username, USERS.c.role)
                .join(SESSIONS, SESSIONS.c.user_id == USERS.c.id)
                .where(
                    SESSIONS.c.token_sha256 == _digest(token),
                    SESSIONS.c.revoked.is_(False),
                    SESSIONS.c.expires_at > time.time(),
                    USERS.c.disabled.is_(False),
                )
            ).first()
        return User(row.id, row.username, row.role) if row else None

    def logout(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(SESSIONS)
                .where(SESSIONS.c.token_sha256 == _digest(token))
                .values(revoked=True)
            )
