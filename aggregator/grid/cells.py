"""The unit grid (GB/T 30428.1): cells imported from GeoJSON, the cell a point lies in, and
cameras placed in cells. Geometry is checked and searched with Shapely (GEOS), the
reference planar geometry engine, rather than hand-written ring tests."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, shape
from sqlalchemy import Connection, Engine, delete, select, update

from aggregator.db.grid_models import GRID_CELLS, MAX_CELL_CHARS
from aggregator.db.models import CAMERAS
from contract.errors import StreetwatchError

#: Largest grid file read: a city's grid is a few MB; more is a mistake or an attack.
MAX_GRID_BYTES = 64 * 1024 * 1024
#: Properties a cell feature carries (code and name required).
TEXT_LIMITS = {"code": MAX_CELL_CHARS, "name": 128, "district": 64, "responsible": 128}


class GridError(StreetwatchError):
    """A grid file refused: the message names the feature and what is wrong."""


@dataclass(frozen=True)
class Cell:
    code: str
    name: str
    district: str
    responsible: str
    geometry: dict[str, Any]  # GeoJSON geometry, lon/lat


def _text(props: dict[str, Any], key: str, where: str, required: bool) -> str:
    value = props.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str | int):
        raise GridError(f"{where}: properties.{key} must be text, got {type(value).__name__}")
    text = str(value).strip()
    if required and not text:
        raise GridError(f"{where}: properties.{key} is missing")
    if len(text) > TEXT_LIMITS[key]:
        raise GridError(
            f"{where}: properties.{key} has {len(text)} characters, at most {TEXT_LIMITS[key]}"
        )
    return text


def _geometry(feature: dict[str, Any], where: str) -> dict[str, Any]:
    raw = feature.get("geometry")
    if not isinstance(raw, dict) or raw.get("type") not in ("Polygon", "MultiPolygon"):
        kind = raw.get("type") if isinstance(raw, dict) else type(raw).__name__
        raise GridError(f"{where}: geometry must be a Polygon or MultiPolygon, got {kind}")
    try:
        geom = shape(raw)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise GridError(f"{where}: geometry is malformed: {exc}") from None
    if geom.is_empty or not shapely.is_valid(geom):
        raise GridError(f"{where}: geometry is invalid: {shapely.is_valid_reason(geom)}")
    min_lon, min_lat, max_lon, max_lat = geom.bounds
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise GridError(f"{where}: coordinates must be WGS 84 longitude, latitude in degrees")
    return dict(shapely.geometry.mapping(geom))


def parse_grid(data: Any, source: str) -> list[Cell]:
    """The cells of a GeoJSON FeatureCollection; every problem names the feature."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise GridError(f"{source}: expected a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list) or not features:
        raise GridError(f"{source}: features must be a non-empty list")
    cells: dict[str, Cell] = {}
    for i, feature in enumerate(features):
        where = f"{source}: features[{i}]"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise GridError(f"{where}: expected a Feature")
        props = feature.get("properties")
        if not isinstance(props, dict):
            raise GridError(f"{where}: properties must be an object")
        code = _text(props, "code", where, required=True)
        where = f"{where} (cell {code})"
        if code in cells:
            raise GridError(f"{where}: code {code} appears twice")
        cells[code] = Cell(
            code=code,
            name=_text(props, "name", where, required=True),
            district=_text(props, "district", where, required=False),
            responsible=_text(props, "responsible", where, required=False),
            geometry=_geometry(feature, where),
        )
    return list(cells.values())


def read_grid(path: Path) -> list[Cell]:
    """Parse a GeoJSON file of cells (GridError names the file and feature)."""
    try:
        size = path.stat().st_size
        if size > MAX_GRID_BYTES:
            raise GridError(f"{path}: {size} bytes, at most {MAX_GRID_BYTES}")
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise GridError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise GridError(f"{path}: not readable GeoJSON: {exc}") from None
    return parse_grid(data, str(path))


def _polygon(cell_geometry: dict[str, Any]) -> Polygon | MultiPolygon:
    geom = shape(cell_geometry)
    assert isinstance(geom, Polygon | MultiPolygon)
    return geom


class Grid:
    """The stored grid: import, look up, place cameras."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def import_cells(self, cells: list[Cell], replace: bool = False) -> tuple[int, int]:
        """Store cells (a code already stored is updated; replace: cells not in this import
        are removed), then re-place every camera that has a position. Returns (cells stored,
        cameras placed)."""
        now = time.time()
        with self.engine.begin() as conn:
            if replace:
                conn.execute(
                    delete(GRID_CELLS).where(GRID_CELLS.c.code.not_in([c.code for c in cells]))
                )
            for cell in cells:
                min_lon, min_lat, max_lon, max_lat = _polygon(cell.geometry).bounds
                conn.execute(delete(GRID_CELLS).where(GRID_CELLS.c.code == cell.code))
                conn.execute(
                    GRID_CELLS.insert().values(
                        code=cell.code,
                        name=cell.name,
                        district=cell.district,
                        responsible=cell.responsible,
                        geometry=cell.geometry,
                        min_lon=min_lon,
                        min_lat=min_lat,
                        max_lon=max_lon,
                        max_lat=max_lat,
                        imported_at=now,
                    )
                )
            placed = self._place_all(conn)
        return len(cells), placed

    def list_cells(self) -> list[Cell]:
        c = GRID_CELLS.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.code, c.name, c.district, c.responsible, c.geometry).order_by(c.code)
            )
            return [Cell(r.code, r.name, r.district, r.responsible, r.geometry) for r in rows]

    @staticmethod
    def cell_at(conn: Connection, lon: float, lat: float) -> Cell | None:
        """The cell containing the point (on a shared border: the lowest code)."""
        c = GRID_CELLS.c
        rows = conn.execute(
            select(c.code, c.name, c.district, c.responsible, c.geometry)
            .where(c.min_lon <= lon, c.max_lon >= lon, c.min_lat <= lat, c.max_lat >= lat)
            .order_by(c.code)
        ).all()
        point = Point(lon, lat)
        for r in rows:
            if _polygon(r.geometry).covers(point):
                return Cell(r.code, r.name, r.district, r.responsible, r.geometry)
        return None

    def _place_all(self, conn: Connection) -> int:
        cams = conn.execute(
            select(CAMERAS.c.camera_id, CAMERAS.c.lon, CAMERAS.c.lat).where(
                CAMERAS.c.lon.is_not(None), CAMERAS.c.lat.is_not(None)
            )
        ).all()
        placed = 0
        for cam in cams:
            cell = self.cell_at(conn, cam.lon, cam.lat)
            conn.execute(
                update(CAMERAS)
                .where(CAMERAS.c.camera_id == cam.camera_id)
                .values(grid_cell=cell.code if cell else "")
            )
            placed += cell is not None
        return placed
