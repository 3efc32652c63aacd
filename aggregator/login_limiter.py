"""Growing delays after failed logins, counted in the database (table login_failures) so that
every API replica behind a balancer counts the same tries: N replicas do not give an attacker
N times the guesses.

Times are wall-clock seconds (``time.time()``), not monotonic ones: the rows are shared by
processes, possibly on several hosts, and only the wall clock means the same to all of them.
Replicas' clocks should agree (NTP); a replica whose clock is ahead cannot make anyone wait
longer than ``max_delay_s``, because every wait is capped at it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, delete, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from aggregator.db.models import LOGIN_FAILURES

#: The username of an address's own row: its failures whatever the username tried. It sorts
#: before every real username, so every transaction locks an address's rows in one order.
ANY_USER = ""
#: The length of the key columns; a longer address (only a trusted proxy could name one) is
#: cut to it rather than refused by PostgreSQL.
KEY_CHARS = 64

_T = LOGIN_FAILURES


@dataclass(frozen=True)
class LoginPolicy:
    """How failed logins slow down further tries. Failures are counted per (username,
    address) and per address, never per username alone, so nobody can lock an account's
    owner out from elsewhere. Past the free failures each one adds a delay that doubles."""

    free_per_user_address: int = 3
    free_per_address: int = 10  # an address trying many usernames
    first_delay_s: float = 1.0
    max_delay_s: float = 300.0
    forget_after_s: float = 900.0  # a key quiet for this long starts afresh, and is pruned
    #: Table bound: past it, each prune also deletes the least recently active keys.
    max_keys: int = 100_000
    prune_every_s: float = 60.0  # how often each process prunes, at its next attempt

    def delay_s(self, failures: int, free: int) -> float:
        if failures <= free:
            return 0.0
        return float(min(self.first_delay_s * 2 ** (failures - free - 1), self.max_delay_s))


@dataclass(frozen=True)
class _Key:
    username: str
    address: str
    free: int  # failures allowed before the delays start

    def where(self) -> Any:
        return (_T.c.username == self.username) & (_T.c.address == self.address)


@dataclass(frozen=True)
class _Failures:
    count: int
    next_at: float  # wall time before which no try is allowed (0: none)


class LoginLimiter:
    """Counts an attempt before its password is checked, in one transaction that holds both
    of its rows locked (PostgreSQL: row locks of INSERT ... ON CONFLICT DO UPDATE; SQLite:
    the database's write lock, taken by that first INSERT), so concurrent tries, on this
    process or any other, cannot all slip through before the first failure is recorded."""

    def __init__(
        self,
        engine: Engine,
        policy: LoginPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if engine.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(
                f"login limiter: database {engine.dialect.name!r} is not supported "
                "(PostgreSQL or SQLite)"
            )
        self.engine = engine
        self.policy = policy or LoginPolicy()
        self.clock = clock
        # Housekeeping only: when this process prunes next. What a user may do is decided
        # by the rows alone.
        self._prune_at = 0.0

    def _keys(self, username: str, address: str) -> list[_Key]:
        if username == ANY_USER:
            raise ValueError("login limiter: the username must not be empty")
        address = address[:KEY_CHARS]
        p = self.policy  # ANY_USER first: the lock order of every transaction here
        return [
            _Key(ANY_USER, address, p.free_per_address),
            _Key(username[:KEY_CHARS], address, p.free_per_user_address),
        ]

    def _lock(self, conn: Connection, key: _Key, now: float) -> _Failures:
        """The key's failures, its row created if missing and locked until the transaction
        ends; a key quiet for forget_after_s reads as none."""
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        stmt = (
            insert(_T)
            .values(username=key.username, address=key.address, count=0, next_at=0.0, last_at=now)
            # A no-op update, not DO NOTHING: it locks the existing row and returns it.
            .on_conflict_do_update(
                index_elements=[_T.c.username, _T.c.address], set_={"count": _T.c.count}
            )
            .returning(_T.c.count, _T.c.next_at, _T.c.last_at)
        )
        count, next_at, last_at = conn.execute(stmt).one()
        if now - last_at > self.policy.forget_after_s:
            return _Failures(0, 0.0)
        return _Failures(int(count), float(next_at))

    def attempt(self, username: str, address: str) -> float:
        """Count a login attempt before its password is checked: 0 when it may go ahead
        (it counts as a failure until ``succeeded``), else the seconds to wait first."""
        now = self.clock()
        if now >= self._prune_at:
            self._prune_at = now + self.policy.prune_every_s
            self.prune(now)
        keys = self._keys(username, address)
        with self.engine.connect() as conn:
            found = [self._lock(conn, key, now) for key in keys]
            now = self.clock()  # after the locks: a try that waited for them is this late
            wait_s = max(f.next_at - now for f in found)
            if wait_s > 0:
                conn.rollback()  # refused without a check: it does not count
                return min(wait_s, self.policy.max_delay_s)
            for key, failures in zip(keys, found, strict=True):
                count = failures.count + 1
                delay_s = self.policy.delay_s(count, key.free)
                # No delay is no restriction at all (0), not "from now": a replica whose
                # clock is a little behind must not refuse the next try.
                next_at = now + delay_s if delay_s > 0 else 0.0
                conn.execute(
                    update(_T).where(key.where()).values(count=count, next_at=next_at, last_at=now)
                )
            conn.commit()
        return 0.0

    def succeeded(self, username: str, address: str) -> None:
        """The attempt had the right password: forget this user's failures from this
        address, and take back the address's count for it (not its earlier failures)."""
        by_address, by_user = self._keys(username, address)
        with self.engine.begin() as conn:  # the address's row first, as in attempt
            conn.execute(
                update(_T).where(by_address.where(), _T.c.count > 0).values(count=_T.c.count - 1)
            )
            conn.execute(delete(_T).where(by_user.where()))

    def prune(self, now: float | None = None) -> int:
        """Delete keys quiet for forget_after_s, and the least recently active ones past
        max_keys; the number deleted. Rows locked by an attempt in progress are left for
        the next prune (SKIP LOCKED on PostgreSQL), so pruning never waits for, or
        deadlocks with, a login."""
        now = self.clock() if now is None else now
        pk = tuple_(_T.c.username, _T.c.address)
        with self.engine.begin() as conn:
            stale = _T.c.last_at < now - self.policy.forget_after_s
            bound = conn.execute(
                select(_T.c.last_at)
                .order_by(_T.c.last_at.desc())
                .offset(self.policy.max_keys)
                .limit(1)
            ).scalar()
            if bound is not None:  # more than max_keys: the oldest go too (ties included)
                stale = or_(stale, _T.c.last_at <= bound)
            victims = select(_T.c.username, _T.c.address).where(stale)
            result = conn.execute(
                delete(_T).where(stale, pk.in_(victims.with_for_update(skip_locked=True)))
            )
        return int(result.rowcount)
