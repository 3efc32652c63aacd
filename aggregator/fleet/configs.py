"""Central camera configs: validated with the contract's CameraConfig (the schema the edge
loads), versioned per camera with author and reason, never changed once saved (a rollback
saves an earlier document again as a new version), every save audited (entity "camera").

Beyond the schema a stored config must: carry the camera's own id; leave ``source`` out (the
stream address stays on the box); name only classes the detector model knows, when the model
is one of the manifest's; fit every mode's parameter overrides; and be at most
``fleet.max_config_bytes`` of JSON, so one push fits one message.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy import exc as sa_exc

from aggregator.core.fleet_config import FleetConfig, ModesConfig
from aggregator.db.models import AUDIT, CAMERA_CONFIGS, CAMERA_EDGES, CAMERAS, FLEET_CAMERAS
from aggregator.fleet.errors import ConfigInvalidError, FleetError
from aggregator.fleet.modes import MAX_ACTOR_CHARS, MAX_REASON_CHARS, overrides_of
from contract.config.camera import CameraConfig
from contract.config.errors import problems
from contract.config.manifest import Manifest, load_manifest, model_class_names
from contract.config.modes import apply_mode
from contract.config.yaml_source import Loc
from contract.errors import ConfigError

#: Saves that lost the race for a version number to a concurrent save are tried again.
SAVE_ATTEMPTS = 3

Issues = list[tuple[Loc, str]]


def canonical_json(document: Any) -> bytes:
    """The document's one JSON form (sorted keys, no spaces): what is hashed and measured."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


@functools.cache
def _manifest() -> Manifest | None:
    """The installed model manifest; None without it (classes are then checked on the box)."""
    try:
        return load_manifest()
    except ConfigError:
        return None


def _class_issues(cfg: CameraConfig) -> Issues:
    """Classes the detector model does not know, when it is a manifest model."""
    manifest = _manifest()
    known = model_class_names(cfg.detector.model, manifest) if manifest else None
    if known is None:
        return []
    named: list[tuple[Loc, list[str]]] = [
        (("detection", "classes"), cfg.detection.classes or []),
        (("detection", "class_score_thresholds"), list(cfg.detection.class_score_thresholds)),
    ]
    for z, zone in enumerate(cfg.zones):
        for r, rule in enumerate(zone.rules):
            named.append((("zones", z, "rules", r, "classes"), rule.classes))
            owners = getattr(rule, "owner_classes", None)
            if owners:
                named.append((("zones", z, "rules", r, "owner_classes"), owners))
    out: Issues = []
    for loc, names in named:
        for name in names:
            if name not in known:
                out.append((loc, _unknown_class(name, cfg.detector.model, known)))
    return out


def _unknown_class(name: str, model: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown class '{name}' for model {model}{hint}"


def _mode_issues(cfg: CameraConfig, modes: ModesConfig) -> Issues:
    out: Issues = []
    for name, definition in sorted(modes.definitions.items()):
        try:
            apply_mode(cfg, overrides_of(name, definition))
        except ConfigError as exc:
            out.append(((), f"mode '{name}': {exc}"))
    return out


def validate_document(
    camera: str, document: Any, fleet: FleetConfig, modes: ModesConfig
) -> tuple[CameraConfig | None, Issues]:
    """The config and no issues, or None and every problem found, each naming its field."""
    if not isinstance(document, dict):
        return None, [((), "a camera config must be a JSON object")]
    try:
        size = len(canonical_json(document))
    except (TypeError, ValueError) as exc:  # NaN, infinity, a YAML date: not JSON
        return None, [((), f"not valid JSON: {exc}")]
    if size > fleet.max_config_bytes:
        return None, [
            (
                (),
                f"config is {size} bytes of JSON, more than fleet.max_config_bytes "
                f"({fleet.max_config_bytes})",
            )
        ]
    issues: Issues = []
    if "id" in document and document["id"] != camera:  # a missing id: the schema says so
        issues.append((("id",), f"id {document.get('id')!r} must be the camera '{camera}'"))
    if document.get("source") is not None:
        issues.append(
            (("source",), "must be absent: the stream address stays in the box's own config")
        )
    try:
        cfg = CameraConfig.model_validate(document)
    except ValidationError as exc:
        return None, issues + problems(exc, document)
    issues += _class_issues(cfg)
    if not issues:
        issues += _mode_issues(cfg, modes)
    return (None, issues) if issues else (cfg, [])


@dataclass(frozen=True)
class ConfigVersion:
    camera: str
    version: int
    sha256: str
    author: str
    reason: str
    created_at: float
    #: The document; None where only the history was asked for.
    document: dict[str, Any] | None = None


def _version_of(row: Any, with_document: bool) -> ConfigVersion:
    return ConfigVersion(
        camera=str(row.camera_id),
        version=int(row.version),
        sha256=str(row.sha256),
        author=str(row.author),
        reason=str(row.reason),
        created_at=float(row.created_at),
        document=dict(row.document) if with_document else None,
    )


def _text(value: str, what: str, max_chars: int) -> str:
    value = value.strip()
    if not value:
        raise FleetError(422, f"{what} must not be empty")
    if len(value) > max_chars:
        raise FleetError(422, f"{what} has {len(value)} characters, at most {max_chars}")
    return value


def _known(conn: Connection, camera: str) -> bool:
    """Whether any edge has reported the camera or an operator has placed it."""
    for table in (CAMERA_EDGES, FLEET_CAMERAS, CAMERAS):
        if conn.execute(
            select(table.c.camera_id).where(table.c.camera_id == camera).limit(1)
        ).first():
            return True
    return False


class CameraConfigs:
    def __init__(self, engine: Engine, fleet: FleetConfig, modes: ModesConfig) -> None:
        self.engine = engine
        self.fleet = fleet
        self.modes = modes

    def validate(self, camera: str, document: Any) -> CameraConfig:
        cfg, issues = validate_document(camera, document, self.fleet, self.modes)
        if cfg is None:
            raise ConfigInvalidError(camera, issues)
        return cfg

    def save(self, camera: str, document: Any, author: str, reason: str) -> ConfigVersion:
        """Validate and store document as the camera's next version (ConfigInvalidError names
        every problem; nothing is stored then)."""
        self.validate(camera, document)
        return self._store(camera, document, author, reason, "config_save", {})

    def rollback(self, camera: str, version: int, author: str, reason: str) -> ConfigVersion:
        """Save version's document again as the newest version. It is validated again: the
        model manifest or the modes may have changed since."""
        old = self.get(camera, version)
        assert old.document is not None
        self.validate(camera, old.document)
        return self._store(
            camera, old.document, author, reason, "config_rollback", {"from_version": version}
        )

    def _store(
        self,
        camera: str,
        document: dict[str, Any],
        author: str,
        reason: str,
        action: str,
        detail: dict[str, Any],
    ) -> ConfigVersion:
        author = _text(author, "author", MAX_ACTOR_CHARS)
        reason = _text(reason, "reason", MAX_REASON_CHARS)
        digest = hashlib.sha256(canonical_json(document)).hexdigest()
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    return self._insert(
                        conn, camera, document, digest, author, reason, action, detail
                    )
            except sa_exc.IntegrityError:
                # Another save took this version number first: take the next one.
                if attempt == SAVE_ATTEMPTS:
                    raise FleetError(
                        409, f"camera '{camera}': config saved concurrently, try again"
                    ) from None
        raise AssertionError("unreachable")

    @staticmethod
    def _insert(
        conn: Connection,
        camera: str,
        document: dict[str, Any],
        digest: str,
        author: str,
        reason: str,
        action: str,
        detail: dict[str, Any],
    ) -> ConfigVersion:
        c = CAMERA_CONFIGS.c
        top = conn.execute(select(func.max(c.version)).where(c.camera_id == camera)).scalar()
        now = time.time()
        saved = ConfigVersion(camera, int(top or 0) + 1, digest, author, reason, now, document)
        conn.execute(
            CAMERA_CONFIGS.insert().values(
                camera_id=camera,
                version=saved.version,
                document=document,
                sha256=digest,
                author=author,
                reason=reason,
                created_at=now,
            )
        )
        conn.execute(
            AUDIT.insert().values(
                at=now,
                username=author,
                action=action,
                entity="camera",
                entity_id=camera,
                detail={**detail, "version": saved.version, "sha256": digest},
                reason=reason,
            )
        )
        return saved

    def history(self, camera: str) -> list[ConfigVersion]:
        """Every version of the camera's config, newest first, without the documents."""
        c = CAMERA_CONFIGS.c
        cols = [c.camera_id, c.version, c.sha256, c.author, c.reason, c.created_at]
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*cols).where(c.camera_id == camera).order_by(c.version.desc())
            ).all()
            if not rows and not _known(conn, camera):
                # An empty list would tell a typo apart from a camera with no config yet.
                raise FleetError(
                    404, f"camera '{camera}' is unknown: no events, heartbeats or configs"
                )
            return [_version_of(r, with_document=False) for r in rows]

    def get(self, camera: str, version: int | None = None) -> ConfigVersion:
        """One version with its document; None: the latest. 404 FleetError when absent."""
        c = CAMERA_CONFIGS.c
        query = select(CAMERA_CONFIGS).where(c.camera_id == camera)
        query = query.where(c.version == version) if version is not None else query
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(c.version.desc()).limit(1)).first()
        if row is None:
            which = f"version {version}" if version is not None else "central config"
            raise FleetError(404, f"camera '{camera}' has no {which}")
        return _version_of(row, with_document=True)
