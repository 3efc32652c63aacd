"""`aggregator grid` and `aggregator cameras set` as an operator meets them: real child
processes on a real database (SQLite: the SQL is the API tests' job on both kinds)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from aggregator.db.engine import make_engine
from aggregator.db.models import CAMERAS
from tests.deploy import database
from tests.system.test_cli_fleet import _ok, _user_error

# Slow: every command is a child process that imports the aggregator and migrates.
pytestmark = pytest.mark.slow

GRID = Path(__file__).resolve().parents[2] / "configs" / "grid.geojson"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    with database("sqlite", tmp_path) as url:
        (tmp_path / "aggregator.yaml").write_text(f"database_url: {url}\n")
        yield tmp_path, url


def test_grid_import_places_cameras_and_refuses_bad_files(site: tuple[Path, str]) -> None:
    root, url = site
    # A camera positioned before there is a grid has no cell, until the grid comes.
    _ok(root, "cameras", "set", "cam-1", "--lat", "52.105", "--lon", "4.315")
    out = _ok(root, "grid", "import", str(GRID))
    assert out.strip() == "12 cells in 3 district(s) imported; 1 camera(s) placed"
    listed = _ok(root, "grid", "list").splitlines()
    assert len(listed) == 12
    assert listed[0].split()[:3] == ["G-0101", "Old", "Town"]
    # Placed by position from now on; a cell named by hand must exist.
    _ok(root, "cameras", "set", "cam-2", "--lat", "52.085", "--lon", "4.295")
    err = _user_error(root, "cameras", "set", "cam-3", "--grid-cell", "G-9999")
    assert "grid cell 'G-9999' is not in the imported grid" in err
    engine = make_engine(url)
    with engine.connect() as conn:
        cells = dict(conn.execute(select(CAMERAS.c.camera_id, CAMERAS.c.grid_cell)).all())
    engine.dispose()
    assert cells == {"cam-1": "G-0304", "cam-2": "G-0102"}

    bad = root / "bad.geojson"
    doc = json.loads(GRID.read_text())
    doc["features"][3]["geometry"]["coordinates"][0][1] = [4.5, 53.5]  # a bow tie
    bad.write_text(json.dumps(doc))
    err = _user_error(root, "grid", "import", str(bad))
    assert "bad.geojson: features[3] (cell G-0104): geometry is invalid: Self-intersection" in err
    assert len(_ok(root, "grid", "list").splitlines()) == 12  # nothing changed
