"""Shared request dependencies: the app's services, typed with Annotated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from aggregator.edges import EdgeRegistry
from aggregator.ingest import IngestServer
from aggregator.media import MediaStore


@dataclass
class Services:
    engine: Engine
    registry: EdgeRegistry
    ingest: IngestServer | None
    media: MediaStore | None = None


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
