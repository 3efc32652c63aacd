"""Citizen reports (Open311 GeoReport v2 POST): checked, limited per client, and filed as
cases in the same workflow as camera cases: the category's department and staged deadlines,
the grid cell of the reported point and its district. The citizen's text and photo are kept
for staff only; nothing that identifies the citizen (e-mail, name, phone) is ever stored.

The per-client limit counts the client's filings in the audit log over the last minute (its
``at`` index makes that a short range scan), inside the transaction that files the case and
after locking the client's row: every process and replica counts the same filings, and two
reports at once from one client cannot both slip under the limit."""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from aggregator.auth import User
from aggregator.core.fleet_config import ModesConfig
from aggregator.core.grid_config import CitizenConfig, GridConfig
from aggregator.db.grid_models import API_CLIENTS, GRID_CELLS
from aggregator.db.models import AUDIT, CASES
from aggregator.fleet.modes import active_switches, winning_switch
from aggregator.grid.catalogue import Catalogue, Category
from aggregator.grid.cells import Cell, Grid
from aggregator.media import MediaError, MediaStore, Upload
from aggregator.media_upload import SUFFIX
from aggregator.notify.hooks import on_filed
from aggregator.review import Review, audit
from contract.vocabulary import PEACETIME

#: The case type of citizen reports (camera cases carry the event type).
CITIZEN_TYPE = "citizen"
#: The limit's window.
WINDOW_S = 60.0
#: Photos accepted, by the bytes they must start with (the declared type is not trusted).
PHOTO_MAGIC = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}
#: Room in a request for the form fields and multipart framing besides the photo.
FORM_OVERHEAD_BYTES = 64 * 1024
#: Longest address_string kept (the cases column).
MAX_ADDRESS_CHARS = 256


class CitizenError(Exception):
    """A report refused: ``status`` is the HTTP code, the message names the field."""

    def __init__(self, status: int, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Photo:
    data: bytes
    content_type: str


@dataclass(frozen=True)
class Report:
    """A citizen's report as received (the client is already known by its key)."""

    client: str
    service_code: str
    lat: float
    lon: float
    address: str = ""
    description: str = ""
    photo: Photo | None = None


@dataclass(frozen=True)
class Filed:
    case_id: int
    category: Category
    grid_cell: str
    due_at: float  # the first stage's deadline


def coordinate(raw: str | None, name: str, limit: float) -> float:
    """A latitude (limit 90) or longitude (limit 180) from a form field, or 400 naming it."""
    if raw is None or not raw.strip():
        raise CitizenError(400, f"{name} is missing: the report needs lat and long (WGS 84)")
    try:
        value = float(raw)
    except ValueError:
        raise CitizenError(400, f"{name} must be a number in degrees, got {raw[:40]!r}") from None
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise CitizenError(400, f"{name} must be from -{limit:g} to {limit:g} degrees, got {raw}")
    return value


def photo_of(data: bytes, max_bytes: int) -> Photo:
    """The photo's type from its first bytes; too large or not JPEG or PNG is refused."""
    if len(data) > max_bytes:
        raise CitizenError(
            413,
            f"media has {len(data)} bytes; grid.citizen.max_photo_bytes is {max_bytes}",
        )
    for content_type, magic in PHOTO_MAGIC.items():
        if data.startswith(magic):
            return Photo(data, content_type)
    raise CitizenError(415, "media is not a JPEG or PNG image")


def _recent(conn: Connection, client: str, now: float) -> tuple[int, float | None]:
    """How many cases the client filed in the window, and when the oldest of them was."""
    count, oldest = conn.execute(
        select(func.count(), func.min(AUDIT.c.at)).where(
            AUDIT.c.at > now - WINDOW_S,
            AUDIT.c.username == f"client:{client}",
            AUDIT.c.action == "file_case",
        )
    ).one()
    return int(count), oldest


class CitizenDesk:
    """Takes citizen reports: checks them and files each as a case."""

    def __init__(
        self,
        engine: Engine,
        catalogue: Catalogue,
        cfg: CitizenConfig,
        media: MediaStore | None,
        modes: ModesConfig | None = None,
        grid: GridConfig | None = None,
    ) -> None:
        self.engine = engine
        self.catalogue = catalogue
        self.cfg = cfg
        self.media = media
        self.grid = grid
        self.review = Review(engine, catalogue, modes)

    def category(self, code: str) -> Category:
        category = self.catalogue.by_code.get(code)
        if category is None:
            raise CitizenError(
                400,
                f"service_code {code[:40]!r} is not a service: GET /open311/v2/services.json",
            )
        if not category.citizen_reportable:
            raise CitizenError(
                400, f"service_code {code} ({category.title}) is not open to citizen reports"
            )
        return category

    def check_text(self, report: Report) -> None:
        limit = self.cfg.max_description_chars
        if len(report.description) > limit:
            raise CitizenError(
                400,
                f"description has {len(report.description)} characters; at most {limit} "
                "(grid.citizen.max_description_chars)",
            )

    def check_rate(self, conn: Connection, client: str, now: float) -> None:
        count, oldest = _recent(conn, client, now)
        limit = self.cfg.per_client_per_min
        if count >= limit:
            wait_s = (oldest or now) + WINDOW_S - now
            raise CitizenError(
                429,
                f"client {client} filed {count} reports in the last minute; "
                f"grid.citizen.per_client_per_min is {limit}",
                retry_after_s=max(1.0, wait_s),
            )

    @staticmethod
    def cell(conn: Connection, report: Report) -> Cell | None:
        """The grid cell of the point; None when no grid is imported (then any point goes)."""
        cell = Grid.cell_at(conn, report.lon, report.lat)
        if cell is None and conn.execute(select(GRID_CELLS.c.code).limit(1)).first():
            raise CitizenError(
                400,
                f"lat {report.lat}, long {report.lon} is outside every grid cell of this city",
            )
        return cell

    def file(self, report: Report, now: float | None = None) -> Filed:
        """Check the report, keep its photo, file its case; CitizenError names what is wrong."""
        now = time.time() if now is None else now
        category = self.category(report.service_code)
        self.check_text(report)
        with self.engine.connect() as conn:
            cell = self.cell(conn, report)
            # Before the photo is stored: a flood is refused without keeping its photos.
            self.check_rate(conn, report.client, now)
        photo_id = self._store(report, now) if report.photo else None
        with self.engine.begin() as conn:
            self._lock_client(conn, report.client)
            self.check_rate(conn, report.client, now)
            return self._insert(conn, report, category, cell, photo_id, now)

    @staticmethod
    def _lock_client(conn: Connection, client: str) -> None:
        """Hold the client's row to the end of the transaction (a row lock on PostgreSQL,
        SQLite's one write lock): its reports are counted and filed one at a time."""
        held = conn.execute(
            update(API_CLIENTS)
            .where(API_CLIENTS.c.name == client, API_CLIENTS.c.revoked_at.is_(None))
            .values(revoked_at=None)
        ).rowcount
        if not held:
            raise CitizenError(403, f"client {client} was revoked")

    def _store(self, report: Report, now: float) -> str:
        """The photo in the evidence store, owned by citizen:CLIENT; its media id."""
        photo = report.photo
        assert photo is not None
        if self.media is None:
            raise CitizenError(503, "this server keeps no photos (no media store)")
        if photo.content_type not in SUFFIX:
            raise CitizenError(415, f"{photo.content_type} photos are not kept here: send a JPEG")
        media_id = uuid.uuid4()
        up = Upload(
            media_id=media_id,
            edge_id=f"citizen:{report.client}",
            event_id=media_id,  # no event: the case names the photo (cases.photo_id)
            kind="photo",
            content_type=photo.content_type,
            sha256=hashlib.sha256(photo.data).hexdigest(),
            start_ts=now,
            duration_s=0.0,
        )
        try:
            self.media.save(up, photo.data)
        except MediaError as exc:
            raise CitizenError(exc.status, f"media: {exc}") from None
        return str(media_id)

    def _mode(self, conn: Connection, cell: str, now: float) -> str:
        """The operating mode in force where the problem is; a drill never: a citizen's
        report is real."""
        switch = winning_switch(active_switches(conn, now), "", "", cell)
        if switch is None:
            return PEACETIME
        definition = self.review.modes.definitions.get(switch.mode)
        return PEACETIME if definition is not None and definition.drill else switch.mode

    def _insert(
        self,
        conn: Connection,
        report: Report,
        category: Category,
        cell: Cell | None,
        photo_id: str | None,
        now: float,
    ) -> Filed:
        code = cell.code if cell else ""
        mode = self._mode(conn, code, now)
        filing = self.review.filing(category, CITIZEN_TYPE, mode, now)
        values: dict[str, Any] = {
            **filing.values(),
            "camera": "",
            "zone": "",
            "type": CITIZEN_TYPE,
            "status": "filed",
            "assignee": None,
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            "mode": mode,
            "drill": False,
            "address": report.address[:MAX_ADDRESS_CHARS],
            "lat": report.lat,
            "lon": report.lon,
            "grid_cell": code,
            "district": cell.district if cell else "",
            "source": "citizen",
            "reporter": report.client,
            "description": report.description or None,
            "photo_id": photo_id,
        }
        inserted = conn.execute(CASES.insert().values(**values)).inserted_primary_key
        assert inserted is not None
        case_id = int(inserted[0])
        detail = {
            "category": category.code,
            "department": category.department,
            "source": "citizen",
            "grid_cell": code,
            "photo_id": photo_id,
        }
        client = User(0, f"client:{report.client}", "viewer")
        audit(conn, client, "file_case", "case", str(case_id), detail)
        if self.grid is not None:  # the department hears of it like of a camera's case
            case = conn.execute(select(CASES).where(CASES.c.id == case_id)).one()
            on_filed(conn, self.grid, category, case._mapping)
        return Filed(case_id, category, code, filing.stage_due_at[0])
