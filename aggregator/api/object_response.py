"""Evidence in a bucket, answered through the API: streamed with HTTP range requests the way
Starlette's FileResponse answers them for local files (so players seek the same either way:
206 with Content-Range, multipart/byteranges for several ranges, 416 with Content-Range:
bytes */size, 400 for a malformed header, the whole object past 100 ranges), or a 307 to a
presigned URL, where the bucket answers ranges itself.

The first request to the bucket is made before the answer starts, so a missing object is
a 404, not a broken 200; the body is read piece by piece on a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from email.utils import formatdate
from secrets import token_hex

from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse

from aggregator.blobs.s3 import S3Blobs
from aggregator.media_upload import StoredMedia

#: More ranges than this in one request: answer the whole object (as FileResponse does).
MAX_RANGES = 100


class MalformedRangeError(ValueError):
    """A Range header that cannot be parsed (400)."""


class UnsatisfiableRangeError(ValueError):
    """A range that starts past the end of the object (416)."""


def parse_ranges(header: str, size: int) -> list[tuple[int, int]]:
    """The [start, end) byte ranges a Range header asks of size bytes, sorted and merged
    when there are several; [] for too many (serve the whole object)."""
    units, sep, spec = header.partition("=")
    if not sep:
        raise MalformedRangeError("Malformed range header.")
    if units.strip().lower() != "bytes":
        raise MalformedRangeError("Only support bytes range")
    if spec.count(",") + 1 > MAX_RANGES:
        return []
    ranges: list[tuple[int, int]] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part or part == "-" or "-" not in part:
            continue  # ignored, as FileResponse ignores them
        first, _, last = (s.strip() for s in part.partition("-"))
        try:
            start = int(first) if first else max(size - int(last), 0)
            end = int(last) + 1 if first and last and int(last) < size else size
        except ValueError:
            continue
        ranges.append((start, end))
    if not ranges:
        raise MalformedRangeError("Range header: range must be requested")
    if any(not 0 <= start < size for start, _ in ranges):
        raise UnsatisfiableRangeError(f"bytes */{size}")
    if any(start >= end for start, end in ranges):
        raise MalformedRangeError("Range header: start must be less than end")
    merged = [min(ranges)]
    for start, end in sorted(ranges)[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def object_response(blobs: S3Blobs, found: StoredMedia, request: Mapping[str, str]) -> Response:
    """The answer to GET for found, given the request's headers."""
    if blobs.cfg.serve == "redirect":
        return RedirectResponse(blobs.presign(found.key), status_code=307)
    size, key = found.size, found.key
    headers = {
        "accept-ranges": "bytes",
        # Content-addressed, so the hash is a strong validator for If-Range.
        "etag": f'"{found.sha256}"',
        "last-modified": formatdate(found.received_at, usegmt=True),
    }
    wanted, if_range = request.get("range"), request.get("if-range")
    ranges: list[tuple[int, int]] = []
    if wanted is not None and (
        if_range is None or if_range in (headers["etag"], headers["last-modified"])
    ):
        try:
            ranges = parse_ranges(wanted, size)
        except MalformedRangeError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        except UnsatisfiableRangeError as exc:
            return PlainTextResponse("", status_code=416, headers={"content-range": str(exc)})
    ct = found.content_type
    if not ranges:
        headers["content-length"] = str(size)
        return StreamingResponse(blobs.read(key, 0, size), media_type=ct, headers=headers)
    if len(ranges) == 1:
        start, end = ranges[0]
        headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
        headers["content-length"] = str(end - start)
        body = blobs.read(key, start, end)
        return StreamingResponse(body, status_code=206, media_type=ct, headers=headers)
    return _multipart(blobs, found, ranges, headers)


def _multipart(
    blobs: S3Blobs, found: StoredMedia, ranges: list[tuple[int, int]], headers: dict[str, str]
) -> Response:
    boundary = token_hex(13)

    def part_head(start: int, end: int) -> bytes:
        return (
            f"--{boundary}\r\nContent-Type: {found.content_type}\r\n"
            f"Content-Range: bytes {start}-{end - 1}/{found.size}\r\n\r\n"
        ).encode("latin-1")

    closing = f"--{boundary}--".encode("latin-1")
    length = sum(len(part_head(s, e)) + (e - s) + 2 for s, e in ranges) + len(closing)
    first = blobs.read(found.key, *ranges[0])  # now: a missing object is a 404

    def body() -> Iterator[bytes]:
        for i, (start, end) in enumerate(ranges):
            yield part_head(start, end)
            yield from first if i == 0 else blobs.read(found.key, start, end)
            yield b"\r\n"
        yield closing

    headers["content-length"] = str(length)
    return StreamingResponse(
        body(),
        status_code=206,
        media_type=f"multipart/byteranges; boundary={boundary}",
        headers=headers,
    )
