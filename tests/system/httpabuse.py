"""HTTP abuse against a running aggregator: oversized, slow and malformed requests to every
route of the app (enumerated from aggregator.main.ROUTERS), anonymous and logged in, over
raw loopback sockets; while a logged-in user's requests are timed and the server's memory
is sampled. Used by tests/system/test_http_abuse.py and bench/bench_http_abuse.py."""

from __future__ import annotations

import concurrent.futures
import statistics
import threading
import time
import types
import typing
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

import httpx
from fastapi.routing import APIRoute

from aggregator.main import ROUTERS, UPLOADS
from contract.uploads import CONTENT_TYPES, HEADER_EVENT_ID, HEADER_KIND, HEADER_SHA256
from tests.system.rawhttp import RawAnswer, body_chunks, exchange, head, proc_status_kb, trickle

MiB = 1024 * 1024
#: Paths outside the API routers: the UI, its redirect and the spec.
EXTRA_ROUTES = (("GET", "/", False), ("GET", "/ui/", False), ("GET", "/openapi.json", False))
#: Request heads refused with 400 by uvicorn's parser (h11), or 431 by the gate (too large).
BAD_HEADS = {
    "no-colon": b"GET {path} HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n",
    "bad-length": b"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n",
    "length-and-chunked": b"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n",
    "nul-in-header": b"GET {path} HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "space-in-target": b"GET {path} x HTTP/1.1\r\nHost: x\r\n\r\n",
    "http-2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "huge-head": b"GET {path} HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 64 * 1024 + b"\r\n\r\n",
    "bad-chunk": b"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
}
#: Bodies a JSON route must refuse (400 or 422).
BAD_BODIES = {
    "truncated-json": b'{"event_ids": ["',
    "deep-json": b"[" * 100_000,
    "wrong-types": b'{"event_ids": 5, "action": null, "username": [], "password": {}, "role": 1}',
    "not-utf8": b'{"note": "\xff\xfe"}',
    "huge-number": b'{"event_ids": [' + b"9" * 5000 + b"]}",
}
BAD_PATH_VALUES = ("%00", "..%2F..%2Fetc%2Fpasswd", "9" * 40, "-1", "%ff%fe", "x" * 3000)


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # /api/v1/events/{event_id}
    reads_body: bool
    upload: bool = False
    typed_query: tuple[str, ...] = ()  # query parameters that are not free text

    def path(self, value: str | None = None) -> str:
        """The template with each {param} set to ``value`` (else a fresh UUID)."""
        out = self.template
        while "{" in out:
            start, end = out.index("{"), out.index("}")
            out = out[:start] + (value if value is not None else str(uuid.uuid4())) + out[end + 1 :]
        return out


def _free_text(annotation: object) -> bool:
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return all(_free_text(a) for a in args if a is not type(None))
    return annotation is str


def routes() -> list[Route]:
    """Every route of the app and each of its methods."""
    found = [Route(m, p, b) for m, p, b in EXTRA_ROUTES]
    for router in ROUTERS:
        for r in router.routes:
            if not isinstance(r, APIRoute):
                continue
            for method in sorted(r.methods or ()):
                found.append(
                    Route(
                        method,
                        r.path,
                        bool(r.dependant.body_params),
                        (r.path, method) in UPLOADS,
                        tuple(
                            q.name
                            for q in r.dependant.query_params
                            if not _free_text(q.field_info.annotation)
                        ),
                    )
                )
    return found


@dataclass(frozen=True)
class Case:
    kind: str
    route: Route
    identity: str  # anonymous, user (a session) or edge (an upload token)
    send: Callable[[int], RawAnswer]  # given the port
    slow: bool = False


@dataclass(frozen=True)
class Outcome:
    case: Case
    answer: RawAnswer

    def __str__(self) -> str:
        c = self.case
        return f"{c.kind} {c.route.method} {c.route.template} as {c.identity}: {self.answer}"


def _head(route: Route, path: str, auth: dict[str, str], extra: dict[str, str]) -> bytes:
    return head(route.method, path, {**auth, **extra})


def _cases_for(route: Route, identity: str, auth: dict[str, str], limits: Limits) -> list[Case]:
    cases: list[Case] = []
    limit = limits.upload_bytes if route.upload else limits.json_bytes

    def add(kind: str, send: Callable[[int], RawAnswer], slow: bool = False) -> None:
        cases.append(Case(kind, route, identity, send, slow))

    path = route.path()
    declared = _head(route, path, auth, {"Content-Length": str(150 * MiB)})
    add("oversized-declared", lambda port: exchange(port, declared, deadline_s=10))
    add("bad-method", lambda port: exchange(port, head("BREW", path, auth), deadline_s=10))
    if route.reads_body or route.upload:
        streamed = _head(route, path, auth, {"Transfer-Encoding": "chunked"})
        add(
            "oversized-streamed",
            lambda port: exchange(port, streamed, body_chunks(limit + MiB, True), deadline_s=20),
        )
        for name, body in BAD_BODIES.items():
            h = _head(
                route,
                path,
                auth,
                {"Content-Type": "application/json", "Content-Length": str(len(body))},
            )
            add(f"body-{name}", partial(exchange, request_head=h + body, deadline_s=10))
        slow_head = _head(route, path, auth, {"Content-Length": "1000"})
        add(
            "slow-body",
            lambda port: trickle(
                port,
                slow_head + b"x" * 1000,
                every_s=0.2,
                deadline_s=limits.slow_deadline_s,
                at_once_bytes=len(slow_head),
            ),
            slow=True,
        )
    if "{" in route.template:
        for value in BAD_PATH_VALUES:
            h = _head(route, route.path(value), auth, {})
            add(f"path-{value[:12]}", partial(exchange, request_head=h, deadline_s=10))
    for name in route.typed_query:
        h = _head(route, f"{path}?{name}=x%00y", auth, {})
        add(f"query-{name}", partial(exchange, request_head=h, deadline_s=10))
    return cases


@dataclass(frozen=True)
class Limits:
    json_bytes: int
    upload_bytes: int
    slow_deadline_s: float  # a slow request must be answered within this


def cases(tokens: dict[str, str], limits: Limits) -> list[Case]:
    """Every abuse case: per route and identity; malformed heads and slow heads per path."""
    out: list[Case] = []
    for route in routes():
        for identity, token in tokens.items():
            if identity == "edge" and not route.upload:
                continue  # an upload token is only for uploads: elsewhere it is a bad login
            auth = {"Authorization": f"Bearer {token}"} if token else {}
            if identity == "edge":  # a well-formed upload: its body is what is abused
                auth |= {
                    HEADER_EVENT_ID: str(uuid.uuid4()),
                    HEADER_KIND: "snapshot",
                    HEADER_SHA256: "0" * 64,
                    "Content-Type": CONTENT_TYPES["snapshot"],
                }
            out.extend(_cases_for(route, identity, auth, limits))
        path = route.path()
        for name, raw in BAD_HEADS.items():
            data = raw.replace(b"{path}", path.encode())
            out.append(
                Case(
                    f"head-{name}",
                    route,
                    "anonymous",
                    partial(exchange, request_head=data, deadline_s=limits.slow_deadline_s),
                    # It promises a body it never sends: a route reading it waits its deadline.
                    slow=name == "length-and-chunked",
                )
            )
        slow = head(route.method, path, {"X-Padding": "p" * 100})
        out.append(
            Case(
                "slow-head",
                route,
                "anonymous",
                partial(trickle, data=slow, every_s=0.2, deadline_s=limits.slow_deadline_s),
                slow=True,
            )
        )
    return out


def run(port: int, todo: list[Case], workers: int = 8) -> list[Outcome]:
    """Run the fast cases ``workers`` at a time and all slow ones at once."""
    slow = [c for c in todo if c.slow]
    fast = [c for c in todo if not c.slow]
    with concurrent.futures.ThreadPoolExecutor(workers + len(slow)) as pool:
        futures = [pool.submit(c.send, port) for c in slow]
        with concurrent.futures.ThreadPoolExecutor(workers) as fast_pool:
            fast_results = list(fast_pool.map(lambda c: c.send(port), fast))
        slow_results = [f.result() for f in futures]
    return [Outcome(c, a) for c, a in zip(slow + fast, slow_results + fast_results, strict=True)]


def refusals(outcomes: list[Outcome]) -> list[Outcome]:
    """Outcomes that are not a 4xx answer."""
    return [o for o in outcomes if o.answer.status is None or not 400 <= o.answer.status < 500]


@dataclass
class Victim:
    """A logged-in user asking for the review queue in a loop, timing each answer."""

    url: str
    token: str
    path: str = "/api/v1/events?limit=50"
    latencies_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _loop(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as c:
            c.headers["Authorization"] = f"Bearer {self.token}"
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    r = c.get(self.path)
                    if r.status_code != 200:
                        self.failures.append(f"{r.status_code} {r.text[:100]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.latencies_s.append(time.perf_counter() - start)
                self._stop.wait(0.02)

    def __enter__(self) -> Victim:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)


def percentile_ms(values_s: list[float], q: float) -> float:
    if len(values_s) < 2:
        return 1000 * (values_s[0] if values_s else float("nan"))
    return 1000 * statistics.quantiles(values_s, n=100, method="inclusive")[int(q) - 1]


@dataclass
class MemoryWatch:
    """Samples the server's VmRSS every ``every_s`` until stopped; the peak in KiB."""

    pid: int
    every_s: float = 0.1
    peak_kb: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, proc_status_kb(self.pid, "VmRSS"))
            self._stop.wait(self.every_s)

    def __enter__(self) -> MemoryWatch:
        self.peak_kb = proc_status_kb(self.pid, "VmRSS")
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


def by_kind(outcomes: list[Outcome]) -> Iterator[tuple[str, int, dict[int | None, int], float]]:
    """Per kind of case: how many, the answers by status, and the slowest answer in s."""
    kinds: dict[str, list[Outcome]] = {}
    for o in outcomes:
        kind = o.case.kind
        if kind.startswith(("path-", "query-")):  # one line for all bad values
            kind = kind.split("-")[0]
        kinds.setdefault(kind, []).append(o)
    for kind, group in sorted(kinds.items()):
        statuses: dict[int | None, int] = {}
        for o in group:
            statuses[o.answer.status] = statuses.get(o.answer.status, 0) + 1
        yield kind, len(group), statuses, max(o.answer.elapsed_s for o in group)
