"""The allowlist of edge boxes: CURVE public key -> edge id, revocable without a restart."""

from __future__ import annotations

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

    def add(self, edge_id: str, z85_key: str) -> None:
        if len(z85_key) != 40:
            raise StreetwatchError(f"public key for '{edge_id}' must be 40 z85 characters")
        with self.engine.begin() as conn:
            existing = conn.execute(select(EdgeRow).where(EdgeRow.edge_id == edge_id)).first()
            if existing is not None:
                conn.execute(
                    update(EdgeRow)
                    .where(EdgeRow.edge_id == edge_id)
                    .values(public_key=z85_key, revoked_at=None)
                )
            else:
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

    def new_token(self, edge_id: str) -> str:
        """A fresh HTTP upload token for the edge; only its hash is kept."""
        import hashlib
        import secrets

        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            n = conn.execute(
                update(EdgeRow)
                .where(EdgeRow.edge_id == edge_id)
                .values(token_sha256=hashlib.sha256(token.encode()).hexdigest())
            ).rowcount
        if not n:
            raise StreetwatchError(f"no edge named '{edge_id}': add it first")
        return token

    def revoke(self, edge_id: str) -> None:
        with self.engine.begin() as conn:
            n = conn.execute(
                update(EdgeRow).where(EdgeRow.edge_id == edge_id).values(revoked_at=time.time())
            ).rowcount
        if not n:
            raise StreetwatchError(f"no edge named '{edge_id}'")

    def list(self) -> list[dict[str, object]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(EDGES))]
