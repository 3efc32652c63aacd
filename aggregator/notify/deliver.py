"""Delivery of queued notifications: each row is leased by one process (a conditional UPDATE,
so two processes never send one row at once, on SQLite and PostgreSQL alike), POSTed signed,
and marked delivered on a 2xx answer or rescheduled with exponential backoff and jitter.

Delivery is at least once: a process killed between the receiver's 2xx and the mark sends the
row again once its lease runs out, with the same X-Streetwatch-Id, which the receiver dedupes
on. So every notification is acted on exactly once."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine, or_, select, update

from aggregator.core.grid_config import GridConfig, WebhookConfig
from aggregator.db.grid_models import NOTIFICATIONS
from aggregator.notify.signing import signed_headers

log = logging.getLogger(__name__)

#: The first retry waits about this long; each next one twice as long, up to max_backoff_s.
BASE_BACKOFF_S = 1.0
#: A lease lasts the attempt's timeout plus this: room to record the answer. A process
#: killed mid-send holds its rows this long at most.
LEASE_MARGIN_S = 10.0
#: Rows one run_once sends at most (a full batch: the loop comes back at once).
BATCH = 50
#: How often the loop looks for due rows when the last round found none.
POLL_S = 0.5
#: How long a row of a webhook no longer configured waits between looks.
UNKNOWN_HOOK_BACKOFF_S = 300.0
#: Answers a receiver gives when it is busy: retried as any failure, without a warning.
_BUSY = (408, 429)


def backoff_s(attempts: int, cap_s: float, rng: random.Random) -> float:
    """The wait before the next try after ``attempts`` failed ones: doubling from
    BASE_BACKOFF_S, capped at cap_s, with half of it random (equal jitter) so rows that
    failed together do not all come back together."""
    full = min(cap_s, BASE_BACKOFF_S * 2.0 ** max(0, attempts - 1))
    return full / 2 + rng.uniform(0, full / 2)


def read_secret(hook: WebhookConfig) -> bytes:
    """The HMAC key in the webhook's secret_file, surrounding whitespace removed; an
    OSError or ValueError naming the file if it cannot be used."""
    try:
        secret = hook.secret_file.read_bytes().strip()
    except OSError as exc:
        raise OSError(f"cannot read webhook secret_file {hook.secret_file}: {exc}") from None
    if not secret:
        raise ValueError(f"webhook secret_file {hook.secret_file} is empty")
    return secret


def body_of(payload: dict[str, Any]) -> bytes:
    """The bytes sent (and signed): compact JSON, keys sorted."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    error: str | None = None
    retry_after_s: float | None = None  # a 429/503 Retry-After, in seconds


class Deliverer:
    """Sends due notifications as worker_id (a process's replica id, shown as leased_by)."""

    def __init__(
        self,
        engine: Engine,
        grid: GridConfig,
        worker_id: str,
        client: httpx.Client | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.grid = grid
        self.worker_id = worker_id[:64]
        self.client = client or httpx.Client(follow_redirects=False)
        self.rng = rng or random.Random()

    def close(self) -> None:
        self.client.close()

    def run_once(self, now: float) -> int:
        """Send the rows due at now that no live lease holds; returns how many were sent
        (delivered or not)."""
        with self.engine.connect() as conn:
            due = conn.execute(
                select(NOTIFICATIONS.c.id, NOTIFICATIONS.c.webhook)
                .where(self._free(now), NOTIFICATIONS.c.next_attempt_at <= now)
                .order_by(NOTIFICATIONS.c.next_attempt_at, NOTIFICATIONS.c.id)
                .limit(BATCH)
            ).all()
        # The round's clock: now, moved on as sending takes time, so a lease taken late in
        # a slow round still runs from when it was taken.
        started = time.monotonic()
        sent = 0
        for row_id, webhook in due:
            row = self._lease(row_id, webhook, now + time.monotonic() - started)
            if row is None:
                continue  # another process leased it since we looked
            outcome = self._send(row)
            self._record(row, outcome, now + time.monotonic() - started)
            sent += 1
        return sent

    @staticmethod
    def _free(now: float) -> Any:
        """Rows not delivered and not held by a live lease."""
        return (NOTIFICATIONS.c.delivered_at.is_(None)) & or_(
            NOTIFICATIONS.c.lease_until.is_(None), NOTIFICATIONS.c.lease_until < now
        )

    def _lease(self, row_id: int, webhook: str, now: float) -> Any:
        """The row, leased to this worker, or None if another has it. The UPDATE re-checks
        the lease condition under the row's write lock (PostgreSQL re-reads a row another
        transaction changed; SQLite writes one at a time), so only one worker matches."""
        hook = self.grid.webhooks.get(webhook)
        lease_s = (hook.timeout_s if hook else 0.0) + LEASE_MARGIN_S
        with self.engine.begin() as conn:
            got = conn.execute(
                update(NOTIFICATIONS)
                .where(
                    NOTIFICATIONS.c.id == row_id,
                    self._free(now),
                    # Not tried meanwhile by another worker (a failure put it off).
                    NOTIFICATIONS.c.next_attempt_at <= now,
                )
                .values(leased_by=self.worker_id, lease_until=now + lease_s)
            ).rowcount
            if got != 1:
                return None
            return conn.execute(select(NOTIFICATIONS).where(NOTIFICATIONS.c.id == row_id)).first()

    def _send(self, row: Any) -> Outcome:
        """One POST of the row to its webhook; what happened, in words for last_error."""
        hook = self.grid.webhooks.get(row.webhook)
        if hook is None:
            known = ", ".join(sorted(self.grid.webhooks)) or "none"
            return Outcome(False, f"webhook {row.webhook!r} is not configured (known: {known})")
        try:
            secret = read_secret(hook)
        except (OSError, ValueError) as exc:
            return Outcome(False, str(exc))
        body = body_of(row.payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "streetwatch-aggregator",
            **signed_headers(secret, row.notification_id, int(time.time()), body),
        }
        try:
            answer = self.client.post(
                hook.url, content=body, headers=headers, timeout=hook.timeout_s
            )
        except httpx.HTTPError as exc:
            return Outcome(False, f"{type(exc).__name__} posting to {hook.url}: {exc}")
        if 200 <= answer.status_code < 300:
            return Outcome(True)
        text = " ".join(answer.text[:120].split())
        error = f"HTTP {answer.status_code} from {hook.url}: {text}"
        if 400 <= answer.status_code < 500 and answer.status_code not in _BUSY:
            # Retried all the same: a receiver with a wrong secret or route is fixed by
            # its owner, and the notice should still arrive then.
            log.warning("webhook %s refused notification %s: %s", row.webhook, row.id, error)
        return Outcome(False, error, _retry_after(answer))

    def _record(self, row: Any, outcome: Outcome, now: float) -> None:
        with self.engine.begin() as conn:
            if outcome.delivered:
                # Whoever holds the lease now: the receiver has it, so it is delivered.
                conn.execute(
                    update(NOTIFICATIONS)
                    .where(NOTIFICATIONS.c.id == row.id, NOTIFICATIONS.c.delivered_at.is_(None))
                    .values(
                        delivered_at=now,
                        attempts=NOTIFICATIONS.c.attempts + 1,
                        leased_by=None,
                        lease_until=None,
                    )
                )
                return
            hook = self.grid.webhooks.get(row.webhook)
            cap = hook.max_backoff_s if hook else UNKNOWN_HOOK_BACKOFF_S
            wait = backoff_s(row.attempts + 1, cap, self.rng)
            if outcome.retry_after_s is not None:
                wait = min(cap, max(wait, outcome.retry_after_s))
            conn.execute(
                update(NOTIFICATIONS)
                .where(
                    NOTIFICATIONS.c.id == row.id,
                    NOTIFICATIONS.c.leased_by == self.worker_id,
                    NOTIFICATIONS.c.delivered_at.is_(None),
                )
                .values(
                    attempts=NOTIFICATIONS.c.attempts + 1,
                    last_error=(outcome.error or "failed")[:300],
                    next_attempt_at=now + wait,
                    leased_by=None,
                    lease_until=None,
                )
            )

    def serve(self, stop: threading.Event) -> None:
        """Send until stop is set: again at once after a full batch, else every POLL_S."""
        while not stop.is_set():
            try:
                sent = self.run_once(time.time())
            except Exception:
                log.exception("notification delivery failed; will try again")
                sent = 0
            if sent < BATCH:
                stop.wait(POLL_S)


def _retry_after(answer: httpx.Response) -> float | None:
    """A Retry-After in seconds (the HTTP-date form is rare for webhooks: ignored)."""
    value = answer.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None
