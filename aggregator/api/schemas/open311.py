"""Open311 GeoReport v2 (JSON): cases as service requests, event types as services
(https://wiki.open311.org/GeoReport_v2)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

#: GeoReport dates are ISO 8601 with a zone, e.g. 2024-05-01T08:30:00+00:00.
IsoDateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Service(BaseModel):
    """One service per event type the city handles."""

    service_code: str
    service_name: str
    description: str
    metadata: bool = Field(description="Whether the service takes extra attributes: never.")
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str
    group: str


class ServiceRequest(BaseModel):
    """A case as a GeoReport v2 service request."""

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str | None
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: IsoDateTime | None
    updated_datetime: IsoDateTime | None
    expected_datetime: IsoDateTime | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None
