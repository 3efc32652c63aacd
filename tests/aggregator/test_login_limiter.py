"""The login limiter in the database (aggregator/login_limiter.py), on real PostgreSQL and
SQLite: the policy of growing delays, forgetting and pruning, and concurrent attempts from
threads on two engines (two replicas) that must be counted as one."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from aggregator.db.engine import make_engine, migrate
from aggregator.db.models import LOGIN_FAILURES
from aggregator.login_limiter import ANY_USER, LoginLimiter, LoginPolicy
from tests.deploy import database

T0 = 1_800_000_000.0  # a wall-clock time for the tests' own clocks


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path) as db_url:
        migrate(db_url)
        yield db_url


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _rows(engine: Engine) -> dict[tuple[str, str], int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(LOGIN_FAILURES.c.username, LOGIN_FAILURES.c.address, LOGIN_FAILURES.c.count)
        ).all()
    return {(username, address): int(count) for username, address, count in rows}


def _next_at(engine: Engine, username: str, address: str) -> float:
    with engine.connect() as conn:
        return float(
            conn.execute(
                select(LOGIN_FAILURES.c.next_at).where(
                    LOGIN_FAILURES.c.username == username, LOGIN_FAILURES.c.address == address
                )
            ).scalar_one()
        )


def test_delays_double_after_the_free_failures(engine: Engine) -> None:
    clock = Clock()
    limiter = LoginLimiter(engine, LoginPolicy(max_delay_s=4.0), clock)
    delays_s = []
    for _ in range(7):  # each try waits out the delay before it: all of them are counted
        assert limiter.attempt("admin", "10.0.0.1") == 0
        next_at = _next_at(engine, "admin", "10.0.0.1")
        delays_s.append(max(0.0, next_at - clock.now))  # next_at 0: no delay
        clock.now = max(clock.now, next_at)
    assert delays_s == [0, 0, 0, 1, 2, 4, 4]
    assert _next_at(engine, ANY_USER, "10.0.0.1") <= clock.now  # ten free for the address


def test_free_failures_then_refusals_that_do_not_count(engine: Engine) -> None:
    clock = Clock()
    limiter = LoginLimiter(engine, LoginPolicy(first_delay_s=10.0), clock)
    assert [limiter.attempt("admin", "10.0.0.1") for _ in range(4)] == [0, 0, 0, 0]
    assert limiter.attempt("admin", "10.0.0.1") == 10.0  # the 4th failure set 10 s
    clock.now += 4
    assert limiter.attempt("admin", "10.0.0.1") == 6.0  # refusals neither count nor extend
    assert _rows(engine) == {("admin", "10.0.0.1"): 4, (ANY_USER, "10.0.0.1"): 4}
    assert limiter.attempt("admin", "10.0.0.2") == 0  # another address is not affected
    clock.now += 6
    assert limiter.attempt("admin", "10.0.0.1") == 0  # waited out: the 5th try, counted
    assert limiter.attempt("admin", "10.0.0.1") == 20.0  # and the delay doubled


def test_an_address_trying_many_usernames_is_slowed(engine: Engine) -> None:
    limiter = LoginLimiter(engine, LoginPolicy(first_delay_s=10.0), Clock())
    allowed = [limiter.attempt(f"ghost{i}", "10.0.0.3") == 0 for i in range(13)]
    assert allowed == [True] * 11 + [False] * 2  # ten free failures, the 11th sets a delay
    assert limiter.attempt("ghost0", "10.0.0.4") == 0


def test_success_forgets_the_user_and_takes_back_the_address_count(engine: Engine) -> None:
    limiter = LoginLimiter(engine, LoginPolicy(), Clock())
    for i in range(3):
        assert limiter.attempt("admin", "10.0.0.5") == 0
        assert limiter.attempt(f"ghost{i}", "10.0.0.5") == 0
    assert limiter.attempt("admin", "10.0.0.5") == 0  # the right password this time
    limiter.succeeded("admin", "10.0.0.5")
    rows = _rows(engine)
    assert ("admin", "10.0.0.5") not in rows
    assert rows[(ANY_USER, "10.0.0.5")] == 6  # the earlier failures stay, this one is taken back
    for _ in range(3):  # three free failures again for admin
        assert limiter.attempt("admin", "10.0.0.5") == 0
    limiter.succeeded("nobody", "10.0.0.9")  # nothing to forget: no error, no row
    assert (ANY_USER, "10.0.0.9") not in _rows(engine)


def test_keys_quiet_for_forget_after_start_afresh_and_are_pruned(engine: Engine) -> None:
    clock = Clock()
    policy = LoginPolicy(first_delay_s=100.0, forget_after_s=900.0, prune_every_s=60.0)
    limiter = LoginLimiter(engine, policy, clock)
    for _ in range(4):
        limiter.attempt("admin", "10.0.0.6")
    assert limiter.attempt("admin", "10.0.0.6") == 100.0
    clock.now += 901  # the delay is long over, and the key is quiet long enough: forgotten
    assert [limiter.attempt("admin", "10.0.0.6") for _ in range(4)] == [0, 0, 0, 0]
    assert _rows(engine)[("admin", "10.0.0.6")] == 4  # counted from zero, not from 4
    limiter.attempt("other", "10.0.0.7")
    clock.now += 901
    assert limiter.prune() == 4  # both addresses' keys
    assert _rows(engine) == {}


def test_the_table_is_bounded(engine: Engine) -> None:
    clock = Clock()
    limiter = LoginLimiter(
        engine, LoginPolicy(max_keys=50, free_per_address=100, prune_every_s=1e9), clock
    )
    for i in range(60):
        clock.now += 1
        assert limiter.attempt(f"user{i}", "10.0.0.8") == 0  # 61 keys: 60 users, the address
    assert len(_rows(engine)) == 61
    assert limiter.prune() == 11  # the least recently active go first
    rows = _rows(engine)
    assert len(rows) == 50
    assert (ANY_USER, "10.0.0.8") in rows
    assert ("user59", "10.0.0.8") in rows
    assert ("user10", "10.0.0.8") not in rows
    assert ("user11", "10.0.0.8") in rows


def test_a_clock_ahead_cannot_lock_anyone_out_longer_than_the_max(engine: Engine) -> None:
    """Replicas' wall clocks may disagree: a delay written by one 1000 s ahead is capped."""
    ahead = LoginLimiter(engine, LoginPolicy(max_delay_s=30.0), Clock(T0 + 1000))
    for _ in range(4):
        ahead.attempt("admin", "10.0.0.9")
    behind = LoginLimiter(engine, LoginPolicy(max_delay_s=30.0), Clock(T0))
    assert behind.attempt("admin", "10.0.0.9") == 30.0


def test_long_keys_are_cut_to_the_columns(engine: Engine) -> None:
    limiter = LoginLimiter(engine, LoginPolicy(), Clock())
    assert limiter.attempt("u" * 200, "a" * 200) == 0
    assert _rows(engine)[("u" * 64, "a" * 64)] == 1
    with pytest.raises(ValueError, match="username must not be empty"):
        limiter.attempt(ANY_USER, "10.0.0.1")


def _race(engines: list[Engine], tries: list[tuple[str, str]], policy: LoginPolicy) -> list[float]:
    """Every try at once from its own thread, round robin over the engines (replicas)."""
    limiters = [LoginLimiter(e, policy) for e in engines]
    start = threading.Barrier(len(tries))

    def one(i: int) -> float:
        start.wait(timeout=30)
        user, address = tries[i]
        return limiters[i % len(limiters)].attempt(user, address)

    with concurrent.futures.ThreadPoolExecutor(len(tries)) as pool:
        return list(pool.map(one, range(len(tries))))


def test_concurrent_attempts_on_two_engines_are_counted_once(url: str) -> None:
    """Two replicas, 16 threads each, guessing one user's password from one address: only
    the free failures and the one that starts the delay get through, never 16 per replica."""
    engines = [make_engine(url), make_engine(url)]
    try:
        policy = LoginPolicy(first_delay_s=600.0, max_delay_s=600.0, prune_every_s=0.0)
        waits = _race(engines, [("admin", "10.0.1.1")] * 32, policy)
        assert sum(1 for w in waits if w == 0) == 4, waits
        assert _rows(engines[0]) == {("admin", "10.0.1.1"): 4, (ANY_USER, "10.0.1.1"): 4}
        # Many usernames from one address: the address's own row is shared by all of them.
        waits = _race(engines, [(f"ghost{i}", "10.0.1.2") for i in range(32)], policy)
        assert sum(1 for w in waits if w == 0) == 11, waits
        with engines[1].connect() as conn:
            count = conn.execute(
                select(LOGIN_FAILURES.c.count).where(
                    LOGIN_FAILURES.c.username == ANY_USER, LOGIN_FAILURES.c.address == "10.0.1.2"
                )
            ).scalar_one()
            total = conn.execute(select(func.count()).select_from(LOGIN_FAILURES)).scalar_one()
        assert count == 11
        assert total == 2 + 1 + 11  # refused tries left no rows of their own behind
    finally:
        for e in engines:
            e.dispose()


def test_concurrent_successes_and_failures_do_not_deadlock(url: str) -> None:
    """Attempts, successes and prunes at once on two engines, one address: all finish, and
    the address's count is what the failures left (each success took its attempt back)."""
    engines = [make_engine(url), make_engine(url)]
    try:
        policy = LoginPolicy(free_per_address=1000, free_per_user_address=1000, prune_every_s=0)
        limiters = [LoginLimiter(e, policy) for e in engines]
        start = threading.Barrier(16)

        def one(i: int) -> None:
            start.wait(timeout=30)
            limiter = limiters[i % 2]
            for j in range(10):
                user = f"user{(i + j) % 5}"
                assert limiter.attempt(user, "10.0.2.1") == 0
                if j % 2:
                    limiter.succeeded(user, "10.0.2.1")

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(one, range(16)))
        assert _rows(engines[0])[(ANY_USER, "10.0.2.1")] == 16 * 5
    finally:
        for e in engines:
            e.dispose()
