"""The HTTP front every request meets before a route: security headers, a capped body that
is refused before it is read when it is too large or its sender is not logged in, deadlines
for the request head and body, and the uvicorn settings that go with them.

Starlette and FastAPI have a body limit of their own (``max_body_size``); it is not used
here because its 413 does not name the limit, it keeps a refused connection open to drain
the rest of the body, and it cannot check the session before the body: one middleware does
all three, with the body deadline."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import uvicorn
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from aggregator.core.config import HttpConfig

log = logging.getLogger(__name__)

#: Only this origin's scripts, styles, images and media; no framing (clickjacking).
CSP = "default-src 'self'; frame-ancestors 'none'"
#: Swagger UI (only with ``http.docs``) loads its script and style from a CDN and starts
#: with an inline script: that page alone allows them.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


def media_csp(origin: str | None, image_origin: str | None = None) -> str:
    """CSP that also lets pages load images and videos from origin (the evidence bucket,
    when downloads are redirected to presigned URLs: media.s3.serve: redirect) and images
    from image_origin (the map's tiles, grid.tile_url)."""
    if origin is None and image_origin is None:
        return CSP
    images = " ".join(o for o in (origin, image_origin) if o)
    media = f"media-src 'self' {origin}; " if origin else ""
    return f"default-src 'self'; img-src 'self' {images}; {media}frame-ancestors 'none'"


class SecurityHeaders:
    """Pure ASGI middleware: CSP, nosniff, Referrer-Policy and X-Frame-Options on every
    HTTP answer, whatever produced it (a route, a static file, a refusal)."""

    def __init__(
        self,
        app: ASGIApp,
        docs_path: str | None = None,
        media_origin: str | None = None,
        image_origin: str | None = None,
    ) -> None:
        self.app = app
        self.docs_path = docs_path
        self.csp = media_csp(media_origin, image_origin)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"] == self.docs_path else self.csp

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["content-security-policy"] = csp
                for name, value in SECURITY_HEADERS:
                    headers[name.decode()] = value.decode()
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass(frozen=True)
class BodyRule:
    """What a request body may be: its size, how long it may take to arrive, and whether
    the sender's session is checked before any of it is read."""

    limit_bytes: int
    timeout_s: float
    login_first: bool = False


@dataclass(frozen=True)
class RouteBody:
    """The body rule of the routes whose path matches ``path`` for one of ``methods``."""

    methods: frozenset[str]
    path: re.Pattern[str]
    rule: BodyRule


#: Checks the session of a request from its headers alone: None when it may go on, else
#: the reason for a 401.
LoginCheck = Callable[[Scope], Awaitable[str | None]]


async def _answer(
    send: Send, status: int, detail: str, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A JSON error in FastAPI's {"detail": ...} shape; the connection closes after it, so a
    body still on its way is never read."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    # uvicorn (h11) already refused a Content-Length that is not a number with 400.
    return int(value) if value is not None and value.isdigit() else None


class _Body:
    """The request body as the app reads it: counted against the rule's limit and
    deadline. When either is passed, the client gets 413 or 408 at once and the app sees a
    disconnect; what the app sends after that is dropped."""

    def __init__(self, receive: Receive, send: Send, rule: BodyRule, has_body: bool) -> None:
        self._receive = receive
        self._send = send
        self.rule = rule
        self.deadline = anyio.current_time() + rule.timeout_s
        self.received_bytes = 0
        self.complete = not has_body
        self.refused = False
        self.started = False

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        if self.complete:  # e.g. Starlette waiting for a disconnect while it streams a file
            return await self._receive()
        try:
            with anyio.fail_after(max(0.0, self.deadline - anyio.current_time())):
                message = await self._receive()
        except TimeoutError:
            await self._refuse(
                408, f"the request body did not arrive within {self.rule.timeout_s:g} s"
            )
            return {"type": "http.disconnect"}
        if message["type"] == "http.request":
            self.received_bytes += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            if self.received_bytes > self.rule.limit_bytes:
                await self._refuse(
                    413, f"request body exceeds the limit of {self.rule.limit_bytes} bytes"
                )
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.started = True
            if not self.complete:
                # Answered before the body was read (e.g. 401): close rather than drain it.
                MutableHeaders(scope=message)["connection"] = "close"
        await self._send(message)

    async def _refuse(self, status: int, detail: str) -> None:
        self.refused = True
        if not self.started:
            self.started = True
            await _answer(self._send, status, detail)


class RequestGate:
    """Pure ASGI middleware: a request head over ``max_head_bytes`` is refused with 431;
    each request's body meets the rule of its route (or the default): a declared length
    over the limit is refused with 413 before the body is read, a route that needs a login
    checks the session before the body is read (401), and the body is counted as it
    arrives (413) within its deadline (408)."""

    def __init__(
        self,
        app: ASGIApp,
        default: BodyRule,
        routes: Sequence[RouteBody],
        check_login: LoginCheck,
        max_head_bytes: int,
    ) -> None:
        self.app = app
        self.default = default
        self.routes = tuple(routes)
        self.check_login = check_login
        self.max_head_bytes = max_head_bytes

    def rule_for(self, method: str, path: str) -> BodyRule:
        for route in self.routes:
            if method in route.methods and route.path.match(path):
                return route.rule
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # uvicorn's h11 limit holds only while a head is incomplete: one that arrives whole
        # in a single read (up to 256 KiB) passes it, so its size is checked here too.
        head_bytes = len(scope["raw_path"]) + len(scope["query_string"])
        head_bytes += sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if head_bytes > self.max_head_bytes:
            await _answer(
                send,
                431,
                f"request head of {head_bytes} bytes exceeds the limit of "
                f"{self.max_head_bytes} bytes",
            )
            return
        rule = self.rule_for(scope["method"], scope["path"])
        headers = Headers(scope=scope)
        declared = _declared_length(headers)
        has_body = bool(declared) or "transfer-encoding" in headers
        if declared is not None and declared > rule.limit_bytes:
            await _answer(
                send,
                413,
                f"request body of {declared} bytes exceeds the limit of {rule.limit_bytes} bytes",
            )
            return
        if has_body and rule.login_first:
            refusal = await self.check_login(scope)
            if refusal is not None:
                await _answer(send, 401, refusal, [(b"www-authenticate", b"Bearer")])
                return
        body = _Body(receive, send, rule, has_body)
        try:
            await self.app(scope, body.receive, body.send)
        except ClientDisconnect:
            if not body.refused:
                raise
            # The app read on after this gate refused the body: the client has its answer.
            log.debug(
                "%s %s: body refused, the app stopped reading", scope["method"], scope["path"]
            )


def head_timeout_protocol(header_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline for each request head. uvicorn alone waits
    for a head as long as bytes keep coming (each byte restarts its keep-alive timer), so a
    client sending a byte a second holds a connection for ever (slowloris)."""

    class HeadDeadlineH11(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            super().send_400_response(msg)
            # A malformed body (a bad chunk) arrives after its request went to the app:
            # uvicorn answers 400 but lets the app answer too, into a closed h11 state,
            # which logs an exception each time. The app now sees a disconnect instead.
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()

        def _arm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            if self.transport.is_closing():
                return
            # The cycle of the last request (None: none yet); a new head makes a new one.
            waiting_after = self.cycle
            self._head_timer = self.loop.call_later(
                header_timeout_s, self._head_timed_out, waiting_after
            )

        def _head_timed_out(self, waiting_after: Any) -> None:
            self._head_timer = None
            if self.transport.is_closing() or self.cycle is not waiting_after:
                return  # closed, or a new request head arrived in time
            if waiting_after is not None and not waiting_after.response_complete:
                return  # a pipelined request is being answered
            detail = f"the request head did not arrive within {header_timeout_s:g} s".encode()
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"x-content-type-options: nosniff\r\nconnection: close\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(detail), detail)
            )
            self.transport.close()

    return HeadDeadlineH11


def uvicorn_config(app: ASGIApp, cfg: HttpConfig, log_config: Any) -> uvicorn.Config:
    """How the aggregator runs uvicorn: h11 with a head deadline, a bounded head size, a
    short keep-alive, and proxy headers believed only from ``http.trusted_proxies`` (uvicorn
    would otherwise trust X-Forwarded-For from 127.0.0.1)."""
    return uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        log_level="warning",
        log_config=log_config,
        http=head_timeout_protocol(cfg.header_timeout_s),
        h11_max_incomplete_event_size=cfg.max_header_bytes,
        timeout_keep_alive=cfg.keep_alive_s,
        proxy_headers=bool(cfg.trusted_proxies),
        forwarded_allow_ips=list(cfg.trusted_proxies) or None,
        server_header=False,
        ssl_certfile=cfg.tls_cert_file,
        ssl_keyfile=cfg.tls_key_file,
    )
