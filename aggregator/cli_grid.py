"""`aggregator grid`: import the unit grid from GeoJSON and list it."""

from __future__ import annotations

from pathlib import Path

import click

from contract.cli import config_option

CONFIG = config_option("Aggregator config YAML.")


@click.group()
def grid() -> None:
    """The unit grid: cells with their district and responsible office."""


@grid.command("import")
@CONFIG
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--replace", is_flag=True, help="Remove stored cells this file does not have (a new grid)."
)
def grid_import(config_path: Path, file: Path, replace: bool) -> None:
    """Import cells from a GeoJSON FeatureCollection of Polygons or MultiPolygons (WGS 84),
    each with properties code, name, district and responsible. Cameras with a position are
    placed in the cell that contains them."""
    from aggregator.cli import _database
    from aggregator.grid.cells import Grid, read_grid

    cells = read_grid(file)  # before the database: a bad file changes nothing
    stored, placed = Grid(_database(config_path)[1]).import_cells(cells, replace=replace)
    districts = len({c.district for c in cells})
    click.echo(f"{stored} cells in {districts} district(s) imported; {placed} camera(s) placed")


@grid.command("list")
@CONFIG
def grid_list(config_path: Path) -> None:
    """Every cell: code, district, name, responsible office."""
    from aggregator.cli import _database
    from aggregator.grid.cells import Grid

    for c in Grid(_database(config_path)[1]).list_cells():
        click.echo(f"{c.code:<16} {c.district:<20} {c.name:<32} {c.responsible}")
