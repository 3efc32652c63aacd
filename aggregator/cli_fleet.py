"""``aggregator modes`` and ``aggregator configs``: operating-mode switches and central camera
configs from the command line, through the same services as the API (validated, versioned,
audited). The actor recorded is --actor, else $USER, else "cli"."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from contract.cli import config_option
from contract.errors import StreetwatchError

CONFIG = config_option("Aggregator config YAML.")
ACTOR = click.option(
    "--actor", default=None, help="Who does it, for the audit trail (default: $USER, or cli)."
)
REASON = click.option("--reason", required=True, help="Why, for the audit trail.")
SCOPE = click.option(
    "--scope",
    default="city",
    show_default=True,
    help="city, area:<grid cell>, group:<camera group> or camera:<camera id>.",
)


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return os.environ.get("USER") or getpass.getuser() or "cli"
    except (KeyError, OSError):  # no user name for this uid
        return "cli"


def _services(config_path: Path) -> tuple[Any, Any]:
    """The config and an engine on its migrated database (as the other commands do)."""
    from aggregator.cli import _database

    return _database(config_path)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _epoch(text: str, option: str) -> float:
    """Unix seconds of an ISO 8601 time; one without a zone is local time."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise StreetwatchError(
            f"{option} '{text}' is not an ISO 8601 time (e.g. 2030-05-01T08:00+02:00)"
        ) from None


@click.group()
def modes() -> None:
    """Operating modes: switch a scope now or on a schedule, cancel, list."""


def _switch_line(sw: Any) -> str:
    until = f" until {_when(sw.ends_at)}" if sw.ends_at is not None else ""
    cancelled = f" (cancelled {_when(sw.cancelled_at)})" if sw.cancelled_at is not None else ""
    return (
        f"#{sw.id:<5} {sw.mode:<12} {sw.scope!s:<24} from {_when(sw.starts_at)}{until}"
        f"{cancelled}  by {sw.actor}: {sw.reason}"
    )


@modes.command("list")
@CONFIG
@click.option("--history", "history", is_flag=True, help="Every switch, newest first.")
def modes_list(config_path: Path, history: bool) -> None:
    """The defined modes, the switches in force and those scheduled."""
    from aggregator.fleet.modes import ModeSwitches

    cfg, engine = _services(config_path)
    switches = ModeSwitches(engine, cfg.modes)
    if history:
        for sw in switches.history(1000):
            click.echo(_switch_line(sw))
        return
    names = ", ".join(
        f"{n}{' (drill)' if d.drill else ''}" for n, d in cfg.modes.definitions.items()
    )
    click.echo(f"modes: {names}")
    active = switches.active()
    click.echo("in force:" if active else "in force: none (peacetime everywhere)")
    for sw in active:
        click.echo("  " + _switch_line(sw))
    for sw in switches.scheduled():
        click.echo("scheduled: " + _switch_line(sw))


def _switch(
    config_path: Path,
    mode: str,
    scope: str,
    reason: str,
    actor: str | None,
    start: float | None = None,
    end: float | None = None,
) -> None:
    from aggregator.fleet.modes import ModeSwitches

    cfg, engine = _services(config_path)
    sw = ModeSwitches(engine, cfg.modes).switch(mode, scope, _actor(actor), reason, start, end)
    click.echo(f"switched: {_switch_line(sw)}")


@modes.command("set")
@CONFIG
@click.argument("mode")
@SCOPE
@REASON
@ACTOR
def modes_set(config_path: Path, mode: str, scope: str, reason: str, actor: str | None) -> None:
    """Switch SCOPE to MODE now; running edges apply it within seconds."""
    _switch(config_path, mode, scope, reason, actor)


@modes.command("schedule")
@CONFIG
@click.argument("mode")
@SCOPE
@click.option("--start", required=True, help="ISO 8601 time it starts (no zone: local time).")
@click.option("--end", default=None, help="ISO 8601 time it ends (default: never).")
@REASON
@ACTOR
def modes_schedule(
    config_path: Path,
    mode: str,
    scope: str,
    start: str,
    end: str | None,
    reason: str,
    actor: str | None,
) -> None:
    """Switch SCOPE to MODE from --start to --end (a market day, a festival)."""
    until = _epoch(end, "--end") if end is not None else None
    _switch(config_path, mode, scope, reason, actor, _epoch(start, "--start"), until)


@modes.command("cancel")
@CONFIG
@click.argument("switch_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--reason", default=None, help="Why, for the audit trail.")
@ACTOR
def modes_cancel(config_path: Path, switch_id: int, reason: str | None, actor: str | None) -> None:
    """Cancel switch SWITCH_ID (in force or scheduled): its scope falls back."""
    from aggregator.fleet.modes import ModeSwitches

    cfg, engine = _services(config_path)
    sw = ModeSwitches(engine, cfg.modes).cancel(switch_id, _actor(actor), reason)
    click.echo(f"cancelled: {_switch_line(sw)}")


@click.group()
def configs() -> None:
    """Central camera configs: push a new version, history, rollback."""


def _camera_configs(config_path: Path) -> Any:
    from aggregator.fleet.configs import CameraConfigs

    cfg, engine = _services(config_path)
    return CameraConfigs(engine, cfg.fleet, cfg.modes)


def _version_line(v: Any) -> str:
    return f"v{v.version:<4} {_when(v.created_at)}  {v.sha256[:12]}  by {v.author}: {v.reason}"


@configs.command("push")
@CONFIG
@click.argument("camera")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@REASON
@ACTOR
def configs_push(
    config_path: Path, camera: str, file: Path, reason: str, actor: str | None
) -> None:
    """Validate camera config FILE (YAML) and save it as CAMERA's next version; the ingest
    pushes it to the camera's edge. Errors name file:line and the field."""
    from aggregator.fleet.errors import ConfigInvalidError
    from contract.config.errors import field_path
    from contract.config.yaml_source import read_yaml

    doc = read_yaml(file)
    store = _camera_configs(config_path)
    try:
        saved = store.save(camera, doc.data, _actor(actor), reason)
    except ConfigInvalidError as exc:
        listed = "; ".join(f"{doc.where(loc)}: {field_path(loc)}: {msg}" for loc, msg in exc.issues)
        raise StreetwatchError(f"camera '{camera}': config refused: {listed}") from None
    click.echo(f"camera {camera}: saved {_version_line(saved)}")


@configs.command("history")
@CONFIG
@click.argument("camera")
def configs_history(config_path: Path, camera: str) -> None:
    """CAMERA's config versions, newest first."""
    versions = _camera_configs(config_path).history(camera)
    if not versions:
        raise StreetwatchError(f"camera '{camera}' has no central config")
    for v in versions:
        click.echo(_version_line(v))


@configs.command("rollback")
@CONFIG
@click.argument("camera")
@click.argument("version", type=click.IntRange(1, 2**31 - 1))
@REASON
@ACTOR
def configs_rollback(
    config_path: Path, camera: str, version: int, reason: str, actor: str | None
) -> None:
    """Save VERSION's document again as CAMERA's newest version."""
    saved = _camera_configs(config_path).rollback(camera, version, _actor(actor), reason)
    click.echo(f"camera {camera}: v{version} restored as {_version_line(saved)}")
