"""`aggregator clients`: the api_keys of citizen-report clients (Open311 POST)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from contract.cli import config_option

if TYPE_CHECKING:
    from aggregator.grid.clients import ApiClients

CONFIG = config_option("Aggregator config YAML.")


def _clients(config_path: Path) -> ApiClients:
    # Imported here: `aggregator --help` need not load the database layer.
    from aggregator.cli import _database
    from aggregator.grid.clients import ApiClients

    return ApiClients(_database(config_path)[1])


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds") if ts else "-"


@click.group()
def clients() -> None:
    """Citizen-report clients: apps or hotline systems that POST Open311 requests."""


@clients.command("add")
@CONFIG
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the api_key to this file (mode 600) instead of printing it.",
)
def clients_add(config_path: Path, name: str, out: Path | None) -> None:
    """Add client NAME (or allow a revoked one again) with a new api_key, shown only now:
    the database keeps its SHA-256 alone."""
    from contract.keys import write_secret

    key = _clients(config_path).add(name)
    if out is None:
        click.echo(key)
        return
    write_secret(out, key + "\n")
    click.echo(f"api_key of client {name} written to {out}")


@clients.command("list")
@CONFIG
def clients_list(config_path: Path) -> None:
    """Every client: name, when its key was made, when it was revoked."""
    for c in _clients(config_path).list():
        state = f"revoked {_when(c.revoked_at)}" if c.revoked_at else "active"
        click.echo(f"{c.name:<32} created {_when(c.created_at)}  {state}")


@clients.command("revoke")
@CONFIG
@click.argument("name")
def clients_revoke(config_path: Path, name: str) -> None:
    """Refuse client NAME's api_key from now on (403); its reports stay cases."""
    _clients(config_path).revoke(name)
    click.echo(f"client {name} revoked")
