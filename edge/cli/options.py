"""Options more than one `edge` command takes."""

from __future__ import annotations

import click

MOTION_OPTION = click.option(
    "--motion",
    type=click.Choice(["config", "on", "off"]),
    default="config",
    show_default=True,
    help="Motion gating: as the camera config says, or force it on or off.",
)
