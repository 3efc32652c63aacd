"""Evidence upload (edges, with their token) and download (with HTTP range requests)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from fastapi.responses import FileResponse
from sqlalchemy import select

from aggregator.api.auth import require
from aggregator.api.deps import ServicesDep
from aggregator.api.schemas.common import ErrorPublic, errors
from aggregator.api.schemas.media import DOWNLOAD_ERRORS, DOWNLOAD_RESPONSE, MediaStored
from aggregator.blobs import BlobStoreError, LocalBlobs, MissingBlobError
from aggregator.blobs.spool import Incoming, SpoolFullError
from aggregator.db.models import EDGES
from aggregator.media_upload import MediaError, Upload, sniff
from contract.uploads import (
    HEADER_DURATION_S,
    HEADER_EVENT_ID,
    HEADER_KIND,
    HEADER_SHA256,
    HEADER_START_TS,
    MEDIA_KINDS,
    UploadHeaderError,
    UploadHeaders,
)

router = APIRouter(prefix="/api/v1/media", tags=["media"], responses=errors(401))


def edge_from_token(
    services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> str:
    """The edge whose upload token this is (Authorization: Bearer TOKEN)."""
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(
            401,
            "missing upload token: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    digest = hashlib.sha256(authorization.removeprefix("Bearer ").strip().encode()).hexdigest()
    with services.engine.connect() as conn:
        row = conn.execute(
            select(EDGES.c.edge_id).where(
                EDGES.c.token_sha256 == digest, EDGES.c.revoked_at.is_(None)
            )
        ).first()
    if row is None:
        raise HTTPException(
            401, "unknown or revoked upload token", headers={"WWW-Authenticate": "Bearer"}
        )
    return str(row.edge_id)


EdgeDep = Annotated[str, Depends(edge_from_token)]


def upload_headers(request: Request) -> UploadHeaders:
    """The upload's description, parsed by the contract (one parser for both sides)."""
    try:
        return UploadHeaders.from_http(request.headers)
    except UploadHeaderError as exc:
        raise HTTPException(422, str(exc)) from None


def _header(name: str, schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": schema}


#: The headers are read through the contract, not FastAPI parameters; this documents them.
UPLOAD_HEADERS_OPENAPI: dict[str, Any] = {
    "parameters": [
        _header(HEADER_EVENT_ID, {"type": "string", "format": "uuid"}),
        _header(HEADER_KIND, {"type": "string", "enum": list(MEDIA_KINDS)}),
        _header(HEADER_SHA256, {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}),
        _header(HEADER_START_TS, {"type": "number"}, required=False),
        _header(HEADER_DURATION_S, {"type": "number", "minimum": 0}, required=False),
    ]
}


#: Received bytes are handed to a worker thread in pieces of this size: hashing and writing
#: a clip on the event loop would stall every other request for as long (bench_upload_stall).
WRITE_PIECE_BYTES = 1024 * 1024

#: The refusals of an upload, beyond the common ones.
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ErrorPublic,
        "description": "The event, or this media id, belongs to another edge.",
    },
    503: {
        "model": ErrorPublic,
        "description": "The upload could not be recorded; nothing was kept: send it again.",
    },
    507: {
        "model": ErrorPublic,
        "description": "No room: the edge's quota (media.per_edge_max_bytes) is used up, or "
        "evidence under legal hold fills media.max_total_bytes. Send it again later.",
    },
}


@router.put(
    "/{media_id}",
    status_code=201,
    responses={
        200: {"model": MediaStored, "description": "Already stored: the same upload again."},
        **errors(400, 409, 413, 415, 422),
        **UPLOAD_ERRORS,
    },
    openapi_extra=UPLOAD_HEADERS_OPENAPI,
)
async def upload(
    media_id: uuid.UUID,
    request: Request,
    response: Response,
    services: ServicesDep,
    edge_id: EdgeDep,
    meta: Annotated[UploadHeaders, Depends(upload_headers)],
) -> MediaStored:
    """Store one clip or snapshot. Idempotent: the same upload again answers 200."""
    store = services.media
    assert store is not None
    limit = store.cfg.max_upload_bytes
    declared = request.headers.get("content-length")
    size = int(declared) if declared is not None and declared.isdigit() else None
    if size is not None and size > limit:
        raise HTTPException(413, f"upload of {declared} bytes exceeds the limit of {limit}")
    up = Upload(
        media_id,
        edge_id,
        uuid.UUID(meta.event_id),
        meta.kind,
        meta.content_type,
        meta.sha256,
        meta.start_ts,
        meta.duration_s,
    )
    try:
        # Before the body: another edge's event, or no room, is refused without reading it.
        await to_thread.run_sync(store.precheck, edge_id, meta.event_id, str(media_id), size)
        incoming = await to_thread.run_sync(store.incoming)
        try:
            await _receive(request, incoming, limit)
            sniff(meta.content_type, incoming.head)
        except BaseException:
            await to_thread.run_sync(incoming.discard)
            raise
        created = await to_thread.run_sync(store.commit, up, incoming)
    except MediaError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except SpoolFullError as exc:
        raise HTTPException(507, exc.strerror) from None
    if not created:
        response.status_code = 200
    return MediaStored(media_id=media_id, stored="new" if created else "already")


async def _receive(request: Request, incoming: Incoming, limit: int) -> None:
    """The body into incoming, written and hashed by a worker thread a piece at a time."""
    piece = bytearray()
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise HTTPException(413, f"upload exceeds the limit of {limit} bytes")
        piece += chunk
        if len(piece) >= WRITE_PIECE_BYTES:
            await to_thread.run_sync(incoming.write, bytes(piece))
            piece.clear()
    if piece:
        await to_thread.run_sync(incoming.write, bytes(piece))


@router.get(
    "/{media_id}",
    dependencies=[Depends(require("viewer"))],
    response_class=FileResponse,
    responses={**DOWNLOAD_RESPONSE, **errors(404, 422), **DOWNLOAD_ERRORS},
)
def download(media_id: uuid.UUID, request: Request, services: ServicesDep) -> Response:
    """The file; supports Range requests so video players can seek. From a bucket it is
    streamed the same way, or (media.s3.serve: redirect) a 307 to a presigned URL."""
    store = services.media
    assert store is not None
    found = store.locate(media_id)
    gone = HTTPException(404, f"no media {media_id} (pending upload, or removed by retention)")
    if found is None:
        raise gone
    if isinstance(store.blobs, LocalBlobs):
        path = store.blobs.path(found.key)
        if not path.is_file():
            raise gone
        return FileResponse(path, media_type=found.content_type)
    # boto3 is imported only where evidence is in a bucket.
    from aggregator.api.object_response import object_response
    from aggregator.blobs.s3 import S3Blobs

    assert isinstance(store.blobs, S3Blobs)
    try:
        return object_response(store.blobs, found, request.headers)
    except MissingBlobError:
        raise gone from None
    except BlobStoreError as exc:
        detail = f"media {media_id}: the evidence store cannot be read: {exc}"
        raise HTTPException(503, detail) from None
