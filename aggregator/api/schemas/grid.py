"""The unit grid for the map: cells as GeoJSON with their case counts, and the cameras."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class CellProperties(BaseModel):
    code: str
    name: str
    district: str
    responsible: str
    open: int = Field(description="Open cases in the cell (drills left out).")
    overdue: int = Field(description="Open cases past their deadline.")


class CellFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    properties: CellProperties
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon, lon/lat.")


class CameraMarker(BaseModel):
    camera: str
    lat: float
    lon: float
    grid_cell: str
    address: str


class GridPublic(BaseModel):
    """A GeoJSON FeatureCollection of the cells, plus the cameras and the tile URL."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[CellFeature]
    cameras: list[CameraMarker]
    tile_url: str | None = Field(description="Map tiles under the grid, if the site has them.")
