"""Citizen reports: what an Open311 GeoReport v2 POST answers."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RequestCreated(BaseModel):
    """A new service request, as GeoReport v2 answers a POST (a list of one)."""

    service_request_id: str = Field(description="The case id: GET requests/{id}.json shows it.")
    service_notice: str | None = Field(
        description="What happens next: the department and the first deadline."
    )
    account_id: None = Field(description="Always null: citizens have no accounts here.")
