"""The edge box config: who this box is, where its outbox lives, how it reaches the
aggregator. Camera configs stay separate, one per camera."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge.config.loading import load_yaml_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutboxConfig(_Strict):
    path: Path = Field(Path("outbox.sqlite3"), description="SQLite file; relative to this config.")
    max_rows: int = Field(
        100_000, ge=100, description="Messages held before the full policy applies."
    )


class AggregatorLink(_Strict):
    endpoint: str = Field(description="ZeroMQ endpoint of the aggregator ingest, tcp://host:port.")
    server_public_key: Path = Field(description="The aggregator's public key file (.key).")
    secret_key: Path = Field(description="This box's secret key file (.key_secret, mode 600).")
    max_in_flight: int = Field(64, ge=1, le=10_000)
    ack_timeout_s: float = Field(
        3.0, gt=0, description="Resend a message unacknowledged this long."
    )
    max_backoff_s: float = Field(
        60.0, gt=0, description="Longest wait between resends of one message."
    )
    http_url: str | None = Field(
        None, description="Aggregator HTTP base URL for evidence uploads, http(s)://host:port."
    )
    token_file: Path | None = Field(
        None, description="File holding this box's upload token (aggregator edges token)."
    )
    heartbeat_s: float = Field(1.0, gt=0, description="Heartbeat period; 3 missed = disconnected.")

    @field_validator("endpoint")
    @classmethod
    def _tcp(cls, v: str) -> str:
        if not v.startswith(("tcp://", "ipc://")):
            raise ValueError(f"endpoint '{v}' must start with tcp:// or ipc://")
        return v


class EdgeBoxConfig(_Strict):
    edge_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    aggregator: AggregatorLink


def load_edge_config(path: Path) -> EdgeBoxConfig:
    cfg, _ = load_yaml_model(path, EdgeBoxConfig, "an edge config")
    base = path.parent

    def rel(p: Path) -> Path:
        return p if p.is_absolute() else (base / p)

    return cfg.model_copy(
        update={
            "outbox": cfg.outbox.model_copy(update={"path": rel(cfg.outbox.path)}),
            "aggregator": cfg.aggregator.model_copy(
                update={
                    "server_public_key": rel(cfg.aggregator.server_public_key),
                    "secret_key": rel(cfg.aggregator.secret_key),
                    "token_file": rel(cfg.aggregator.token_file)
                    if cfg.aggregator.token_file
                    else None,
                }
            ),
        }
    )
