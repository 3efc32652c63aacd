"""Shared request dependencies: the app's services, typed with Annotated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import Engine

from aggregator.auth import Accounts
from aggregator.core.config import CasesConfig
from aggregator.edges import EdgeRegistry
from aggregator.ingest import IngestServer
from aggregator.media import MediaStore


@dataclass
class Services:
    engine: Engine
    registry: EdgeRegistry
    ingest: IngestServer | None
    media: MediaStore | None = None
    cases: CasesConfig = field(default_factory=CasesConfig)
    accounts: Accounts = field(init=False)

    def __post_init__(self) -> None:
        self.accounts = Accounts(self.engine)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
#: A database row id in a path: bounded, so no request can overflow the integer column.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
