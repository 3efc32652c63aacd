"""The unit grid and the category catalogue against the real API and database (SQLite and
PostgreSQL): GeoJSON cells imported and checked, cameras placed in the cell that contains
them, cases filed with the catalogue's category, staged deadlines, cell and district, the
board filtered by them, the map's counts, stages finished and rework counted."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from aggregator.api.deps import check_webhooks
from aggregator.core.fleet_config import ModesConfig
from aggregator.core.grid_config import GridConfig, WebhookConfig
from aggregator.db.models import CAMERAS, CASES
from aggregator.grid.catalogue import load_catalogue
from aggregator.grid.cells import Grid, GridError, parse_grid, read_grid
from aggregator.review import Review
from contract.errors import ConfigError
from tests.aggregator.fleethelpers import DB_KINDS, FleetApi, fleet_api

REPO = Path(__file__).resolve().parents[2]
GRID_FILE = REPO / "configs" / "grid.geojson"
# Inside G-0102 (Old Town 2: lon 4.29-4.30, lat 52.08-52.09) and G-0304 (Riverside 4).
IN_0102 = (4.295, 52.085)
IN_0304 = (4.315, 52.105)


@pytest.fixture(scope="module", params=DB_KINDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FleetApi]:
    with fleet_api(request.param, tmp_path_factory.mktemp(request.param)) as a:
        Grid(a.engine).import_cells(read_grid(GRID_FILE))
        yield a


def _camera(api: FleetApi, camera: str, lon: float, lat: float) -> None:
    with api.engine.begin() as conn:
        cell = Grid.cell_at(conn, lon, lat)
        conn.execute(
            CAMERAS.insert().values(
                camera_id=camera, address=f"{camera} street", lat=lat, lon=lon,
                grid_cell=cell.code if cell else "",
            )
        )  # fmt: skip


def _case(api: FleetApi, camera: str, event_type: str, **fields: Any) -> dict[str, Any]:
    ev = api.event(camera=camera, type=event_type, **fields)
    r = api.clients["operator"].post(f"/api/v1/events/{ev.event_id}/confirm", json={})
    assert r.status_code == 200, r.text
    case: dict[str, Any] = api.clients["viewer"].get(f"/api/v1/cases/{r.json()['case_id']}").json()
    return case


def _collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def _feature(code: Any, ring: list[list[float]], **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"code": code, "name": f"cell {code}", **props},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


SQUARE = [[4.0, 52.0], [4.1, 52.0], [4.1, 52.1], [4.0, 52.1], [4.0, 52.0]]
BOW_TIE = [[4.0, 52.0], [4.1, 52.1], [4.1, 52.0], [4.0, 52.1], [4.0, 52.0]]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "Feature"}, "expected a GeoJSON FeatureCollection"),
        (_collection(), "features must be a non-empty list"),
        (_collection(_feature("", SQUARE)), "features[0]: properties.code is missing"),
        (_collection(_feature("A", BOW_TIE)), "features[0] (cell A): geometry is invalid: Self-intersection"),
        (_collection(_feature("A", SQUARE), _feature("A", SQUARE)), "features[1] (cell A): code A appears twice"),
        (
            _collection(_feature("A", [[400.0, 52.0], [401.0, 52.0], [401.0, 53.0], [400.0, 52.0]])),
            "coordinates must be WGS 84 longitude, latitude in degrees",
        ),
        (
            _collection({**_feature("A", SQUARE), "geometry": {"type": "Point", "coordinates": [4, 52]}}),
            "geometry must be a Polygon or MultiPolygon, got Point",
        ),
        (_collection(_feature("A", SQUARE, name="x" * 200)), "properties.name has 200 characters, at most 128"),
    ],
)  # fmt: skip
def test_bad_grids_are_refused_naming_the_feature(data: dict[str, Any], message: str) -> None:
    with pytest.raises(GridError) as err:
        parse_grid(data, "cells.geojson")
    assert message in str(err.value)
    assert str(err.value).startswith("cells.geojson")


def test_grid_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "cells.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(GridError, match=r"cells.geojson: not readable GeoJSON"):
        read_grid(bad)
    with pytest.raises(GridError, match="file not found"):
        read_grid(tmp_path / "missing.geojson")


def test_cells_are_found_by_position_and_cameras_placed(api: FleetApi) -> None:
    with api.engine.connect() as conn:
        assert (c := Grid.cell_at(conn, *IN_0102)) is not None
        assert (c.code, c.district, c.responsible) == ("G-0102", "Old Town", "Old Town grid office")
        # A shared border belongs to one cell: the lowest code.
        border = Grid.cell_at(conn, 4.29, 52.085)
        assert border is not None
        assert border.code == "G-0101"
        assert Grid.cell_at(conn, 5.0, 50.0) is None
    # A camera positioned before the grid is placed when the grid is imported again.
    with api.engine.begin() as conn:
        conn.execute(CAMERAS.insert().values(camera_id="cam-early", lat=IN_0304[1], lon=IN_0304[0]))
    stored, placed = Grid(api.engine).import_cells(read_grid(GRID_FILE))
    assert stored == 12
    assert placed >= 1
    with api.engine.connect() as conn:
        row = conn.execute(CAMERAS.select().where(CAMERAS.c.camera_id == "cam-early")).one()
    assert row.grid_cell == "G-0304"


def test_cases_take_category_stages_cell_and_district(api: FleetApi) -> None:
    _camera(api, "cam-litter", *IN_0102)
    before = time.time()
    case = _case(api, "cam-litter", "litter")
    assert (case["category_code"], case["category"]) == (
        "0101",
        "city appearance / exposed garbage",
    )
    assert (case["department"], case["grid_cell"], case["district"]) == (
        "street cleaning",
        "G-0102",
        "Old Town",
    )
    assert case["stage"] == "clear away"
    assert case["stage_due_at"] == pytest.approx(before + 24 * 3600, abs=60)
    assert case["deadline_at"] == case["stage_due_at"]
    assert [s["name"] for s in case["stages"]] == ["clear away"]
    assert case["source"] == "camera"
    # An event type the catalogue does not list files under its fallback.
    other = _case(api, "cam-litter", "graffiti")
    assert (other["category_code"], other["department"]) == ("9901", "city services")


def test_board_filters_by_cell_district_and_category(api: FleetApi) -> None:
    _camera(api, "cam-river", *IN_0304)
    river = _case(api, "cam-river", "street_vending", zone="quay")
    viewer = api.clients["viewer"]
    by_cell = viewer.get("/api/v1/cases", params={"grid_cell": "G-0304"}).json()
    assert [c["id"] for c in by_cell["items"]] == [river["id"]]
    by_district = viewer.get("/api/v1/cases", params={"district": "Riverside"}).json()
    assert {c["district"] for c in by_district["items"]} == {"Riverside"}
    by_code = viewer.get("/api/v1/cases", params={"category_code": "0301"}).json()
    assert river["id"] in [c["id"] for c in by_code["items"]]
    assert {c["category_code"] for c in by_code["items"]} == {"0301"}
    assert viewer.get("/api/v1/cases", params={"grid_cell": "x" * 33}).status_code == 422


def test_stages_finish_in_order_and_rework_is_counted(api: FleetApi) -> None:
    _camera(api, "cam-stall", *IN_0102)
    case = _case(api, "cam-stall", "street_vending", zone="pavement")
    assert [s["name"] for s in case["stages"]] == ["move off the way", "settle"]
    assert case["stage"] == "move off the way"
    op, sup = api.clients["operator"], api.clients["supervisor"]
    url = f"/api/v1/cases/{case['id']}"
    after = op.patch(url, json={"stage_done": True, "note": "stall moved"}).json()
    assert (after["stage_index"], after["stage"]) == (1, "settle")
    assert after["stage_due_at"] == pytest.approx(case["created_at"] + 48 * 3600, abs=1)
    assert [s["done"] for s in after["stages"]] == [True, False]
    done = op.patch(url, json={"stage_done": True}).json()
    assert (done["stage"], done["stage_due_at"]) == ("", None)
    again = op.patch(url, json={"stage_done": True})
    assert again.status_code == 409
    assert "finished all 2 stages" in again.json()["detail"]
    for status in ("dispatched", "in_progress", "resolved"):
        assert op.patch(url, json={"status": status}).status_code == 200
    back = sup.patch(url, json={"status": "in_progress", "note": "still there"}).json()
    assert back["rework_count"] == 1
    audit = [a for a in back["audit"] if a["action"] == "update_case"]
    assert audit[0]["detail"]["to"] == {"stage_index": 1, "stage_due_at": after["stage_due_at"]}


def test_map_counts_open_and_overdue_cases_per_cell(api: FleetApi) -> None:
    _camera(api, "cam-map", *IN_0304)
    late = _case(api, "cam-map", "illegal_parking", zone="corner")
    with api.engine.begin() as conn:
        conn.execute(update(CASES).where(CASES.c.id == late["id"]).values(deadline_at=1.0))
    grid = api.clients["viewer"].get("/api/v1/grid").json()
    assert grid["type"] == "FeatureCollection"
    cells = {f["properties"]["code"]: f["properties"] for f in grid["features"]}
    assert len(cells) == 12
    assert cells["G-0304"]["overdue"] >= 1
    assert cells["G-0304"]["open"] >= cells["G-0304"]["overdue"]
    assert cells["G-0201"] == {**cells["G-0201"], "open": 0, "overdue": 0}
    assert grid["features"][0]["geometry"]["type"] == "Polygon"
    cams = {c["camera"]: c for c in grid["cameras"]}
    assert cams["cam-map"]["grid_cell"] == "G-0304"
    assert grid["tile_url"] is None


def test_modes_shorten_every_stage_alike() -> None:
    catalogue = load_catalogue()
    modes = ModesConfig.model_validate(
        {
            "definitions": {
                "peacetime": {},
                "emergency": {"cases": {"street_vending": {"time_limit_h": 12}}},
            }
        }
    )
    review = Review(None, catalogue, modes)  # type: ignore[arg-type]  # filing() needs no database
    vending = catalogue.for_type("street_vending")
    filing = review.filing(vending, "street_vending", "emergency", now=0.0)
    assert filing.stage_due_at == (0.5 * 3600, 12 * 3600)  # 2 h and 48 h, times 12/48
    assert review.filing(vending, "street_vending", "peacetime", 0.0).stage_due_at == (
        2 * 3600,
        48 * 3600,
    )


def test_catalogue_errors_name_the_file_line_and_field(tmp_path: Path) -> None:
    import yaml

    doc = yaml.safe_load((REPO / "aggregator" / "grid" / "catalogue.yaml").read_text())
    broken = copy.deepcopy(doc)
    broken["categories"][1]["stages"] = [{"name": "a", "within_h": 8}, {"name": "b", "within_h": 3}]
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False))
    with pytest.raises(ConfigError, match=r"catalogue.yaml:\d+.*growing within_h"):
        load_catalogue(path)
    twice = copy.deepcopy(doc)
    twice["categories"][2]["event_types"] = ["litter"]
    path.write_text(yaml.safe_dump(twice, sort_keys=False))
    with pytest.raises(ConfigError, match="'litter' maps to both 0101 and 0201"):
        load_catalogue(path)
    hooked = copy.deepcopy(doc)
    hooked["categories"][0]["webhooks"] = ["sanitation"]
    path.write_text(json.dumps(hooked))
    with pytest.raises(ConfigError, match="category 0101 names webhook 'sanitation'"):
        check_webhooks(load_catalogue(path), GridConfig())
    hook = WebhookConfig(url="http://127.0.0.1:9/", secret_file=tmp_path / "s")
    check_webhooks(load_catalogue(path), GridConfig(webhooks={"sanitation": hook}))


def test_a_camera_tamper_event_is_reviewed_and_filed_as_an_equipment_case(api: FleetApi) -> None:
    """Last in the module: it adds cases the board and map tests above do not expect.
    camera_tamper (issue 17) takes the review and case path of an equipment problem: the
    queue lists it with its subtype (the event's stage), confirming it files a camera
    maintenance case, apart from camera_offline."""
    _camera(api, "cam-tamper", *IN_0304)
    ev = api.event(
        camera="cam-tamper", type="camera_tamper", zone="camera", rule="camera-tamper",
        unit="s", value=4.0, severity="high", stage="covered",
    )  # fmt: skip
    listed = api.clients["viewer"].get("/api/v1/events", params={"type": "camera_tamper"}).json()
    assert [(e["event_id"], e["stage"]) for e in listed["items"]] == [(ev.event_id, "covered")]
    r = api.clients["operator"].post(f"/api/v1/events/{ev.event_id}/confirm", json={})
    assert r.status_code == 200, r.text
    case = api.clients["viewer"].get(f"/api/v1/cases/{r.json()['case_id']}").json()
    assert (case["category_code"], case["department"]) == ("0602", "camera maintenance")
    assert [s["name"] for s in case["stages"]] == ["inspect the camera", "restore the view"]
    assert case["grid_cell"] == "G-0304"
    offline = _case(api, "cam-tamper", "camera_offline")
    assert offline["category_code"] == "0601"
