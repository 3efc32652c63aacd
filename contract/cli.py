"""What the `edge` and `aggregator` command lines share: one-line user errors, logging."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from contract.errors import StreetwatchError

EXIT_USER_ERROR = 1
FC = TypeVar("FC", bound=Callable[..., Any])
LOG_LEVELS = click.Choice(["debug", "info", "warning", "error"])
LOG_FORMATS = click.Choice(["text", "json"])


class UserErrorGroup(click.Group):
    """A StreetwatchError becomes ``PROG: error: message`` on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        prog = ctx.find_root().info_name or "streetwatch"
        try:
            return super().invoke(ctx)
        except StreetwatchError as exc:
            click.echo(f"{prog}: error: {exc}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            click.echo(f"{prog}: interrupted", err=True)
            sys.exit(130)


def config_option(help_text: str) -> Callable[[FC], FC]:
    """The required ``--config/-c FILE`` option every command that reads a YAML file takes."""
    return click.option(
        "--config",
        "-c",
        "config_path",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help=help_text,
    )


def log_format_option() -> Callable[[FC], FC]:
    """``--log-format [text|json]`` for a top-level group (envvar STREETWATCH_LOG_FORMAT)."""
    return click.option(
        "--log-format",
        type=LOG_FORMATS,
        default="text",
        show_default=True,
        envvar="STREETWATCH_LOG_FORMAT",
        help="Log lines as text, or as one JSON object a line (for log shippers).",
    )


def setup_logging(level: str, fmt: str = "text") -> None:
    """Log to stderr as text, or with fmt "json" as one JSON object a line: timestamp
    (ISO 8601, UTC), level, logger and message, plus any ``extra=`` keys."""
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler = logging.StreamHandler()
        handler.setFormatter(
            JsonFormatter(
                "%(levelname)s %(name)s %(message)s",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp=True,
            )
        )
        logging.basicConfig(level=level.upper(), handlers=[handler])
    else:
        logging.basicConfig(
            level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    # Alembic announces every plugin it loads at INFO; that is noise in a service log.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def json_logging() -> bool:
    """Whether setup_logging made the root logger write JSON."""
    from pythonjsonlogger.json import JsonFormatter

    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)
