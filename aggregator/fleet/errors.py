"""The refusals of the fleet services, with the HTTP status the API answers them with; the
CLI prints their message on one line (they are StreetwatchErrors)."""

from __future__ import annotations

from contract.config.errors import field_path
from contract.config.yaml_source import Loc
from contract.errors import StreetwatchError


class FleetError(StreetwatchError):
    """A request the fleet services refuse: ``status`` is the HTTP code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ConfigInvalidError(FleetError):
    """A camera config refused before it is stored: each problem as (where in the document,
    what is wrong)."""

    def __init__(self, camera: str, issues: list[tuple[Loc, str]]) -> None:
        listed = "; ".join(f"{field_path(loc)}: {msg}" for loc, msg in issues)
        super().__init__(422, f"camera '{camera}': config refused: {listed}")
        self.camera = camera
        self.issues = issues
