"""Citizen reports: POST /open311/v2/requests.json as Open311 GeoReport v2 says
(application/x-www-form-urlencoded), with a client's api_key and no login; as an extension
a multipart/form-data request may carry a photo in the field ``media``. The report becomes a
case (aggregator/grid/citizen.py); its status is public through GET requests/{id}.json."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, UploadFile

from aggregator.api.deps import ServicesDep
from aggregator.api.schemas.citizen import RequestCreated
from aggregator.api.schemas.common import ErrorPublic, errors
from aggregator.grid.citizen import (
    CitizenDesk,
    CitizenError,
    Filed,
    Photo,
    Report,
    coordinate,
    photo_of,
)
from aggregator.grid.clients import ApiClients

router = APIRouter(prefix="/open311/v2", tags=["open311"])
#: The route, for the body gate's rule (aggregator/main.py).
REQUESTS_PATH = "/open311/v2/requests.json"


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorPublic, "description": description}


#: The refusals of a report beyond the common ones.
REPORT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error(
        "A field is missing or wrong (named): service_code unknown or not open to citizens, "
        "lat/long missing, out of range or outside every grid cell, description too long."
    ),
    403: _error("api_key missing, unknown or revoked, or citizen reports are turned off."),
    413: _error("The photo is larger than grid.citizen.max_photo_bytes."),
    415: _error("The photo is not a JPEG or PNG image."),
    429: _error(
        "The client sent grid.citizen.per_client_per_min reports within a minute: "
        "wait for Retry-After seconds."
    ),
    503: _error("The photo could not be kept; nothing was filed: send the report again."),
}


def _refuse(exc: CitizenError) -> HTTPException:
    headers = None
    if exc.retry_after_s is not None:
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
    return HTTPException(exc.status, str(exc), headers=headers)


def _photo(media: UploadFile | None, max_bytes: int) -> Photo | None:
    """The uploaded photo, read to one byte past the limit at most; an empty file field (a
    form sent without a file) is no photo."""
    if media is None:
        return None
    data = media.file.read(max_bytes + 1)
    return photo_of(data, max_bytes) if data else None


def _notice(filed: Filed) -> str:
    due = datetime.fromtimestamp(filed.due_at, UTC).isoformat(timespec="seconds")
    return (
        f"Filed for {filed.category.department}: {filed.category.stages[0].name} "
        f"by {due}. Follow it at requests/{filed.case_id}.json."
    )


Text = Annotated[str | None, Form()]


@router.post("/requests.json", responses={**REPORT_ERRORS, **errors(422)})
def create_request(
    services: ServicesDep,
    api_key: Text = None,
    service_code: Text = None,
    lat: Text = None,
    long: Text = None,
    address_string: Text = None,
    description: Text = None,
    media_url: Text = None,
    media: Annotated[
        UploadFile | None, File(description="A JPEG or PNG photo (multipart/form-data only).")
    ] = None,
) -> list[RequestCreated]:
    """Report a problem (GeoReport v2 "POST Service Request"): api_key, service_code (a
    category code from services.json), lat and long (WGS 84, inside the city's grid),
    optional address_string and description (kept for staff, never published), and as an
    extension a photo in ``media``. media_url is not fetched. Personal fields (email,
    first_name, last_name, phone, device_id, account_id) are accepted and not stored.
    Answers a list of one with the new service_request_id."""
    if not services.grid.citizen.enabled:
        raise HTTPException(403, "citizen reports are turned off (grid.citizen.enabled)")
    if not api_key:
        raise HTTPException(403, "api_key is missing: ask the city for a client key")
    client = ApiClients(services.engine).client_for_key(api_key)
    if client is None:
        raise HTTPException(403, "api_key is unknown or revoked")
    cfg = services.grid.citizen
    desk = CitizenDesk(
        services.engine, services.catalogue, cfg, services.media, services.modes, services.grid
    )
    try:
        if not service_code:
            raise CitizenError(400, "service_code is missing: GET /open311/v2/services.json")
        report = Report(
            client=client,
            service_code=service_code,
            lat=coordinate(lat, "lat", 90.0),
            lon=coordinate(long, "long", 180.0),
            address=(address_string or "").strip(),
            description=(description or "").strip(),
            photo=_photo(media, cfg.max_photo_bytes),
        )
        filed = desk.file(report)
    except CitizenError as exc:
        raise _refuse(exc) from None
    return [
        RequestCreated(
            service_request_id=str(filed.case_id), service_notice=_notice(filed), account_id=None
        )
    ]
