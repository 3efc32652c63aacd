"""For the notification tests: a webhook receiver (a real HTTP server on loopback that checks
every POST with the documented check, aggregator.notify.signing.verify, and dedupes on the
notification id, as a department's system would; it can answer scripted failures first), and
the real app on a fresh database with a catalogue and webhooks pointing at one."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from aggregator.api.deps import Services
from aggregator.auth import ROLES, User
from aggregator.core.config import CasesConfig
from aggregator.core.grid_config import GridConfig, WebhookConfig
from aggregator.db.engine import make_engine, migrate
from aggregator.db.grid_models import GRID_CELLS, NOTIFICATIONS
from aggregator.db.models import CAMERAS, CASES
from aggregator.edges import EdgeRegistry
from aggregator.main import create_app
from aggregator.notify.signing import HEADER_ID, SignatureError, verify
from aggregator.review import Review
from aggregator.store import EventStore, Received
from contract import wire
from tests.apihelpers import login
from tests.deploy import database


class Receiver:
    """Accepts each genuine notification once: ``accepted`` holds the ids in order,
    ``payloads`` their bodies, ``duplicates`` how often an accepted id came again,
    ``refused`` the reasons of refused requests and ``overlaps`` the ids that arrived while
    the same id was still being answered (two senders at once)."""

    def __init__(self, secret: bytes, port: int = 0, delay_s: float = 0.0) -> None:
        self.secret = secret
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.accepted: list[str] = []
        self.payloads: dict[str, dict[str, Any]] = {}
        self.duplicates: Counter[str] = Counter()
        self.refused: list[str] = []
        self.overlaps: list[str] = []
        self.script: list[int] = []  # statuses to answer genuine requests with first
        self._in_flight: set[str] = set()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.accepted.clear()
            self.payloads.clear()
            self.duplicates.clear()
            self.refused.clear()
            self.overlaps.clear()
            self.script.clear()

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        """The answer to one POST: 401 naming why it is not genuine, a scripted status, or
        200 (a duplicate is answered 200 too: the sender must stop resending it)."""
        try:
            verify(self.secret, headers, body, time.time())
        except SignatureError as exc:
            with self.lock:
                self.refused.append(exc.reason)
            return 401, str(exc)
        nid = headers[HEADER_ID]
        with self.lock:
            if nid in self._in_flight:
                self.overlaps.append(nid)
            self._in_flight.add(nid)
        try:
            time.sleep(self.delay_s)  # widens the window in which a second sender would show
            with self.lock:
                if self.script:
                    return self.script.pop(0), "scripted failure"
                if nid in self.payloads:
                    self.duplicates[nid] += 1
                    return 200, "already have it"
                self.accepted.append(nid)
                self.payloads[nid] = json.loads(body)
                return 200, "ok"
        finally:
            with self.lock:
                self._in_flight.discard(nid)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, text = receiver.handle(dict(self.headers.items()), body)
                out = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender was killed while waiting: it will send again

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the tests assert on what was received

        return Handler


SECRET = b"department-shared-secret"
SUPERVISOR = User(3, "supervisor", "supervisor")
# litter files as 0101 (told to dept and, for the owner-first notice, shop); crowding falls
# back to 9901, which tells nobody but the supervisors of an escalation.
CATALOGUE = """\
version: 1
fallback: "9901"
categories:
  - code: "0101"
    class: city appearance
    subclass: exposed garbage
    event_types: [litter]
    filing_condition: Garbage left out.
    department: street cleaning
    stages:
      - {name: fence off, within_h: 3}
      - {name: clear away, within_h: 8}
    closing_condition: Clean.
    legal_basis: Sanitation Regulations, art. 1
    owner_first_h: 2
    webhooks: [dept, shop]
  - code: "9901"
    class: other
    subclass: other
    filing_condition: Anything else.
    department: city management
    priority: low
    stages:
      - {name: look, within_h: 1}
    closing_condition: Handled.
    legal_basis: none
"""


@dataclass
class Env:
    url: str
    services: Services
    clients: dict[str, TestClient]
    receiver: Receiver
    root: Path
    seq: int = 0

    @property
    def engine(self) -> Engine:
        return self.services.engine

    @property
    def grid(self) -> GridConfig:
        return self.services.grid

    def review(self) -> Review:
        return Review(self.engine, self.services.catalogue, None, self.grid)

    def event(self, type_: str = "litter", drill: bool = False, zone: str | None = None) -> str:
        """A start message stored as the ingest would, in a zone of its own unless zone is
        given (a new case, not one joining an open case)."""
        self.seq += 1
        ev = wire.WireEvent(
            event_id=str(uuid.uuid4()),
            type=type_,
            phase="start",
            camera="cam-1",
            zone=zone or f"z-{uuid.uuid4().hex[:8]}",
            rule=type_,
            ts=1000.0 + self.seq,
            started_ts=1000.0 + self.seq,
            value=1.0,
            unit="objects",
            severity="medium",
            boxes=(),
            labels=(),
            stage=None,
            peak=None,
            created_wall=0.0,
            drill=drill,
        )
        assert EventStore(self.engine).ingest([Received("box", self.seq, ev)]).new == 1
        return ev.event_id

    def file(self, type_: str = "litter", drill: bool = False) -> int:
        return self.review().confirm(self.event(type_, drill), SUPERVISOR)

    def case(self, case_id: int) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(CASES).where(CASES.c.id == case_id)).one()

    def notices(self, case_id: int, kind: str | None = None) -> list[Any]:
        conds = [NOTIFICATIONS.c.case_id == case_id]
        if kind is not None:
            conds.append(NOTIFICATIONS.c.kind == kind)
        with self.engine.connect() as conn:
            return list(conn.execute(select(NOTIFICATIONS).where(*conds)).all())

    def drain(self) -> None:
        """Earlier tests' pending notices out of the way of a delivery test."""
        with self.engine.begin() as conn:
            conn.execute(
                update(NOTIFICATIONS)
                .where(NOTIFICATIONS.c.delivered_at.is_(None))
                .values(delivered_at=0.0)
            )


def _grid(root: Path, url: str) -> GridConfig:
    (root / "dept.secret").write_bytes(SECRET + b"\n")  # a trailing newline is not the key's
    hook = {"url": url, "secret_file": root / "dept.secret", "timeout_s": 2.0}
    return GridConfig(
        supervisor_webhooks=["sup"],
        webhooks={
            "dept": WebhookConfig(**hook),
            "shop": WebhookConfig(**hook, kinds=["owner_notice"]),
            "sup": WebhookConfig(**hook, kinds=["escalated"]),
        },
    )


@contextmanager
def notify_env(kind: str, root: Path) -> Iterator[Env]:
    """The real app and a fresh database of kind, with the catalogue above, webhooks dept,
    shop and sup all pointing at one running Receiver, camera cam-1 in cell G-0101 (Old
    Town), and one logged-in client per role."""
    receiver = Receiver(SECRET).start()
    (root / "catalogue.yaml").write_text(CATALOGUE)
    with database(kind, root) as url:
        migrate(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(CAMERAS.insert().values(camera_id="cam-1", grid_cell="G-0101"))
            conn.execute(
                GRID_CELLS.insert().values(
                    code="G-0101", name="Market", district="Old Town", responsible="Office 1",
                    geometry={"type": "Polygon", "coordinates": []},
                    min_lon=4.28, min_lat=52.08, max_lon=4.29, max_lat=52.09, imported_at=0.0,
                )
            )  # fmt: skip
        services = Services(
            engine,
            EdgeRegistry(engine),
            None,
            cases=CasesConfig(catalogue=root / "catalogue.yaml"),
            grid=_grid(root, receiver.url),
        )
        for role in ROLES:
            services.accounts.add_user(role, f"{role}-password", role)
        app = create_app(services)
        clients = {}
        for role in ROLES:
            clients[role] = TestClient(app)
            clients[role].headers["Authorization"] = f"Bearer {login(clients[role], role)}"
        try:
            yield Env(url, services, clients, receiver, root)
        finally:
            receiver.stop()
            engine.dispose()
