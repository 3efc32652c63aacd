"""HTTP/1.1 over raw loopback sockets, for requests no well-behaved client library sends:
bodies that keep coming after the server answered, heads sent a byte at a time, malformed
request lines. Every call is bounded in time and bytes; memory figures come from /proc."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class RawAnswer:
    status: int | None  # None: the connection closed (or the deadline passed) with no answer
    head: str  # status line and headers as received
    body: bytes
    sent_bytes: int  # request bytes the server took before it answered or closed
    elapsed_s: float
    closed: bool  # the server closed the connection

    def __str__(self) -> str:
        return (
            f"status {self.status} after {self.elapsed_s:.2f} s, {self.sent_bytes} bytes sent, "
            f"closed={self.closed}: {self.head.splitlines()[:1]} {self.body[:200]!r}"
        )


def connect(port: int, source: str = "127.0.0.1", timeout_s: float = 10.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout_s, source_address=(source, 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def body_chunks(total_bytes: int, chunked: bool, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """``total_bytes`` of filler (the start of a JSON string), framed when ``chunked``."""
    piece = b"x" * chunk_bytes
    left = total_bytes
    while left > 0:
        n = min(left, chunk_bytes)
        left -= n
        yield (b"%x\r\n" % n + piece[:n] + b"\r\n") if chunked else piece[:n]
    if chunked:
        yield b"0\r\n\r\n"


def parse(raw: bytes) -> tuple[int | None, str, bytes]:
    head_bytes, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return None, raw.decode("latin-1"), b""
    text = head_bytes.decode("latin-1")
    parts = text.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return status, text, body


def read_answer(s: socket.socket, deadline: float) -> tuple[bytes, bool]:
    """What the server sends until it closes, the whole answer is in, or the deadline."""
    raw = b""
    while time.monotonic() < deadline:
        readable, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if not readable:
            break
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            return raw, True
        if not data:
            return raw, True
        raw += data
        status, text, body = parse(raw)
        length = next(
            (
                int(line.split(":", 1)[1])
                for line in text.lower().splitlines()
                if line.startswith("content-length:")
            ),
            None,
        )
        if status is not None and length is not None and len(body) >= length:
            return raw, False
    return raw, False


def exchange(
    port: int,
    request_head: bytes,
    body: Iterator[bytes] | None = None,
    deadline_s: float = 30.0,
    source: str = "127.0.0.1",
) -> RawAnswer:
    """Send the head, then the body while the server reads it, and stop sending as soon as
    the server answers or closes; the answer, and how much of the request it took."""
    start = time.monotonic()
    deadline = start + deadline_s
    chunks = body if body is not None else iter(())
    s = connect(port, source)
    s.setblocking(False)
    pending = request_head
    sent = 0
    raw = b""
    closed = False
    try:
        while time.monotonic() < deadline:
            if not pending:
                pending = next(chunks, b"")
            want_write = [s] if pending else []
            readable, writable, _ = select.select([s], want_write, [], 0.5)
            if readable:
                s.setblocking(True)
                raw, closed = read_answer(s, deadline)
                break
            if writable and pending:
                try:
                    n = s.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                sent += n
                pending = pending[n:]
    finally:
        s.close()
    status, text, rest = parse(raw)
    return RawAnswer(status, text, rest, sent, time.monotonic() - start, closed)


def trickle(
    port: int,
    data: bytes,
    every_s: float,
    deadline_s: float,
    at_once_bytes: int = 0,
    source: str = "127.0.0.1",
) -> RawAnswer:
    """Send the first ``at_once_bytes`` of ``data`` at once, then one byte per ``every_s``
    (slowloris), stopping as soon as the server answers or closes, or at the deadline."""
    start = time.monotonic()
    deadline = start + deadline_s
    s = connect(port, source)
    s.sendall(data[:at_once_bytes])
    sent = at_once_bytes
    raw = b""
    closed = False
    try:
        while time.monotonic() < deadline and sent < len(data):
            readable, _, _ = select.select([s], [], [], every_s)
            if readable:
                raw, closed = read_answer(s, deadline)
                break
            try:
                sent += s.send(data[sent : sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        else:
            raw, closed = read_answer(s, deadline)
    finally:
        s.close()
    status, text, rest = parse(raw)
    return RawAnswer(status, text, rest, sent, time.monotonic() - start, closed)


def proc_status_kb(pid: int, field: str) -> int:
    """A memory field of /proc/PID/status in KiB: VmRSS (now) or VmHWM (peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(f"/proc/{pid}/status has no field {field}")
