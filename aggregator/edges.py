"""The allowlist of edge boxes: CURVE public key -> edge id, revocable without a restart."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

from sqlalchemy import Engine, select, update

from aggregator.db.models import EDGES, EdgeRow
from contract.errors import StreetwatchError

# How long a looked-up allowlist is trusted; revocation takes effect within this.
CACHE_S = 1.0
MISS_RECHECK_S = 0.2


class EdgeRegistry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._by_key: dict[str, str] = {}
        self._loaded = 0.0

    def _refresh(self) -> None:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(EdgeRow.public_key, EdgeRow.edge_id).where(EdgeRow.revoked_at.is_(None))
            ).all()
        self._by_key = {str(k): str(e) for k, e in rows}
        self._loaded = time.monotonic()

    def edge_for_key(self, z85_key: str) -> str | None:
        """The edge id allowed to use this key, or None (unknown or revoked)."""
        with self._lock:
            age = time.monotonic() - self._loaded
            # A key we do not know may have just been added: look again, at most 5 times a second.
            if age > CACHE_S or (z85_key not in self._by_key and age > MISS_RECHECK_S):
                self._refresh()
            return self._by_key.get(z85_key)

    def allowed(self, edge_id: str) -> bool:
        with self._lock:
            if time.monotonic() - self._loaded > CACHE_S:
                self._refresh()
            return edge_id in self._by_key.values()

    def add(self, edge_id: str, z85_key: str) -> bool:
        """Allow the edge with this key. Re-adding a revoked edge, or one with a new key (a
        new box), clears its upload token: the old one must not come back. Returns whether
        the edge now needs a token (``aggregator edges token``)."""
        if len(z85_key) != 40:
            raise StreetwatchError(f"public key for '{edge_id}' must be 40 z85 characters")
        with self.engine.begin() as conn:
            existing = conn.execute(select(EdgeRow).where(EdgeRow.edge_id == edge_id)).first()
            if existing is None:
                conn.execute(
                    EDGES.insert().values(
                        edge_id=edge_id,
                        public_key=z85_key,
                        created_at=time.time(),
                        revoked_at=None,
                        max_seq=0,
                        received=0,
                    )
                )
                return True
            values: dict[str, object] = {"public_key": z85_key, "revoked_at": None}
            if existing.revoked_at is not None or existing.public_key != z85_key:
                values["token_sha256"] = None
            conn.execute(update(EdgeRow).where(EdgeRow.edge_id == edge_id).values(**values))
            return "token_sha256" in values or existing.token_sha256 is None

    def new_token(self, edge_id: str) -> str:
        """A fresh HTTP upload token for the edge; only its hash is kept."""
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            row = conn.execute(select(EdgeRow.revoked_at).where(EdgeRow.edge_id == edge_id)).first()
            if row is None:
                raise StreetwatchError(f"no edge named '{edge_id}': add it first")
            if row.revoked_at is not None:
                raise StreetwatchError(
                    f"edge '{edge_id}' is revoked: allow it again with `aggregator edges add` "
                    "before making it a token"
                )
            conn.execute(
                update(EdgeRow)
                .where(EdgeRow.edge_id == edge_id)
                .values(token_sha256=hashlib.sha256(token.encode()).hexdigest())
            )
        return token

    def revoke(self, edge_id: str) -> None:
        """Refuse the edge from now on, on both channels: its upload token is cleared too."""
        with self.engine.begin() as conn:
            n = conn.execute(
                update(EdgeRow)
                .where(EdgeRow.edge_id == edge_id)
                .values(revoked_at=time.time(), token_sha256=None)
            ).rowcount
        if not n:
            raise StreetwatchError(f"no edge named '{edge_id}'")

    def list(self) -> list[dict[str, object]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(EDGES))]
