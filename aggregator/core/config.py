"""Aggregator settings, from one YAML file (errors name file, line and field)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from contract.config.loading import load_yaml_model
from contract.vocabulary import (
    CAMERA_OFFLINE,
    CROWDING,
    ILLEGAL_PARKING,
    LITTER,
    NONMOTOR_PARKING,
    STREET_VENDING,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestConfig(_Strict):
    bind: str = Field("tcp://0.0.0.0:5560", description="ZeroMQ ROUTER endpoint edges connect to.")
    server_secret_key: Path = Field(Path("keys/aggregator.key_secret"))
    max_message_bytes: int = Field(16 * 1024, ge=1024, description="Larger payloads are rejected.")
    batch_max: int = Field(500, ge=1, description="Messages committed in one transaction at most.")
    batch_ms: float = Field(20.0, gt=0, description="Longest a message waits for its batch.")


class MediaConfig(_Strict):
    """Evidence files: where they live and how long."""

    dir: Path = Field(Path("media"), description="Folder for clips and snapshots.")
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1024, description="Larger uploads: 413.")
    max_age_days: float = Field(90.0, gt=0, description="Evidence older than this is deleted.")
    max_total_bytes: int = Field(
        50 * 1024**3,
        ge=1024,
        description="Above this, oldest evidence of dismissed events goes first.",
    )
    prune_every_s: float = Field(300.0, gt=0)


class CategoryConfig(_Strict):
    """How a confirmed event of one type is filed: who fixes it and how soon."""

    category: str
    department: str
    time_limit_h: float = Field(gt=0, description="Deadline after the case is filed, hours.")
    priority: str = Field("normal", pattern="^(low|normal|high|urgent)$")


def _default_categories() -> dict[str, CategoryConfig]:
    return {
        CROWDING: CategoryConfig(
            category="public order", department="police", time_limit_h=2, priority="high"
        ),
        ILLEGAL_PARKING: CategoryConfig(
            category="traffic", department="traffic enforcement", time_limit_h=24
        ),
        NONMOTOR_PARKING: CategoryConfig(
            category="traffic", department="traffic enforcement", time_limit_h=72, priority="low"
        ),
        STREET_VENDING: CategoryConfig(
            category="street order", department="market inspection", time_limit_h=48
        ),
        LITTER: CategoryConfig(
            category="sanitation", department="street cleaning", time_limit_h=48
        ),
        # An edge box reports its own cameras going dark (edge/worker/camera.py).
        CAMERA_OFFLINE: CategoryConfig(
            category="equipment", department="camera maintenance", time_limit_h=24, priority="high"
        ),
    }


class CasesConfig(_Strict):
    categories: dict[str, CategoryConfig] = Field(default_factory=_default_categories)
    fallback: CategoryConfig = Field(
        default_factory=lambda: CategoryConfig(
            category="other", department="city services", time_limit_h=72
        )
    )

    def for_type(self, event_type: str) -> CategoryConfig:
        return self.categories.get(event_type, self.fallback)


class HttpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)


class AggregatorConfig(_Strict):
    database_url: str = Field(
        "sqlite:///aggregator.sqlite3",
        description="SQLAlchemy URL: sqlite:///file (relative to this config) or "
        "postgresql+psycopg://user@host/db.",
    )
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    media: MediaConfig = Field(default_factory=MediaConfig)
    cases: CasesConfig = Field(default_factory=CasesConfig)


def load_aggregator_config(path: Path) -> AggregatorConfig:
    cfg, _ = load_yaml_model(path, AggregatorConfig, "an aggregator config")
    base = path.parent
    url = cfg.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = f"sqlite:///{(base / url.removeprefix('sqlite:///')).resolve()}"
    key = cfg.ingest.server_secret_key
    return cfg.model_copy(
        update={
            "database_url": url,
            "ingest": cfg.ingest.model_copy(
                update={"server_secret_key": key if key.is_absolute() else base / key}
            ),
            "media": cfg.media.model_copy(
                update={
                    "dir": cfg.media.dir if cfg.media.dir.is_absolute() else base / cfg.media.dir
                }
            ),
        }
    )
