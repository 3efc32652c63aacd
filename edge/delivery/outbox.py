"""The durable edge outbox: every event message is committed to SQLite before it is sent.

WAL with ``synchronous=FULL`` makes a commit survive power loss, not only a crash. Rows are
deleted when the aggregator acknowledges them; rejected ones move to ``dead_letter``.
Sequence numbers come from AUTOINCREMENT, so they are never reused, even after deletes.

When full (``max_rows`` pending) the documented policy applies: the oldest pending ``update``
messages are dropped first (a later update or the end supersedes them) and counted; if only
starts and ends remain, the new message is refused with OutboxFullError. Nothing is dropped
silently: both counts are kept in the outbox and shown by ``edge outbox status``.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from contract.errors import StreetwatchError
from contract.keys import owner_only
from edge.evidence.media import MediaItem

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    phase TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter (
    seq INTEGER PRIMARY KEY,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS media (
    media_id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    start_ts REAL NOT NULL,
    duration_s REAL NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_media (
    media_id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
"""


class OutboxFullError(StreetwatchError):
    """The outbox holds max_rows start/end messages; the new one was refused."""


@dataclass(frozen=True)
class Pending:
    seq: int
    payload: bytes


class Outbox:
    """One connection per thread: open an Outbox in each thread that uses it."""

    def __init__(self, path: Path, max_rows: int = 100_000) -> None:
        self.path = path
        self.max_rows = max_rows
        try:
            # Owner-only whatever the umask: events and evidence paths are the city's data.
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(0o600)
            owner_only(path, 0o600)  # its WAL and shared-memory files take the same mode
            self._db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StreetwatchError(f"{path}: cannot open outbox: {exc}") from None
        # Switching a new file to WAL needs a moment alone with it; other threads of this box
        # may be opening it at the same time, and SQLite's busy timeout does not cover that.
        for attempt in range(100):
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError:
                if attempt == 99:
                    raise
                time.sleep(0.05)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def put(self, payload: bytes, phase: str, meta: dict[str, str] | None = None) -> int:
        """Commit one message (and optional meta values, atomically); return its seq."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            depth = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            if depth >= self.max_rows:
                dropped = db.execute(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE phase='update'"
                    " ORDER BY seq LIMIT ?)",
                    (depth - self.max_rows + 1,),
                ).rowcount
                self._bump("dropped_updates", dropped)
                if dropped < depth - self.max_rows + 1:
                    self._bump("refused", 1)
                    db.execute("COMMIT")
                    raise OutboxFullError(
                        f"{self.path}: outbox full ({depth} messages waiting, max_rows "
                        f"{self.max_rows}); {phase} message refused"
                    )
            cur = db.execute(
                "INSERT INTO outbox (phase, payload, created) VALUES (?, ?, ?)",
                (phase, payload, time.time()),
            )
            for k, v in (meta or {}).items():
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (k, v))
            db.execute("COMMIT")
        except OutboxFullError:
            raise
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return int(cur.lastrowid or 0)

    def _bump(self, key: str, n: int) -> None:
        if n:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                "SET value = CAST(value AS INTEGER) + excluded.value",
                (key, str(n)),
            )

    def pending(self, after_seq: int, limit: int, exclude: set[int] | None = None) -> list[Pending]:
        rows = self._db.execute(
            "SELECT seq, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit + len(exclude or ())),
        ).fetchall()
        out = [Pending(int(s), bytes(p)) for s, p in rows if not exclude or s not in exclude]
        return out[:limit]

    def ack(self, seqs: list[int]) -> None:
        if seqs:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            self._db.execute("COMMIT")

    def dead_letter(self, seq: int, reason: str) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        row = db.execute("SELECT payload FROM outbox WHERE seq = ?", (seq,)).fetchone()
        if row is not None:
            db.execute(
                "INSERT OR REPLACE INTO dead_letter (seq, payload, reason, at) VALUES (?, ?, ?, ?)",
                (seq, row[0], reason[:500], time.time()),
            )
            db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
        db.execute("COMMIT")

    def put_media(self, m: MediaItem) -> None:
        """Queue an evidence file for upload (the file itself stays where it is, owner-only)."""
        if m.path.is_file():  # a missing one is dead-lettered by the uploader, naming it
            owner_only(m.path, 0o600)
        self._db.execute(
            "INSERT OR REPLACE INTO media VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                m.media_id,
                m.event_id,
                m.kind,
                str(m.path),
                m.sha256,
                m.size,
                m.content_type,
                m.start_ts,
                m.duration_s,
                time.time(),
            ),
        )

    def pending_media(self, limit: int = 10) -> list[MediaItem]:
        rows = self._db.execute(
            "SELECT media_id, event_id, kind, path, sha256, size, content_type, start_ts,"
            " duration_s FROM media ORDER BY created LIMIT ?",
            (limit,),
        ).fetchall()
        return [MediaItem(r[0], r[1], r[2], Path(r[3]), r[4], r[5], r[6], r[7], r[8]) for r in rows]

    def ack_media(self, media_id: str) -> None:
        """Uploaded and acknowledged: forget it and free the disk."""
        row = self._db.execute("SELECT path FROM media WHERE media_id = ?", (media_id,)).fetchone()
        self._db.execute("DELETE FROM media WHERE media_id = ?", (media_id,))
        if row is not None:
            Path(row[0]).unlink(missing_ok=True)

    def dead_media(self, media_id: str, reason: str) -> None:
        row = self._db.execute("SELECT path FROM media WHERE media_id = ?", (media_id,)).fetchone()
        if row is not None:
            self._db.execute(
                "INSERT OR REPLACE INTO dead_media VALUES (?, ?, ?, ?)",
                (media_id, row[0], reason[:500], time.time()),
            )
            self._db.execute("DELETE FROM media WHERE media_id = ?", (media_id,))

    def media_depth(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM media").fetchone()[0])

    def dead_media_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM dead_media").fetchone()[0])

    def depth(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def dead_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM dead_letter").fetchone()[0])

    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, values: dict[str, str]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items())
        )
