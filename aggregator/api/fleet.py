"""The fleet page: every allowed edge box and the cameras it reports, what each runs and
what it should run, with quiet ones flagged."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select

from aggregator.api.auth import require
from aggregator.api.deps import ServicesDep
from aggregator.api.schemas.common import errors
from aggregator.api.schemas.fleet import FleetCameraPublic, FleetEdgePublic, FleetPublic
from aggregator.db.models import EDGES, FLEET_CAMERAS
from aggregator.fleet.modes import Desired, desired_for

router = APIRouter(
    prefix="/api/v1/fleet",
    tags=["fleet"],
    dependencies=[Depends(require("viewer"))],
    responses=errors(401),
)


def _camera(row: Any, want: Desired, central: bool, quiet: bool) -> FleetCameraPublic:
    # A box on its own config files is asked for the mode only (aggregator/fleet/reconcile.py).
    version = want.config_version if central else None
    return FleetCameraPublic(
        camera=row.camera_id,
        state=row.state,
        fps=row.fps,
        last_event_at=row.last_event_wall,
        config_version=row.config_version,
        mode=row.mode,
        mode_rev=row.mode_rev,
        desired_config_version=version,
        desired_mode=want.mode,
        desired_mode_rev=want.mode_rev,
        in_sync=(row.config_version, row.mode_rev) == (version, want.mode_rev),
        applied_at=row.applied_at,
        error=row.error,
        quiet=quiet,
    )


@router.get("")
def fleet(services: ServicesDep) -> FleetPublic:
    """Every allowed edge box, by id, with its cameras as it last reported them."""
    now = time.time()
    quiet_s = services.fleet.quiet_after_s
    with services.engine.connect() as conn:
        edges = conn.execute(
            select(EDGES).where(EDGES.c.revoked_at.is_(None)).order_by(EDGES.c.edge_id)
        ).all()
        cams = conn.execute(
            select(FLEET_CAMERAS).order_by(FLEET_CAMERAS.c.edge_id, FLEET_CAMERAS.c.camera_id)
        ).all()
        desired = desired_for(conn, {c.camera_id for c in cams}, services.modes, now)
    by_edge: dict[str, list[Any]] = {}
    for c in cams:
        by_edge.setdefault(c.edge_id, []).append(c)
    out = []
    for e in edges:
        edge_quiet = e.last_heard_at is None or now - e.last_heard_at >= quiet_s
        central = e.config_source == "central"
        cameras = [
            _camera(c, desired[c.camera_id], central, edge_quiet or now - c.reported_at >= quiet_s)
            for c in by_edge.get(e.edge_id, [])
        ]
        out.append(
            FleetEdgePublic(
                edge_id=e.edge_id,
                software=e.software,
                config_source=e.config_source,
                last_heard_at=e.last_heard_at,
                outbox_depth=e.outbox_depth,
                quiet=edge_quiet,
                cameras=cameras,
            )
        )
    return FleetPublic(quiet_after_s=quiet_s, edges=out)
