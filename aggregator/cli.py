"""The ``aggregator`` command line. User errors print one line and exit 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from aggregator.cli_clients import clients
from aggregator.cli_fleet import configs, modes
from aggregator.cli_grid import grid
from contract.cli import (
    LOG_LEVELS,
    UserErrorGroup,
    config_option,
    log_format_option,
    setup_logging,
)
from contract.errors import StreetwatchError

CONFIG = config_option("Aggregator config YAML.")


@click.group(cls=UserErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=LOG_LEVELS,
    default="info",
    show_default=True,
    help="How much the service logs to stderr.",
)
@log_format_option()
def cli(log_level: str, log_format: str) -> None:
    """Streetwatch aggregator: central ingest, storage and review."""
    setup_logging(log_level, log_format)


def _load(config_path: Path) -> Any:
    from aggregator.core.config import load_aggregator_config

    return load_aggregator_config(config_path)


def _database(config_path: Path) -> tuple[Any, Any]:
    """The config and an engine on its database, migrated to the current schema."""
    from aggregator.db.engine import make_engine, migrate

    cfg = _load(config_path)
    migrate(cfg.database_url)
    return cfg, make_engine(cfg.database_url)


REPLICA_ID = click.option(
    "--replica-id",
    default=None,
    help="Name of this process in the replicas list and logs (default: host/kind/pid).",
)


@cli.command()
@CONFIG
@REPLICA_ID
def serve(config_path: Path, replica_id: str | None) -> None:
    """Run the HTTP API and the ZeroMQ ingest in one process (migrates the database first).
    For small sites; larger ones run `ingest` and `api` replicas instead."""
    from aggregator.processes import serve as run

    run(_load(config_path), replica_id)


@cli.command()
@CONFIG
@REPLICA_ID
@click.option("--bind", default=None, help="ZeroMQ endpoint to listen on (default: ingest.bind).")
@click.option(
    "--health-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port of this replica's /healthz, /readyz, /metrics (default: ingest.health_port).",
)
def ingest(
    config_path: Path, replica_id: str | None, bind: str | None, health_port: int | None
) -> None:
    """Run one ingest replica: the ZeroMQ ingest alone. Run several, each on its own bind,
    on one PostgreSQL database; edges list them all (aggregator.endpoints)."""
    from aggregator.processes import run_ingest

    cfg = _load(config_path)
    changes = {"bind": bind, "health_port": health_port}
    ingest_cfg = cfg.ingest.model_copy(update={k: v for k, v in changes.items() if v is not None})
    run_ingest(cfg.model_copy(update={"ingest": ingest_cfg}), replica_id)


@cli.command()
@CONFIG
@REPLICA_ID
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="HTTP port (default: http.port).",
)
def api(config_path: Path, replica_id: str | None, port: int | None) -> None:
    """Run one API replica: the HTTP API and review UI alone, on the shared database."""
    from aggregator.processes import run_api

    cfg = _load(config_path)
    if port is not None:
        cfg = cfg.model_copy(update={"http": cfg.http.model_copy(update={"port": port})})
    run_api(cfg, replica_id)


@cli.group()
def edges() -> None:
    """Manage the edge boxes allowed to send events."""


def _registry(config_path: Path) -> Any:
    from aggregator.edges import EdgeRegistry

    return EdgeRegistry(_database(config_path)[1])


@edges.command("add")
@CONFIG
@click.argument("edge_id")
@click.argument("public_key", type=click.Path(dir_okay=False, path_type=Path))
def edges_add(config_path: Path, edge_id: str, public_key: Path) -> None:
    """Allow EDGE_ID with the CURVE public key in file PUBLIC_KEY (its .key file)."""
    from contract.keys import load_public

    key = load_public(public_key).decode()
    needs_token = _registry(config_path).add(edge_id, key)
    click.echo(f"edge {edge_id} allowed ({key})")
    if needs_token:
        click.echo(f"it has no upload token: make one with `aggregator edges token {edge_id}`")


@edges.command("token")
@CONFIG
@click.argument("edge_id")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the token to this file (mode 600) instead of printing it.",
)
def edges_token(config_path: Path, edge_id: str, out: Path | None) -> None:
    """Make a new evidence-upload token for EDGE_ID (the old one stops working)."""
    from contract.keys import write_secret

    token = _registry(config_path).new_token(edge_id)
    if out is None:
        click.echo(token)
        return
    write_secret(out, token + "\n")  # mode 600, even over an old file of another mode
    click.echo(f"token for {edge_id} written to {out}")


@cli.group()
def media() -> None:
    """Evidence files."""


@media.command("prune")
@CONFIG
def media_prune(config_path: Path) -> None:
    """Apply retention now: by age, then by total size (dismissed events' evidence first)."""
    from aggregator.media import MediaStore

    cfg, engine = _database(config_path)
    n = MediaStore(
        cfg.media, engine, max_age_days_by_mode=cfg.modes.evidence_max_age_days()
    ).prune()
    click.echo(f"removed {n} evidence files")


@cli.group()
def db() -> None:
    """The database: migrations run on every start; partitions and event retention."""


@db.command("maintain")
@CONFIG
def db_maintain(config_path: Path) -> None:
    """Make time partitions ahead and drop those past retention.events_max_age_days now
    (PostgreSQL; every aggregator process also does it every retention.maintain_every_s)."""
    import time

    from aggregator.db.partitions import drop_expired, ensure_partitions

    cfg, engine = _database(config_path)
    retention, now_s = cfg.retention, time.time()
    made = ensure_partitions(engine, now_s, retention.partition_days, retention.partitions_ahead)
    click.echo(f"partitions made: {', '.join(made) or 'none needed'}")
    if retention.events_max_age_days is None:
        click.echo("retention.events_max_age_days is unset: events are kept")
        return
    dropped = drop_expired(engine, now_s, retention.events_max_age_days)
    click.echo(f"partitions dropped: {', '.join(dropped) or 'none expired'}")


@edges.command("revoke")
@CONFIG
@click.argument("edge_id")
def edges_revoke(config_path: Path, edge_id: str) -> None:
    """Refuse EDGE_ID from now on (its upload token too); a running service applies it
    within a second."""
    _registry(config_path).revoke(edge_id)
    click.echo(f"edge {edge_id} revoked; its upload token is cleared")


@edges.command("list")
@CONFIG
def edges_list(config_path: Path) -> None:
    """Show the edges, their keys and whether they are revoked."""
    for e in _registry(config_path).list():
        state = "revoked" if e["revoked_at"] else "allowed"
        click.echo(f"{e['edge_id']:<24} {state:<8} {e['public_key']}  received {e['received']}")


@cli.group()
def users() -> None:
    """Operator accounts (viewer, operator, supervisor, admin)."""


@users.command("add")
@CONFIG
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["viewer", "operator", "supervisor", "admin"]),
    default="operator",
    show_default=True,
    help="What the account may do.",
)
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Read the password from this file instead of asking for it.",
)
def users_add(config_path: Path, username: str, role: str, password_file: Path | None) -> None:
    """Create an account; `--role admin` for the first one."""
    from aggregator.auth import Accounts

    if password_file is not None:
        try:
            password = password_file.read_text().strip()
        except OSError as exc:
            raise StreetwatchError(f"{password_file}: cannot read: {exc.strerror}") from None
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    Accounts(_database(config_path)[1]).add_user(username, password, role)
    click.echo(f"user {username} ({role}) created")


@users.command("list")
@CONFIG
def users_list(config_path: Path) -> None:
    """Show the accounts and their roles."""
    from aggregator.auth import Accounts

    for u in Accounts(_database(config_path)[1]).list_users():
        click.echo(f"{u.username:<24} {u.role}")


@cli.group()
def cameras() -> None:
    """Where cameras are; cases inherit their location."""


@cameras.command("set")
@CONFIG
@click.argument("camera_id")
@click.option("--address", default="", help="Street address shown on cases.")
@click.option("--lat", type=click.FloatRange(-90, 90), default=None, help="Latitude, degrees.")
@click.option("--lon", type=click.FloatRange(-180, 180), default=None, help="Longitude, degrees.")
@click.option("--grid-cell", default="", help="The city's grid cell code for the location.")
@click.option(
    "--group", default="", help="A camera group operating modes can be switched for (group:NAME)."
)
def cameras_set(
    config_path: Path,
    camera_id: str,
    address: str,
    lat: float | None,
    lon: float | None,
    grid_cell: str,
    group: str,
) -> None:
    """Record or change a camera's location and group. With a position and no --grid-cell,
    the camera is placed in the imported grid cell that contains it."""
    from sqlalchemy import delete, select

    from aggregator.db.grid_models import GRID_CELLS
    from aggregator.db.models import CAMERAS
    from aggregator.grid.cells import Grid

    with _database(config_path)[1].begin() as conn:
        if grid_cell:
            known = conn.execute(select(GRID_CELLS.c.code).where(GRID_CELLS.c.code == grid_cell))
            has_grid = conn.execute(select(GRID_CELLS.c.code).limit(1)).first() is not None
            if has_grid and known.first() is None:
                raise StreetwatchError(f"grid cell '{grid_cell}' is not in the imported grid")
        elif lat is not None and lon is not None:
            cell = Grid.cell_at(conn, lon, lat)
            grid_cell = cell.code if cell else ""
        conn.execute(delete(CAMERAS).where(CAMERAS.c.camera_id == camera_id))
        conn.execute(
            CAMERAS.insert().values(
                camera_id=camera_id,
                address=address,
                lat=lat,
                lon=lon,
                grid_cell=grid_cell,
                camera_group=group,
            )
        )
    click.echo(f"camera {camera_id}: {address or '-'} ({lat}, {lon}) {grid_cell} {group}".rstrip())


@cli.group()
def keys() -> None:
    """Manage the aggregator's own CURVE key pair."""


@keys.command("generate")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("keys"),
    show_default=True,
    help="Folder for the key files.",
)
@click.option("--name", default="aggregator", show_default=True, help="Base name of the files.")
def keys_generate(directory: Path, name: str) -> None:
    """Write NAME.key (give to every edge) and NAME.key_secret (mode 600, keep here)."""
    from contract.keys import generate

    public, secret = generate(directory, name)
    click.echo(f"{public}\n{secret}")


cli.add_command(modes)
cli.add_command(configs)
cli.add_command(grid)
cli.add_command(clients)


def main() -> None:
    cli(prog_name="aggregator")


if __name__ == "__main__":
    main()
