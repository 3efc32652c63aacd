"""Citizen reports through the real API and database (SQLite and PostgreSQL): the Open311
GeoReport v2 POST answers as the standard says and files a case in the cell and department
of the report; a bad key is 403, a bad place or service 400, a flood 429 for that client
only (also under concurrent posts); the photo is kept for staff and never linked publicly;
Open311 reads are public and never show what the citizen wrote; clients and their CLI."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from aggregator.cli import cli
from aggregator.core.grid_config import CitizenConfig, GridConfig
from aggregator.db.engine import make_engine, migrate
from aggregator.db.grid_models import API_CLIENTS
from aggregator.db.models import AUDIT, CASES
from aggregator.grid.catalogue import load_catalogue
from aggregator.grid.cells import Grid, read_grid
from aggregator.grid.citizen import FORM_OVERHEAD_BYTES, CitizenDesk, CitizenError, Report
from aggregator.grid.clients import ApiClients, ClientError
from aggregator.media_upload import SUFFIX
from tests.aggregator.fleethelpers import DB_KINDS, FleetApi, fleet_api

REPO = Path(__file__).resolve().parents[2]
GRID_FILE = REPO / "configs" / "grid.geojson"
URL = "/open311/v2/requests.json"
# Inside G-0102 (Old Town 2: lon 4.29-4.30, lat 52.08-52.09).
LON, LAT = 4.295, 52.085
LIMIT = 3  # grid.citizen.per_client_per_min in these tests
MAX_PHOTO = 64 * 1024
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8
PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)
SECRET_TEXT = "Bags by the bench again, third time this week"


@pytest.fixture(scope="module", params=DB_KINDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FleetApi]:
    with fleet_api(request.param, tmp_path_factory.mktemp(request.param)) as a:
        Grid(a.engine).import_cells(read_grid(GRID_FILE))
        citizen = CitizenConfig(per_client_per_min=LIMIT, max_photo_bytes=MAX_PHOTO)
        a.services.grid = GridConfig(citizen=citizen)
        yield a


def _anon(api: FleetApi) -> TestClient:
    return TestClient(api.clients["viewer"].app)


def _client(api: FleetApi) -> tuple[str, str]:
    name = f"app-{uuid.uuid4().hex[:8]}"
    return name, ApiClients(api.engine).add(name)


def _post(api: FleetApi, key: str | None, files: Any = None, **fields: str) -> Any:
    data = {"service_code": "0101", "lat": str(LAT), "long": str(LON), **fields}
    if key is not None:
        data["api_key"] = key
    return _anon(api).post(URL, data=data, files=files)


def _cases_of(api: FleetApi, client: str) -> list[Any]:
    with api.engine.connect() as conn:
        return list(conn.execute(select(CASES).where(CASES.c.reporter == client)).all())


def test_a_report_becomes_a_case_in_its_cell_and_department(api: FleetApi) -> None:
    name, key = _client(api)
    r = _post(
        api,
        key,
        description=SECRET_TEXT,
        address_string="Kerkstraat 5, by my front door",
        email="jan@example.org",
        first_name="Jan",
        last_name="Jansen",
        phone="0612345678",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list)
    assert len(body) == 1
    assert set(body[0]) == {"service_request_id", "service_notice", "account_id"}
    assert body[0]["account_id"] is None
    assert "street cleaning" in body[0]["service_notice"]
    case_id = int(body[0]["service_request_id"])

    (case,) = _cases_of(api, name)
    assert case.id == case_id
    assert (case.source, case.type, case.status, case.drill) == (
        "citizen",
        "citizen",
        "filed",
        False,
    )
    assert (case.grid_cell, case.district) == ("G-0102", "Old Town")
    assert (case.category_code, case.department) == ("0101", "street cleaning")
    assert (case.camera, case.zone, case.photo_id) == ("", "", None)
    assert case.description == SECRET_TEXT
    assert (case.lat, case.lon) == (LAT, LON)
    assert case.stage_index == 0
    assert case.stage_due_at == pytest.approx(case.created_at + 24 * 3600)  # 0101: 24 h
    assert case.deadline_at == pytest.approx(case.created_at + 24 * 3600)
    with api.engine.connect() as conn:
        trail = conn.execute(
            select(AUDIT).where(AUDIT.c.entity == "case", AUDIT.c.entity_id == str(case_id))
        ).all()
    assert [(a.username, a.action) for a in trail] == [(f"client:{name}", "file_case")]
    stored = repr(tuple(case)) + repr([tuple(a) for a in trail])
    for personal in ("jan@example.org", "Jan", "0612345678"):
        assert personal not in stored, personal  # e-mail, names, phone: never stored

    # Staff see it on the board; the public sees its status without the citizen's words.
    staff = api.clients["viewer"].get(f"/api/v1/cases/{case_id}").json()
    assert (staff["source"], staff["grid_cell"], staff["department"]) == (
        "citizen",
        "G-0102",
        "street cleaning",
    )
    one = _anon(api).get(f"/open311/v2/requests/{case_id}.json")
    assert one.status_code == 200, one.text
    (public,) = one.json()
    assert (public["service_request_id"], public["service_code"]) == (str(case_id), "0101")
    assert (public["status"], public["address_id"], public["agency_responsible"]) == (
        "open",
        "G-0102",
        "street cleaning",
    )
    assert public["description"] == "city appearance / exposed garbage, reported by a citizen"
    assert public["address"] is None
    assert public["media_url"] is None
    listing = _anon(api).get(URL)
    assert listing.status_code == 200
    assert str(case_id) in [x["service_request_id"] for x in listing.json()]
    for answer in (one.text, listing.text):
        assert "bench" not in answer
        assert "Kerkstraat" not in answer


def test_the_photo_is_kept_for_staff_and_never_linked_publicly(api: FleetApi) -> None:
    name, key = _client(api)
    r = _post(api, key, files={"media": ("p.jpg", JPEG, "image/jpeg")}, description="photo")
    assert r.status_code == 200, r.text
    case_id = r.json()[0]["service_request_id"]
    (case,) = _cases_of(api, name)
    assert case.photo_id
    got = api.clients["viewer"].get(f"/api/v1/media/{case.photo_id}")
    assert got.status_code == 200
    assert (got.content, got.headers["content-type"]) == (JPEG, "image/jpeg")
    assert _anon(api).get(f"/api/v1/media/{case.photo_id}").status_code == 401
    for path in (f"/open311/v2/requests/{case_id}.json", URL, "/public/v1/figures.json"):
        answer = _anon(api).get(path)
        assert answer.status_code == 200, path
        assert case.photo_id not in answer.text, path
    assert _anon(api).get(f"/open311/v2/requests/{case_id}.json").json()[0]["media_url"] is None

    png = _post(api, key, files={"media": ("p.png", PNG, "image/png")})
    if "image/png" in SUFFIX:  # the evidence store names PNG blobs
        assert png.status_code == 200, png.text
    else:
        assert png.status_code == 415, png.text
        assert "image/png" in png.json()["detail"]


def test_photos_that_are_not_images_or_too_large_are_refused(api: FleetApi) -> None:
    name, key = _client(api)
    gif = _post(api, key, files={"media": ("p.jpg", b"GIF89a" + bytes(50), "image/jpeg")})
    assert gif.status_code == 415
    assert "JPEG or PNG" in gif.json()["detail"]
    # 2 MiB: past http.max_body_bytes (1 MiB), so the body gate gave this route the photo
    # limit the app started with (5 MiB); the route's own check has this test's 64 KiB.
    big = JPEG + bytes(2 * 1024 * 1024)
    large = _post(api, key, files={"media": ("p.jpg", big, "image/jpeg")})
    assert large.status_code == 413
    assert "grid.citizen.max_photo_bytes is 65536" in large.json()["detail"]
    huge = _post(api, key, files={"media": ("p.jpg", big * 3, "image/jpeg")})
    assert huge.status_code == 413  # the gate, before the body is read
    assert f"exceeds the limit of {5 * 1024 * 1024 + FORM_OVERHEAD_BYTES}" in huge.json()["detail"]
    assert _cases_of(api, name) == []


@pytest.mark.parametrize(
    ("key", "named"),
    [(None, "api_key is missing"), ("not-a-key", "unknown or revoked"), ("", "missing")],
)
def test_a_bad_key_is_403_and_files_nothing(api: FleetApi, key: str | None, named: str) -> None:
    with api.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(CASES)).scalar_one()
    r = _post(api, key)
    assert r.status_code == 403, r.text
    assert named in r.json()["detail"]
    with api.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(CASES)).scalar_one() == before


def test_a_revoked_client_is_refused(api: FleetApi) -> None:
    name, key = _client(api)
    assert _post(api, key).status_code == 200
    ApiClients(api.engine).revoke(name)
    r = _post(api, key)
    assert r.status_code == 403
    assert "revoked" in r.json()["detail"]
    assert len(_cases_of(api, name)) == 1


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"lat": ""}, "lat is missing"),
        ({"long": "east"}, "long must be a number"),
        ({"lat": "95"}, "lat must be from -90 to 90"),
        ({"long": "nan"}, "long must be from -180 to 180"),
        ({"lat": "52.0", "long": "5.0"}, "outside every grid cell"),
        ({"service_code": "9999"}, "service_code '9999' is not a service"),
        ({"service_code": "0501"}, "0501"),  # not citizen_reportable
        ({"service_code": ""}, "service_code is missing"),
        ({"description": "x" * 1001}, "description has 1001 characters"),
    ],
)
def test_bad_reports_are_400_naming_the_field(
    api: FleetApi, fields: dict[str, str], named: str
) -> None:
    name, key = _client(api)
    r = _post(api, key, **fields)
    assert r.status_code == 400, r.text
    assert named in r.json()["detail"]
    assert _cases_of(api, name) == []


def test_a_flood_is_429_for_that_client_only(api: FleetApi) -> None:
    flood, flood_key = _client(api)
    other, other_key = _client(api)
    assert [_post(api, flood_key).status_code for _ in range(LIMIT)] == [200] * LIMIT
    refused = _post(api, flood_key, files={"media": ("p.jpg", JPEG, "image/jpeg")})
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "per_client_per_min is 3" in refused.json()["detail"]
    assert _post(api, other_key).status_code == 200  # another client is not affected
    assert len(_cases_of(api, flood)) == LIMIT
    assert len(_cases_of(api, other)) == 1


def test_concurrent_reports_cannot_outrun_the_limit(api: FleetApi) -> None:
    """Eight reports at once from one client: the count and the filing are one step."""
    name, _ = _client(api)
    desk = CitizenDesk(
        api.engine, api.services.catalogue, CitizenConfig(per_client_per_min=LIMIT), None
    )
    outcomes: list[int] = []
    start = threading.Barrier(8)

    def report() -> None:
        start.wait()
        try:
            desk.file(Report(client=name, service_code="0101", lat=LAT, lon=LON))
            outcomes.append(200)
        except CitizenError as exc:
            outcomes.append(exc.status)

    threads = [threading.Thread(target=report) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [200] * LIMIT + [429] * (8 - LIMIT)
    assert len(_cases_of(api, name)) == LIMIT


def test_without_a_grid_any_point_is_taken(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    try:
        ApiClients(engine).add("hotline")
        desk = CitizenDesk(engine, load_catalogue(), CitizenConfig(), None)
        filed = desk.file(Report(client="hotline", service_code="0201", lat=10.0, lon=20.0))
        assert filed.grid_cell == ""
        with engine.connect() as conn:
            row = conn.execute(select(CASES).where(CASES.c.id == filed.case_id)).one()
        assert (row.grid_cell, row.district, row.department) == ("", "", "city appearance")
    finally:
        engine.dispose()


def test_turned_off_reports_are_refused(api: FleetApi) -> None:
    _, key = _client(api)
    saved = api.services.grid
    api.services.grid = GridConfig(citizen=CitizenConfig(enabled=False))
    try:
        r = _post(api, key)
    finally:
        api.services.grid = saved
    assert r.status_code == 403
    assert "grid.citizen.enabled" in r.json()["detail"]


def test_clients_keep_only_the_hash_and_the_cli_manages_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite3'}"
    config = tmp_path / "aggregator.yaml"
    config.write_text(f"database_url: {url}\n")
    run = CliRunner().invoke
    out = tmp_path / "key.txt"
    added = run(cli, ["clients", "add", "city-app", "--config", str(config), "--out", str(out)])
    assert added.exit_code == 0, added.output
    key = out.read_text().strip()
    assert out.stat().st_mode & 0o777 == 0o600
    engine = make_engine(url)
    try:
        clients = ApiClients(engine)
        assert clients.client_for_key(key) == "city-app"
        with engine.connect() as conn:
            stored = conn.execute(select(API_CLIENTS)).one()
        assert key not in str(tuple(stored))
        assert len(stored.key_sha256) == 64
        again = run(cli, ["clients", "add", "city-app", "--config", str(config)])
        assert again.exit_code == 1
        assert "revoke it first" in again.output
        listed = run(cli, ["clients", "list", "--config", str(config)])
        assert "city-app" in listed.output
        assert "active" in listed.output
        revoked = run(cli, ["clients", "revoke", "city-app", "--config", str(config)])
        assert revoked.exit_code == 0, revoked.output
        assert clients.client_for_key(key) is None
        assert "revoked" in run(cli, ["clients", "list", "--config", str(config)]).output
        with pytest.raises(ClientError, match="no client named 'ghost'"):
            clients.revoke("ghost")
        with pytest.raises(ClientError, match=r"must be 1\.\.56"):
            clients.add("bad name!")
        new_key = clients.add("city-app")  # a revoked client may come back with a new key
        assert new_key != key
        assert clients.client_for_key(new_key) == "city-app"
    finally:
        engine.dispose()
