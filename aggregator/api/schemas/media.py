"""Evidence: what an upload answers, and the file a download returns."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

from aggregator.api.schemas.common import ErrorPublic
from contract.uploads import CONTENT_TYPES


class MediaStored(BaseModel):
    media_id: uuid.UUID
    stored: Literal["new", "already"] = Field(
        description="new (201) the first time; already (200) when the same upload comes again."
    )


#: GET /api/v1/media/{id} in OpenAPI: the file itself, a clip or a snapshot.
DOWNLOAD_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file, whole or the requested byte range (206).",
        "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in CONTENT_TYPES.values()
        },
    },
    206: {
        "description": "Partial content for a Range request.",
        "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in CONTENT_TYPES.values()
        },
    },
    307: {
        "description": "With media.s3.serve: redirect, a presigned URL of the object in the "
        "bucket (valid for media.s3.presign_expiry_s); it answers Range requests itself.",
    },
}

#: The refusals of a download, beyond the common ones.
DOWNLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorPublic,
        "description": "The evidence store (media.store: s3) cannot be read now.",
    },
}
