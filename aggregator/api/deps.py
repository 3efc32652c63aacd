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
from aggregator.core.grid_config import GridConfig
from aggregator.edges import EdgeRegistry
from aggregator.grid.catalogue import Catalogue, load_catalogue
from aggregator.ingest import IngestServer
from aggregator.media import MediaStore
from contract.errors import ConfigError


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
    grid: GridConfig = field(default_factory=GridConfig)
    accounts: Accounts = field(init=False)
    catalogue: Catalogue = field(init=False)
    #: Password checks at once: argon2 takes 64 MiB each, and waiting logins hold no thread.
    login_slots: anyio.CapacityLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.accounts = Accounts(self.engine)
        self.catalogue = load_catalogue(self.cases.catalogue)
        check_webhooks(self.catalogue, self.grid)
        self.login_slots = anyio.CapacityLimiter(self.http.login_concurrency)


def check_webhooks(catalogue: Catalogue, grid: GridConfig) -> None:
    """Every webhook a category or the escalation names is configured (ConfigError if not)."""
    named = [(f"category {c.code}", w) for c in catalogue.categories for w in c.webhooks]
    named += [("grid.supervisor_webhooks", w) for w in grid.supervisor_webhooks]
    missing = [
        f"{where} names webhook {hook!r}" for where, hook in named if hook not in grid.webhooks
    ]
    if missing:
        known = ", ".join(sorted(grid.webhooks)) or "none"
        raise ConfigError(f"{'; '.join(missing)}, which grid.webhooks does not define ({known})")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
#: A database row id in a path: bounded, so no request can overflow the integer column.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
