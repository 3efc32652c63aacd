"""What the edges say about their cameras, on its way from the ingest to fleet_cameras.

The ingest thread puts each edge's latest heartbeat and every config report it matched in a
``FleetInbox``; the replica's beacon takes them once a period and writes them with
``write_inventory``: one upsert for the heartbeats' cameras and one for the reports, however
many cameras there are. Both only move a row forward, so several ingest replicas hearing the
same edge (it reconnected) agree with the latest of them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aggregator.db.models import FLEET_CAMERAS
from contract.fleet import Applied, ConfigReport, Heartbeat
from contract.vocabulary import PEACETIME

log = logging.getLogger(__name__)

EdgeCamera = tuple[str, str]
#: fleet_cameras keeps versions and revisions in 32-bit columns; an edge reporting more (a
#: bug, or a hostile box) must not make the beacon's transaction fail over and over.
MAX_COLUMN_INT = 2**31 - 1
#: The state of a row a report creates before any heartbeat named its camera.
UNKNOWN_STATE = "starting"


@dataclass(frozen=True)
class ReportMark:
    """The config reports of one (edge, camera) since the last write, folded: the latest
    applied state (ok) and the latest refused one, with ingest wall times."""

    at: float
    applied: Applied | None = None
    applied_at: float | None = None
    failed: Applied | None = None
    error: str | None = None

    def then(self, later: ReportMark) -> ReportMark:
        """This mark followed by a later one."""
        return ReportMark(
            at=max(self.at, later.at),
            applied=self.applied if later.applied is None else later.applied,
            applied_at=self.applied_at if later.applied is None else later.applied_at,
            failed=self.failed if later.failed is None else later.failed,
            error=later.error if later.at >= self.at else self.error,
        )


def mark_of(report: ConfigReport, at: float) -> ReportMark:
    if report.ok:
        return ReportMark(at=at, applied=report.applied, applied_at=at)
    return ReportMark(at=at, failed=report.applied, error=report.error or "refused")


class FleetInbox:
    """Heartbeats (the latest per edge) and report marks (per edge and camera) waiting for
    the beacon. Thread-safe: the ingest thread puts, the beacon thread takes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._heartbeats: dict[str, tuple[Heartbeat, float]] = {}
        self._reports: dict[EdgeCamera, ReportMark] = {}

    def heartbeat(self, edge_id: str, hb: Heartbeat, at: float) -> None:
        with self._lock:
            self._heartbeats[edge_id] = (hb, at)

    def report(self, edge_id: str, report: ConfigReport, at: float) -> None:
        key = (edge_id, report.camera)
        mark = mark_of(report, at)
        with self._lock:
            before = self._reports.get(key)
            self._reports[key] = mark if before is None else before.then(mark)

    def take(
        self,
    ) -> tuple[dict[str, tuple[Heartbeat, float]], dict[EdgeCamera, ReportMark]]:
        with self._lock:
            heartbeats, self._heartbeats = self._heartbeats, {}
            reports, self._reports = self._reports, {}
        return heartbeats, reports

    def put_back(
        self,
        heartbeats: Mapping[str, tuple[Heartbeat, float]],
        reports: Mapping[EdgeCamera, ReportMark],
    ) -> None:
        """Return what a failed write took; whatever came in since is newer and wins."""
        with self._lock:
            for edge_id, item in heartbeats.items():
                self._heartbeats.setdefault(edge_id, item)
            for key, mark in reports.items():
                later = self._reports.get(key)
                self._reports[key] = mark if later is None else mark.then(later)


def _fits(*values: int | None) -> bool:
    return all(v is None or 0 <= v <= MAX_COLUMN_INT for v in values)


def heartbeat_rows(heartbeats: Mapping[str, tuple[Heartbeat, float]]) -> list[dict[str, Any]]:
    rows = []
    for edge_id, (hb, at) in sorted(heartbeats.items()):
        for c in hb.cameras:
            if not _fits(c.applied.config_version, c.applied.mode_rev):
                log.warning("edge %s camera %s: applied state out of range", edge_id, c.camera)
                continue
            rows.append(
                {
                    "edge_id": edge_id,
                    "camera_id": c.camera,
                    "state": c.state,
                    "fps": c.fps,
                    "config_version": c.applied.config_version,
                    "mode": c.applied.mode,
                    "mode_rev": c.applied.mode_rev,
                    "last_event_wall": c.last_event_wall,
                    "error": c.error,
                    "reported_at": at,
                    "applied_at": at,
                }
            )
    return rows


def report_rows(reports: Mapping[EdgeCamera, ReportMark]) -> list[dict[str, Any]]:
    rows = []
    for (edge_id, camera), m in sorted(reports.items()):
        ok, failed = m.applied, m.failed
        states = [a for a in (ok, failed) if a is not None]
        if not _fits(*(a.config_version for a in states), *(a.mode_rev for a in states)):
            continue  # only a matched push's state gets here: the aggregator's own numbers
        rows.append(
            {
                "edge_id": edge_id,
                "camera_id": camera,
                "state": UNKNOWN_STATE,
                "fps": 0.0,
                "config_version": None if ok is None else ok.config_version,
                "mode": PEACETIME if ok is None else ok.mode,
                "mode_rev": 0 if ok is None else ok.mode_rev,
                # A row made by a refusal alone gives way to the first heartbeat.
                "reported_at": 0.0 if ok is None else m.at,
                "applied_at": m.applied_at,
                "failed_config_version": None if failed is None else failed.config_version,
                "failed_mode_rev": None if failed is None else failed.mode_rev,
                "error": m.error,
            }
        )
    return rows


def _insert(conn: Connection) -> Any:
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(FLEET_CAMERAS)


def _same_state(row: Any, new: Any) -> ColumnElement[bool]:
    return and_(
        row.config_version.is_not_distinct_from(new.config_version),
        row.mode_rev == new.mode_rev,
    )


def _upsert_heartbeats(conn: Connection, rows: list[dict[str, Any]]) -> None:
    ins = _insert(conn)
    row, new = FLEET_CAMERAS.c, ins.excluded
    fields = ("state", "fps", "config_version", "mode", "mode_rev", "last_event_wall", "error")
    stmt = ins.on_conflict_do_update(
        index_elements=[row.edge_id, row.camera_id],
        set_={
            **{f: new[f] for f in (*fields, "reported_at")},
            # Kept while the camera runs the same state: it was applied earlier.
            "applied_at": case(
                (_same_state(row, new), func.coalesce(row.applied_at, new.applied_at)),
                else_=new.applied_at,
            ),
        },
        where=row.reported_at < new.reported_at,
    )
    conn.execute(stmt, rows)


def _upsert_reports(conn: Connection, rows: list[dict[str, Any]]) -> None:
    ins = _insert(conn)
    row, new = FLEET_CAMERAS.c, ins.excluded
    # An ok report sets what the camera runs unless a later heartbeat says otherwise.
    applies = and_(
        new.applied_at.is_not(None),
        or_(new.reported_at >= row.reported_at, _same_state(row, new)),
    )
    refused = new.failed_mode_rev.is_not(None)

    def when(cond: ColumnElement[bool], column: str) -> Any:
        return case((cond, new[column]), else_=row[column])

    stmt = ins.on_conflict_do_update(
        index_elements=[row.edge_id, row.camera_id],
        set_={
            **{f: when(applies, f) for f in ("config_version", "mode", "mode_rev", "applied_at")},
            "reported_at": case(
                (and_(applies, new.reported_at > row.reported_at), new.reported_at),
                else_=row.reported_at,
            ),
            "failed_config_version": when(refused, "failed_config_version"),
            "failed_mode_rev": when(refused, "failed_mode_rev"),
            "error": when(or_(applies, refused), "error"),
        },
    )
    conn.execute(stmt, rows)


def write_inventory(
    conn: Connection,
    heartbeats: Mapping[str, tuple[Heartbeat, float]],
    reports: Mapping[EdgeCamera, ReportMark],
) -> None:
    """Write the heartbeats' cameras, then the reports (an ok report is more precise about
    when a state was applied than the heartbeat that shows it), in conn's transaction."""
    hb_rows = heartbeat_rows(heartbeats)
    if hb_rows:
        _upsert_heartbeats(conn, hb_rows)
    rep_rows = report_rows(reports)
    if rep_rows:
        _upsert_reports(conn, rep_rows)
