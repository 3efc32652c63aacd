"""Citizen-report clients (an app, a hotline's system): each posts Open311 service requests
with its own api_key. Only the key's SHA-256 is stored, so a copy of the database gives no
working key; a key is found by its hash, so the lookup leaks nothing about the key itself."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from aggregator.db.grid_models import API_CLIENTS
from contract.errors import StreetwatchError

#: A client's name: it becomes the reporter of its cases, the audit user "client:NAME" and
#: the owner "citizen:NAME" of its photos (an evidence owner has at most 64 characters).
CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,55}$")
#: Longest api_key looked up: keys made here have 43 characters; longer is not one of ours.
MAX_KEY_CHARS = 256


class ClientError(StreetwatchError):
    """A client command refused: the message names the client and what is wrong."""


@dataclass(frozen=True)
class ApiClient:
    name: str
    created_at: float
    revoked_at: float | None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiClients:
    """The stored clients: add (a new key), revoke, list, and the client of a key."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, name: str) -> str:
        """A new client, or a revoked one again, with a new key (returned: shown once)."""
        if not CLIENT_NAME.match(name):
            raise ClientError(
                f"client name {name[:80]!r} must be 1..56 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        key = secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(API_CLIENTS.c.revoked_at).where(API_CLIENTS.c.name == name)
            ).first()
            if row is None:
                conn.execute(
                    API_CLIENTS.insert().values(name=name, key_sha256=key_hash(key), created_at=now)
                )
            elif row.revoked_at is None:
                raise ClientError(
                    f"client '{name}' exists and is active: revoke it first to give it a new key"
                )
            else:
                conn.execute(
                    update(API_CLIENTS)
                    .where(API_CLIENTS.c.name == name)
                    .values(key_sha256=key_hash(key), created_at=now, revoked_at=None)
                )
        return key

    def revoke(self, name: str) -> None:
        """Refuse the client's key from now on (its cases stay)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(API_CLIENTS.c.revoked_at).where(API_CLIENTS.c.name == name)
            ).first()
            if row is None:
                raise ClientError(f"no client named '{name}'")
            if row.revoked_at is not None:
                raise ClientError(f"client '{name}' is revoked already")
            conn.execute(
                update(API_CLIENTS).where(API_CLIENTS.c.name == name).values(revoked_at=time.time())
            )

    def list(self) -> list[ApiClient]:
        c = API_CLIENTS.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.name, c.created_at, c.revoked_at).order_by(c.name))
            return [ApiClient(r.name, r.created_at, r.revoked_at) for r in rows]

    def client_for_key(self, key: str) -> str | None:
        """The active client whose key this is, or None (unknown, revoked, malformed)."""
        if not key or len(key) > MAX_KEY_CHARS:
            return None
        c = API_CLIENTS.c
        with self.engine.connect() as conn:
            name = conn.execute(
                select(c.name).where(c.key_sha256 == key_hash(key), c.revoked_at.is_(None))
            ).scalar()
        return str(name) if name is not None else None
