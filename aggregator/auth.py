"""Accounts, sessions and roles. Passwords are hashed with argon2id (argon2-cffi); session
tokens are random and only their sha256 is stored."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, select, update

from aggregator.db.models import SESSIONS, USERS
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


@dataclass(frozen=True)
class LoginPolicy:
    """How failed logins slow down further tries. Failures are counted per (username,
    address) and per address, never per username alone, so nobody can lock an account's
    owner out from elsewhere. Past the free failures each one adds a delay that doubles."""

    free_per_user_address: int = 3
    free_per_address: int = 10  # an address trying many usernames
    first_delay_s: float = 1.0
    max_delay_s: float = 300.0
    forget_after_s: float = 900.0  # a key quiet for this long starts afresh
    max_keys: int = 100_000  # memory bound: the least recently used keys are dropped

    def delay_s(self, failures: int, free: int) -> float:
        if failures <= free:
            return 0.0
        return float(min(self.first_delay_s * 2 ** (failures - free - 1), self.max_delay_s))


@dataclass
class _Failures:
    count: int = 0
    next_at: float = 0.0  # monotonic time before which no try is allowed
    last_at: float = 0.0


class LoginLimiter:
    """Growing delays after failed logins, kept in memory (one aggregator process serves
    the UI). An attempt is counted before its password is checked, so concurrent tries
    cannot all slip through before the first failure is recorded."""

    def __init__(self, policy: LoginPolicy | None = None) -> None:
        self.policy = policy or LoginPolicy()
        self._keys: OrderedDict[tuple[str | None, str], _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, key: tuple[str | None, str], now: float) -> _Failures:
        entry = self._keys.get(key)
        if entry is None or now - entry.last_at > self.policy.forget_after_s:
            entry = self._keys[key] = _Failures()
        self._keys.move_to_end(key)
        while len(self._keys) > self.policy.max_keys:
            self._keys.popitem(last=False)
        return entry

    def _limits(self, username: str, address: str) -> list[tuple[tuple[str | None, str], int]]:
        p = self.policy  # (None, address): the address whatever the username
        return [
            ((username, address), p.free_per_user_address),
            ((None, address), p.free_per_address),
        ]

    def attempt(self, username: str, address: str) -> float:
        """Count a login attempt before its password is checked: 0 when it may go ahead
        (it counts as a failure until ``succeeded``), else the seconds to wait first."""
        now = time.monotonic()
        with self._lock:
            entries = [(self._get(key, now), free) for key, free in self._limits(username, address)]
            wait_s = max(entry.next_at - now for entry, _ in entries)
            if wait_s > 0:
                return wait_s  # refused without a check: it does not count
            for entry, free in entries:
                entry.count += 1
                entry.last_at = now
                entry.next_at = now + self.policy.delay_s(entry.count, free)
        return 0.0

    def succeeded(self, username: str, address: str) -> None:
        """The attempt had the right password: forget this user's failures from this
        address, and take back the address's count for it (not its earlier failures)."""
        with self._lock:
            self._keys.pop((username, address), None)
            entry = self._keys.get((None, address))
            if entry is not None:
                entry.count = max(0, entry.count - 1)


class Accounts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.limiter = LoginLimiter()

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
