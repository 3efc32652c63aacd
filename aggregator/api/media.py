"""Evidence upload (edges, with their token) and download (with HTTP range requests)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import FileResponse
from sqlalchemy import select

from aggregator.api.auth import require
from aggregator.api.deps import ServicesDep
from aggregator.db.models import EDGES
from aggregator.media import MediaError, Upload, sniff

router = APIRouter(prefix="/api/v1/media", tags=["media"])


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


@router.put("/{media_id}", status_code=201)
async def upload(
    media_id: uuid.UUID,
    request: Request,
    services: ServicesDep,
    edge_id: EdgeDep,
    content_type: Annotated[str, Header()],
    x_event_id: Annotated[uuid.UUID, Header()],
    x_content_sha256: Annotated[str, Header(pattern=r"^[0-9a-fA-F]{64}$")],
    x_media_kind: Annotated[str, Header(pattern=r"^(clip|snapshot)$")],
    x_start_ts: Annotated[float, Header()] = 0.0,
    x_duration_s: Annotated[float, Header(ge=0)] = 0.0,
) -> dict[str, Any]:
    """Store one clip or snapshot. Idempotent: the same upload again answers 200."""
    store = services.media
    assert store is not None
    limit = store.cfg.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {declared} bytes exceeds the limit of {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"upload exceeds the limit of {limit} bytes")
    try:
        sniff(content_type.split(";")[0].strip(), bytes(body[:16]))
        created = store.save(
            Upload(
                media_id,
                edge_id,
                x_event_id,
                x_media_kind,
                content_type.split(";")[0].strip(),
                x_content_sha256,
                x_start_ts,
                x_duration_s,
            ),
            bytes(body),
        )
    except MediaError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    if not created:
        from fastapi.responses import JSONResponse

        return JSONResponse({"media_id": str(media_id), "stored": "already"}, status_code=200)  # type: ignore[return-value]
    return {"media_id": str(media_id), "stored": "new"}


@router.get("/{media_id}", dependencies=[Depends(require("viewer"))])
def download(media_id: uuid.UUID, services: ServicesDep) -> FileResponse:
    """The file; supports Range requests so video players can seek."""
    assert services.media is not None
    found = services.media.locate(media_id)
    if found is None or not found[0].is_file():
        raise HTTPException(404, f"no media {media_id} (pending upload, or removed by retention)")
    return FileResponse(found[0], media_type=found[1])
