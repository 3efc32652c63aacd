"""Tables. Events are one row per incident plus every lifecycle message as history."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Column sizes of what edges send are the wire contract's limits: whatever the decoder
# accepts fits (issue 12: one over-long unit stopped the PostgreSQL ingest for every edge).
from contract.wire import (
    MAX_CAMERA_CHARS,
    MAX_EDGE_ID_CHARS,
    MAX_RULE_CHARS,
    MAX_STAGE_CHARS,
    MAX_TYPE_CHARS,
    MAX_UNIT_CHARS,
    MAX_ZONE_CHARS,
)


class Base(DeclarativeBase):
    pass


class EdgeRow(Base):
    __tablename__ = "edges"

    edge_id: Mapped[str] = mapped_column(String(MAX_EDGE_ID_CHARS), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    #: sha256 of the box's HTTP upload token; the token itself is never stored.
    token_sha256: Mapped[str | None] = mapped_column(
        String(64), nullable=True, unique=True, index=True
    )
    #: When an ingest replica last heard the box, and the outbox depth it reported then.
    last_heard_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    outbox_depth: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: From its heartbeats: the software it runs and where its camera configs come from.
    software: Mapped[str | None] = mapped_column(String(32), nullable=True)
    config_source: Mapped[str | None] = mapped_column(String(8), nullable=True)


class EventRow(Base):
    """One incident. On PostgreSQL the table is partitioned by started_ts (migration 0008,
    aggregator/db/partitions.py), so its key carries started_ts, which never changes once the
    event is stored; SQLite keeps a plain table keyed by event_id alone."""

    __tablename__ = "events"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    edge_id: Mapped[str] = mapped_column(String(MAX_EDGE_ID_CHARS), index=True)
    camera: Mapped[str] = mapped_column(String(MAX_CAMERA_CHARS))
    zone: Mapped[str] = mapped_column(String(MAX_ZONE_CHARS))
    rule: Mapped[str] = mapped_column(String(MAX_RULE_CHARS))
    type: Mapped[str] = mapped_column(String(MAX_TYPE_CHARS))
    status: Mapped[str] = mapped_column(String(16))  # open | closed
    started_ts: Mapped[float] = mapped_column(Float, primary_key=True)
    last_ts: Mapped[float] = mapped_column(Float)
    ended_ts: Mapped[float | None] = mapped_column(Float, nullable=True)
    value: Mapped[float] = mapped_column(Float)
    peak: Mapped[float | None] = mapped_column(Float, nullable=True)
    unit: Mapped[str] = mapped_column(String(MAX_UNIT_CHARS))
    severity: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(MAX_STAGE_CHARS), nullable=True)
    boxes: Mapped[list[Any]] = mapped_column(JSON)
    labels: Mapped[list[Any]] = mapped_column(JSON)
    has_start: Mapped[bool] = mapped_column(Boolean, default=False)
    has_end: Mapped[bool] = mapped_column(Boolean, default=False)
    n_messages: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    clip_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    review_status: Mapped[str] = mapped_column(String(16), default="new", server_default="new")
    review_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reviewed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    case_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    #: The operating mode the edge raised it under; drill events stay out of real figures.
    #: Server defaults only, so inserts written for older schemas (migration tests) still work.
    mode: Mapped[str] = mapped_column(String(32), server_default="peacetime")
    drill: Mapped[bool] = mapped_column(Boolean, server_default=false())

    # The review queue filters by one of these and pages newest first.
    __table_args__ = (
        Index("ix_events_camera_started", "camera", "started_ts"),
        Index("ix_events_status_started", "review_status", "started_ts"),
        Index("ix_events_type_started", "type", "started_ts"),
        Index("ix_events_started", "started_ts"),
    )


class EventOwnerRow(Base):
    """Which edge owns each event and the started_ts its events row is filed under: one row
    per event, in a plain table, so that one index probe finds an event's owner however many
    partitions events has, and a new event is claimed atomically (aggregator/event_owners.py)."""

    __tablename__ = "event_owners"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    edge_id: Mapped[str] = mapped_column(String(MAX_EDGE_ID_CHARS))
    started_ts: Mapped[float] = mapped_column(Float)


class MediaRow(Base):
    """An evidence file, stored by content hash; the id comes from the edge, the name never."""

    __tablename__ = "media"

    media_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    edge_id: Mapped[str] = mapped_column(String(MAX_EDGE_ID_CHARS))
    event_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # clip | snapshot
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(32))
    start_ts: Mapped[float] = mapped_column(Float)
    duration_s: Mapped[float] = mapped_column(Float)
    received_at: Mapped[float] = mapped_column(Float, index=True)


class EventMessageRow(Base):
    """Every lifecycle message as history. On PostgreSQL the table is partitioned by ts
    (migration 0008): its key is (id, ts) and each unique key carries ts (a resend is
    byte-identical, so it has the same ts); SQLite keeps the keys without ts."""

    __tablename__ = "event_messages"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    edge_id: Mapped[str] = mapped_column(String(MAX_EDGE_ID_CHARS))
    seq: Mapped[int] = mapped_column(BigInteger)  # the wire's seq is at most MAX_SEQ, 2^63-1
    event_id: Mapped[str] = mapped_column(String(36), index=True)
    phase: Mapped[str] = mapped_column(String(8))
    ts: Mapped[float] = mapped_column(Float)
    value: Mapped[float] = mapped_column(Float)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_wall: Mapped[float] = mapped_column(Float)
    committed_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("edge_id", "seq", "ts", name="uq_message_edge_seq"),
        UniqueConstraint("event_id", "phase", "ts", name="uq_message_lifecycle"),
    )


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))  # argon2id, with its parameters
    role: Mapped[str] = mapped_column(String(16))  # viewer | operator | supervisor | admin
    created_at: Mapped[float] = mapped_column(Float)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class SessionRow(Base):
    """A login. Only the token's hash is stored; logging out revokes it."""

    __tablename__ = "sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginFailureRow(Base):
    """Failed logins of one (username, address), or of an address whatever the username
    (username ''): in the database so that every API replica counts the same tries."""

    __tablename__ = "login_failures"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    next_at: Mapped[float] = mapped_column(Float)  # wall time before which no try is allowed
    last_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_login_failures_last_at", "last_at"),)


class ReplicaRow(Base):
    """A running ingest or API process: where it listens and its counters, refreshed while
    it runs (aggregator/replicas.py)."""

    __tablename__ = "replicas"

    replica_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # ingest | api
    endpoint: Mapped[str] = mapped_column(String(256))
    started_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON)


class CameraRow(Base):
    """Where a camera is; cases inherit it."""

    __tablename__ = "cameras"

    camera_id: Mapped[str] = mapped_column(String(MAX_CAMERA_CHARS), primary_key=True)
    address: Mapped[str] = mapped_column(String(256), default="")
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    grid_cell: Mapped[str] = mapped_column(String(32), default="")
    #: A named group of cameras an operating mode can be switched for (e.g. "riverside").
    camera_group: Mapped[str] = mapped_column(String(64), default="", server_default="")


class CameraEdgeRow(Base):
    """Which edge may report a camera: the first to report it (or the one an operator set).
    Messages of any other edge about the camera are refused (aggregator/cameras.py)."""

    __tablename__ = "camera_edges"

    camera_id: Mapped[str] = mapped_column(String(MAX_CAMERA_CHARS), primary_key=True)
    edge_id: Mapped[str] = mapped_column(String(MAX_EDGE_ID_CHARS), index=True)
    bound_at: Mapped[float] = mapped_column(Float)


class CaseRow(Base):
    """A real problem handed to a department: confirmed events of one camera, zone and type."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera: Mapped[str] = mapped_column(String(MAX_CAMERA_CHARS))
    zone: Mapped[str] = mapped_column(String(MAX_ZONE_CHARS))
    type: Mapped[str] = mapped_column(String(MAX_TYPE_CHARS))
    category: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    assignee: Mapped[str | None] = mapped_column(String(64), nullable=True)
    deadline_at: Mapped[float] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(256), default="")
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    grid_cell: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    closed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: The mode of the event that opened it; a drill case never reaches Open311 or statistics.
    mode: Mapped[str] = mapped_column(String(32), default="peacetime", server_default="peacetime")
    drill: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The grid loop (issue 15): the catalogue category, the district of the cell, the stage
    # of the category's staged deadlines being worked on and when it is due, where the case
    # came from, how often it was sent back (rework) and escalated.
    category_code: Mapped[str] = mapped_column(String(16), default="", server_default="")
    district: Mapped[str] = mapped_column(String(64), default="", server_default="")
    stage_index: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    stage_due_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="camera", server_default="camera")
    reporter: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    photo_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    rework_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    escalated_stage: Mapped[int] = mapped_column(Integer, default=-1, server_default="-1")

    __table_args__ = (
        Index("ix_cases_open_key", "camera", "zone", "type", "status"),
        Index("ix_cases_grid_cell", "grid_cell"),
        Index("ix_cases_photo_id", "photo_id"),  # the retention's hold on citizens' photos
    )


class AuditRow(Base):
    """Every change people make: who, when, what, why."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(16))  # event | case
    entity_id: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(String(512), nullable=True)


class CameraConfigRow(Base):
    """One version of a camera's central config: the whole document, who saved it and why.
    Versions only grow; a rollback saves an earlier document again as a new version."""

    __tablename__ = "camera_configs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(MAX_CAMERA_CHARS))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (UniqueConstraint("camera_id", "version", name="uq_camera_config_version"),)


class ModeSwitchRow(Base):
    """A switch of the operating mode for a scope, now or scheduled; its id is the mode
    revision edges report. The table is the audit trail: rows are never changed but for
    ``cancelled_at``."""

    __tablename__ = "mode_switches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mode: Mapped[str] = mapped_column(String(32))
    scope_kind: Mapped[str] = mapped_column(String(8))  # city | area | group | camera
    scope_value: Mapped[str] = mapped_column(String(64), default="", server_default="")
    starts_at: Mapped[float] = mapped_column(Float, index=True)
    ends_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[float] = mapped_column(Float)
    cancelled_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class FleetCameraRow(Base):
    """What each edge's camera last reported (heartbeats and config reports), written by the
    ingest replicas' beacons."""

    __tablename__ = "fleet_cameras"

    edge_id: Mapped[str] = mapped_column(String(MAX_EDGE_ID_CHARS), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(MAX_CAMERA_CHARS), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    fps: Mapped[float] = mapped_column(Float, default=0.0)
    config_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    mode: Mapped[str] = mapped_column(String(32), default="peacetime")
    mode_rev: Mapped[int] = mapped_column(Integer, default=0)
    last_event_wall: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    reported_at: Mapped[float] = mapped_column(Float)
    #: When the ingest heard the camera apply its current (config_version, mode_rev).
    applied_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: The desired state the edge refused (and rolled back from): not pushed again.
    failed_config_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    failed_mode_rev: Mapped[int | None] = mapped_column(Integer, nullable=True)


# Core table handles for bulk statements (the ORM classes stay the schema's one source).
EDGES = cast(Table, EdgeRow.__table__)
EVENTS = cast(Table, EventRow.__table__)
MESSAGES = cast(Table, EventMessageRow.__table__)
EVENT_OWNERS = cast(Table, EventOwnerRow.__table__)
MEDIA = cast(Table, MediaRow.__table__)
USERS = cast(Table, UserRow.__table__)
SESSIONS = cast(Table, SessionRow.__table__)
CAMERAS = cast(Table, CameraRow.__table__)
CAMERA_EDGES = cast(Table, CameraEdgeRow.__table__)
CASES = cast(Table, CaseRow.__table__)
AUDIT = cast(Table, AuditRow.__table__)
LOGIN_FAILURES = cast(Table, LoginFailureRow.__table__)
REPLICAS = cast(Table, ReplicaRow.__table__)
CAMERA_CONFIGS = cast(Table, CameraConfigRow.__table__)
MODE_SWITCHES = cast(Table, ModeSwitchRow.__table__)
FLEET_CAMERAS = cast(Table, FleetCameraRow.__table__)
