"""Tables of the grid governance loop (issue 15): the unit grid, staged case deadlines,
notifications out, citizen clients, verification by camera. Same declarative base as
aggregator/db/models.py, kept apart so neither module outgrows one screenful of concepts."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import JSON, Float, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from aggregator.db.models import Base
from contract.wire import MAX_CAMERA_CHARS, MAX_TYPE_CHARS, MAX_ZONE_CHARS

#: Longest grid cell code (GB/T 30428.1 codes are 14-15 digits; local schemes differ).
MAX_CELL_CHARS = 32


class GridCellRow(Base):
    """One cell of the unit grid: the area one office answers for. ``geometry`` is the
    GeoJSON geometry (Polygon or MultiPolygon, WGS 84 lon/lat) as imported; the bounding box
    columns let the map and the point lookup skip far cells without parsing it."""

    __tablename__ = "grid_cells"

    code: Mapped[str] = mapped_column(String(MAX_CELL_CHARS), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    district: Mapped[str] = mapped_column(String(64), index=True)
    responsible: Mapped[str] = mapped_column(String(128))
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    imported_at: Mapped[float] = mapped_column(Float)


class NotificationRow(Base):
    """A webhook notification waiting to be delivered (a durable queue): sent until the
    receiver answers 2xx, with backoff; ``notification_id`` is the idempotency key the
    receiver deduplicates on, so a resend after a crash is harmless."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(String(36), unique=True)
    webhook: Mapped[str] = mapped_column(String(64))  # a name from the webhooks config
    kind: Mapped[str] = mapped_column(String(32))  # filed | escalated | owner_notice | ...
    case_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, index=True)
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    #: Which process holds the row while sending (a lease), and until when.
    leased_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class ApiClientRow(Base):
    """A citizen-report client (an app, a hotline's system): Open311 POSTs carry its key.
    Only the key's SHA-256 is stored."""

    __tablename__ = "api_clients"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class VerificationRow(Base):
    """One check of a case's camera view before closing: asked by a person, answered by the
    edge that owns the camera (still present / cleared), with a fresh snapshot."""

    __tablename__ = "verifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(36), unique=True)
    case_id: Mapped[int] = mapped_column(Integer, index=True)
    camera: Mapped[str] = mapped_column(String(MAX_CAMERA_CHARS))
    zone: Mapped[str] = mapped_column(String(MAX_ZONE_CHARS))
    rule_type: Mapped[str] = mapped_column(String(MAX_TYPE_CHARS))
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[float] = mapped_column(Float)
    #: pending | still_present | cleared | failed (the edge could not look: offline, no rule)
    verdict: Mapped[str] = mapped_column(String(16), default="pending")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    answered_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    # Every ingest replica looks for pending requests twice a second.
    __table_args__ = (Index("ix_verifications_pending", "verdict", "requested_at"),)


GRID_CELLS = cast(Table, GridCellRow.__table__)
NOTIFICATIONS = cast(Table, NotificationRow.__table__)
API_CLIENTS = cast(Table, ApiClientRow.__table__)
VERIFICATIONS = cast(Table, VerificationRow.__table__)
