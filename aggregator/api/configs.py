"""Central camera configs: versions, one document, save (validated: errors name the field),
rollback; the camera's latest snapshot and the rule presets, for the zone editor."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi import Path as FastApiPath
from fastapi.responses import FileResponse
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from sqlalchemy import select

from aggregator.api.auth import require
from aggregator.api.deps import RowId, ServicesDep
from aggregator.api.media import download
from aggregator.api.schemas.common import errors
from aggregator.api.schemas.configs import (
    ConfigCreate,
    ConfigDocumentPublic,
    ConfigInvalidPublic,
    ConfigRollback,
    ConfigVersionPublic,
    ParameterPublic,
    PresetsPublic,
)
from aggregator.auth import User
from aggregator.db.models import EVENTS, MEDIA
from aggregator.fleet.configs import CameraConfigs, ConfigVersion
from aggregator.fleet.errors import ConfigInvalidError, FleetError
from contract.config.errors import field_path
from contract.config.rules import (
    PRESETS,
    CountRuleConfig,
    DwellRuleConfig,
    LeftObjectRuleConfig,
)
from contract.wire import MAX_CAMERA_CHARS

router = APIRouter(
    prefix="/api/v1",
    tags=["configs"],
    dependencies=[Depends(require("viewer"))],
    responses=errors(401),
)
Camera = Annotated[str, FastApiPath(min_length=1, max_length=MAX_CAMERA_CHARS)]
Admin = Annotated[User, Depends(require("admin"))]
INVALID: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ConfigInvalidPublic,
        "description": "The config is refused: each problem "
        "names its field (loc), e.g. zones[0].polygon.",
    }
}
SNAPSHOT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The JPEG of the camera's latest event that has a snapshot.",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
    },
}
RULE_KINDS: dict[str, type[BaseModel]] = {
    "count": CountRuleConfig,
    "dwell": DwellRuleConfig,
    "left_object": LeftObjectRuleConfig,
}


def _configs(services: Any) -> CameraConfigs:
    return CameraConfigs(services.engine, services.fleet, services.modes)


def _version(v: ConfigVersion) -> ConfigVersionPublic:
    return ConfigVersionPublic(
        camera=v.camera,
        version=v.version,
        sha256=v.sha256,
        author=v.author,
        reason=v.reason,
        created_at=v.created_at,
    )


def _document(v: ConfigVersion) -> ConfigDocumentPublic:
    return ConfigDocumentPublic(**_version(v).model_dump(), config=v.document or {})


def _refused(exc: FleetError) -> HTTPException:
    """The HTTP answer of a refusal: a refused config lists its problems by field."""
    if isinstance(exc, ConfigInvalidError):
        issues = [{"loc": field_path(loc) if loc else "", "msg": msg} for loc, msg in exc.issues]
        return HTTPException(422, issues)
    return HTTPException(exc.status, str(exc))


@router.get("/cameras/{camera}/configs", responses=errors(404, 422))
def history(camera: Camera, services: ServicesDep) -> list[ConfigVersionPublic]:
    """Every version of the camera's central config, newest first; 404 for a camera no edge
    has reported."""
    try:
        return [_version(v) for v in _configs(services).history(camera)]
    except FleetError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.get("/cameras/{camera}/configs/latest", responses=errors(404, 422))
def latest(camera: Camera, services: ServicesDep) -> ConfigDocumentPublic:
    """The newest version with its document."""
    try:
        return _document(_configs(services).get(camera))
    except FleetError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.get("/cameras/{camera}/configs/{version}", responses=errors(404, 422))
def one(camera: Camera, version: RowId, services: ServicesDep) -> ConfigDocumentPublic:
    """One version with its document."""
    try:
        return _document(_configs(services).get(camera, version))
    except FleetError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.post(
    "/cameras/{camera}/configs", status_code=201, responses={**errors(400, 403, 409), **INVALID}
)
def save(
    camera: Camera, body: ConfigCreate, services: ServicesDep, user: Admin
) -> ConfigDocumentPublic:
    """Save a new version (admin). It is validated with the edge's own schema, and must carry
    the camera's id, leave source out (streams stay on the box), name classes the model
    knows and fit fleet.max_config_bytes; the ingest then pushes it to the camera's edge."""
    try:
        saved = _configs(services).save(camera, body.config, user.username, body.reason)
    except FleetError as exc:
        raise _refused(exc) from None
    return _document(saved)


@router.post(
    "/cameras/{camera}/configs/rollback",
    status_code=201,
    responses={**errors(400, 403, 404, 409), **INVALID},
)
def rollback(
    camera: Camera, body: ConfigRollback, services: ServicesDep, user: Admin
) -> ConfigDocumentPublic:
    """Save version's document again as the newest version (admin)."""
    try:
        saved = _configs(services).rollback(camera, body.version, user.username, body.reason)
    except FleetError as exc:
        raise _refused(exc) from None
    return _document(saved)


@router.get(
    "/cameras/{camera}/snapshot",
    response_class=FileResponse,
    responses={**SNAPSHOT_RESPONSE, **errors(404, 422)},
)
def snapshot(camera: Camera, request: Request, services: ServicesDep) -> Response:
    """The camera's latest snapshot (of its latest event that has one uploaded): the
    picture the zone editor draws on."""
    with services.engine.connect() as conn:
        snap = conn.execute(
            select(EVENTS.c.snapshot_id)
            .join(MEDIA, MEDIA.c.media_id == EVENTS.c.snapshot_id)
            .where(EVENTS.c.camera == camera)
            .order_by(EVENTS.c.started_ts.desc())
            .limit(1)
        ).scalar()
    if snap is None or services.media is None:
        raise HTTPException(404, f"no snapshot of camera '{camera}' yet")
    return download(uuid.UUID(str(snap)), request, services)


def _parameter(name: str, info: FieldInfo) -> ParameterPublic:
    if info.default_factory is not None:
        default = info.default_factory()  # type: ignore[call-arg]
    else:
        default = None if info.default is PydanticUndefined else info.default
    return ParameterPublic(name=name, default=default, description=info.description)


@router.get("/presets")
def presets() -> PresetsPublic:
    """The rule presets and every parameter of each rule kind, for the zone editor."""
    return PresetsPublic(
        presets={name: dict(p) for name, p in PRESETS.items()},
        parameters={
            kind: [
                _parameter(name, info)
                for name, info in model.model_fields.items()
                if name not in ("kind", "preset")
            ]
            for kind, model in RULE_KINDS.items()
        },
    )
