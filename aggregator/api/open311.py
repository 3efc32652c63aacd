"""Open311 GeoReport v2 (JSON): cases as service requests, catalogue categories as services, so
existing city systems can read them without a custom integration. Public (no login): the status
of every report is open to the citizens who made it. So a citizen's own words (description,
address_string) and photo never appear here; staff see them in the cases API. Citizens post
reports through aggregator/api/citizen.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import ColumnElement, select

from aggregator.api.deps import RowId, ServicesDep
from aggregator.api.schemas.common import errors
from aggregator.api.schemas.open311 import Service, ServiceRequest
from aggregator.db.models import CASES, EVENTS

router = APIRouter(prefix="/open311/v2", tags=["open311"])
CLOSED = ("closed", "cancelled", "verified")


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else None


@router.get("/services.json")
def services_json(services: ServicesDep) -> list[Service]:
    """One service per category of the catalogue: service_code is the category code."""
    return [
        Service(
            service_code=c.code,
            service_name=c.subclass,
            description=f"{c.title}: {c.filing_condition} Handled by {c.department} "
            f"within {c.time_limit_h:g} h.",
            metadata=False,
            type="realtime",
            keywords=f"{c.class_name}, {c.subclass}",
            group=c.class_name,
        )
        for c in services.catalogue.categories
    ]


def _request(row: Any, media: str | None) -> ServiceRequest:
    citizen = row.source == "citizen"
    return ServiceRequest(
        service_request_id=str(row.id),
        status="closed" if row.status in CLOSED else "open",
        status_notes=row.status.replace("_", " "),
        service_name=row.category,
        service_code=row.category_code or row.type,
        # Never the citizen's own text: only what the city wrote (the category's name).
        description=f"{row.category}, reported by a citizen"
        if citizen
        else f"{row.category} at {row.camera}/{row.zone}",
        agency_responsible=row.department,
        service_notice=f"priority {row.priority}",
        requested_datetime=_iso(row.created_at),
        updated_datetime=_iso(row.updated_at),
        expected_datetime=_iso(row.deadline_at),
        address=None if citizen else row.address or None,  # a citizen's address_string
        address_id=row.grid_cell or None,
        zipcode=None,
        lat=row.lat,
        long=row.lon,
        media_url=None if citizen else media,  # a citizen's photo is for staff only
    )


def _epoch(value: datetime, name: str) -> float:
    """Unix seconds; a date the platform cannot convert (year 1, naive) is the caller's error."""
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError, OSError):
        raise HTTPException(422, f"{name} is out of range") from None


def _snapshot_urls(conn: Any, case_ids: list[int]) -> dict[int, str]:
    rows = conn.execute(
        select(EVENTS.c.case_id, EVENTS.c.snapshot_id)
        .where(EVENTS.c.case_id.in_(case_ids), EVENTS.c.snapshot_id.is_not(None))
        .order_by(EVENTS.c.started_ts)
    ).all()
    out: dict[int, str] = {}
    for case_id, snap in rows:
        out.setdefault(case_id, f"/api/v1/media/{snap}")
    return out


@router.get("/requests.json", responses=errors(422))
def requests_json(
    services: ServicesDep,
    service_code: str | None = None,
    status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
) -> list[ServiceRequest]:
    """Service requests (cases), newest first, at most 1000 as the standard suggests; cases
    of drills are never listed."""
    conds: list[ColumnElement[bool]] = [CASES.c.drill.is_(False)]
    if service_code:
        conds.append((CASES.c.category_code == service_code) | (CASES.c.type == service_code))
    if status == "open":
        conds.append(CASES.c.status.not_in(CLOSED))
    elif status == "closed":
        conds.append(CASES.c.status.in_(CLOSED))
    if start_date:
        conds.append(CASES.c.created_at >= _epoch(start_date, "start_date"))
    if end_date:
        conds.append(CASES.c.created_at < _epoch(end_date, "end_date"))
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(CASES).where(*conds).order_by(CASES.c.id.desc()).limit(1000)
        ).all()
        media = _snapshot_urls(conn, [r.id for r in rows])
    return [_request(r, media.get(r.id)) for r in rows]


@router.get("/requests/{request_id}.json", responses=errors(404, 422))
def request_json(request_id: RowId, services: ServicesDep) -> list[ServiceRequest]:
    """One service request (a list of one, as GeoReport v2 answers); a drill's case is not one."""
    with services.engine.connect() as conn:
        row = conn.execute(
            select(CASES).where(CASES.c.id == request_id, CASES.c.drill.is_(False))
        ).first()
        if row is None:
            raise HTTPException(404, f"no service request {request_id}")
        media = _snapshot_urls(conn, [row.id])
    return [_request(row, media.get(row.id))]
