"""Which edge may report each camera: the first edge to report a camera claims it, and from
then on only that edge may send events about it (an operator can move a camera to another
edge with `bind`, e.g. when a box is replaced).

The ingest checks and claims inside its batch transaction (`owners`, `claim`), so a camera is
never claimed by a message that is not stored.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aggregator.db.models import CAMERA_EDGES
from contract.errors import StreetwatchError
from contract.wire import MAX_CAMERA_CHARS, MAX_EDGE_ID_CHARS


def owners(conn: Connection, cameras: Collection[str]) -> dict[str, str]:
    """{camera: edge id} of the cameras among these that are bound."""
    if not cameras:
        return {}
    c = CAMERA_EDGES.c
    rows = conn.execute(select(c.camera_id, c.edge_id).where(c.camera_id.in_(list(cameras))))
    return {str(camera): str(edge) for camera, edge in rows}


def claim(conn: Connection, claims: Mapping[str, str], now: float) -> None:
    """Bind each camera to its edge unless it is bound already (the first claim stays)."""
    if not claims:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        insert(CAMERA_EDGES).on_conflict_do_nothing(),
        [{"camera_id": cam, "edge_id": edge, "bound_at": now} for cam, edge in claims.items()],
    )


class CameraBindings:
    """The operator's view of the bindings (for the CLI and the API)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list(self) -> dict[str, str]:
        """{camera: edge id} of every bound camera."""
        c = CAMERA_EDGES.c
        with self.engine.connect() as conn:
            return {
                str(cam): str(edge) for cam, edge in conn.execute(select(c.camera_id, c.edge_id))
            }

    def bind(self, camera_id: str, edge_id: str) -> None:
        """Bind the camera to edge_id, replacing any earlier binding."""
        if not 0 < len(camera_id) <= MAX_CAMERA_CHARS:
            raise StreetwatchError(f"camera id '{camera_id}' must be 1..{MAX_CAMERA_CHARS} chars")
        if not 0 < len(edge_id) <= MAX_EDGE_ID_CHARS:
            raise StreetwatchError(f"edge id '{edge_id}' must be 1..{MAX_EDGE_ID_CHARS} chars")
        with self.engine.begin() as conn:
            conn.execute(delete(CAMERA_EDGES).where(CAMERA_EDGES.c.camera_id == camera_id))
            conn.execute(
                CAMERA_EDGES.insert().values(
                    camera_id=camera_id, edge_id=edge_id, bound_at=time.time()
                )
            )

    def release(self, camera_id: str) -> None:
        """Unbind the camera: the next edge to report it claims it."""
        with self.engine.begin() as conn:
            n = conn.execute(
                delete(CAMERA_EDGES).where(CAMERA_EDGES.c.camera_id == camera_id)
            ).rowcount
        if not n:
            raise StreetwatchError(f"camera '{camera_id}' is not bound to any edge")
