"""Shared request dependencies: the app's services, typed with Annotated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import anyio
from fastapi import Depends, Path, Request
from sqlalchemy import Engine

from aggregator.auth import Accounts
from aggregator.core.config import CasesConfig, HttpConfig
from aggregator.core.fleet_config import FleetConfig, ModesConfig
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
    http: HttpConfig = field(default_factory=HttpConfig)
    modes: ModesConfig = field(default_factory=ModesConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
    accounts: Accounts = field(init=False)
    #: Password checks at once: argon2 takes 64 MiB each, and waiting logins hold no thread.
    login_slots: anyio.CapacityLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.accounts = Accounts(self.engine)
        self.login_slots = anyio.CapacityLimiter(self.http.login_concurrency)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
#: A database row id in a path: bounded, so no request can overflow the integer column.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
