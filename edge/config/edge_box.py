"""The edge box config: who this box is, where its outbox lives, how it reaches the
aggregator. Camera configs stay separate, one per camera."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.config.camera import SourceConfig
from contract.config.loading import load_yaml_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutboxConfig(_Strict):
    path: Path = Field(Path("outbox.sqlite3"), description="SQLite file; relative to this config.")
    max_rows: int = Field(
        100_000, ge=100, description="Messages held before the full policy applies."
    )


class AggregatorLink(_Strict):
    endpoint: str | None = Field(
        None, description="ZeroMQ endpoint of the aggregator ingest, tcp://host:port."
    )
    endpoints: tuple[str, ...] = Field(
        (),
        description="Several ingest replicas instead of one endpoint: the box connects to all, "
        "spreads messages over those that are up and keeps delivering while any one is.",
        max_length=64,
    )
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
        None,
        description="Aggregator base URL for evidence uploads, https://host:port (http:// only "
        "on loopback or a trusted network: a warning says so at start).",
    )
    token_file: Path | None = Field(
        None, description="File holding this box's upload token (aggregator edges token)."
    )
    ca_file: Path | None = Field(
        None,
        description="PEM file of the CA(s) that signed the aggregator's https certificate; "
        "unset: the system's trusted CAs.",
    )
    heartbeat_s: float = Field(1.0, gt=0, description="Heartbeat period; 3 missed = disconnected.")

    @field_validator("endpoint")
    @classmethod
    def _tcp(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("tcp://", "ipc://")):
            raise ValueError(f"endpoint '{v}' must start with tcp:// or ipc://")
        return v

    @field_validator("endpoints")
    @classmethod
    def _tcp_all(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for endpoint in v:
            cls._tcp(endpoint)
        if len(set(v)) != len(v):
            raise ValueError("endpoints lists an endpoint twice")
        return v

    @model_validator(mode="after")
    def _one_way(self) -> AggregatorLink:
        if (self.endpoint is None) == (not self.endpoints):
            raise ValueError("set either endpoint (one ingest) or endpoints (replicas), not both")
        return self

    @property
    def ingest_endpoints(self) -> tuple[str, ...]:
        """Every ingest endpoint the box connects to."""
        return (self.endpoint,) if self.endpoint is not None else self.endpoints

    @field_validator("http_url")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("https://", "http://")):
            raise ValueError(f"http_url '{v}' must start with https:// or http://")
        return v


class CameraEntry(_Strict):
    """One camera this box serves (``edge run``)."""

    config: Path = Field(description="The camera's config YAML; relative to this file.")
    detect_fps: float = Field(5.0, gt=0, le=60, description="Frames per second detected.")
    source: SourceConfig | None = Field(
        None, description="Overrides the camera config's source (e.g. a file to loop)."
    )


class HttpServeConfig(_Strict):
    """The worker's own HTTP endpoint: /healthz, /readyz and /metrics (Prometheus)."""

    host: str = Field("127.0.0.1", description="Listen address; keep it on the box's network.")
    port: int = Field(9108, ge=0, le=65535, description="0 picks a free port (tests).")


class FleetLinkConfig(_Strict):
    """Where this box's camera configs come from (fleet control, contract/fleet.py)."""

    source: Literal["local", "central"] = Field(
        "local",
        description="'local': each camera runs its own config file; the aggregator only "
        "switches operating modes. 'central': the aggregator pushes camera configs too; the "
        "file is the first config until it does, the stream source always stays local.",
    )
    state_dir: Path = Field(
        Path("fleet-state"),
        description="Where the last good pushed config of each camera is kept "
        "(<camera>.json), so the box starts from it without the aggregator; relative to "
        "this file.",
    )


class EdgeBoxConfig(_Strict):
    edge_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    aggregator: AggregatorLink
    cameras: list[CameraEntry] = Field(
        default_factory=list, description="Cameras `edge run` serves, each with its config."
    )
    http: HttpServeConfig = Field(default_factory=HttpServeConfig)
    fleet: FleetLinkConfig = Field(default_factory=FleetLinkConfig)
    detect_calls: int = Field(
        0,
        ge=0,
        description="Detector calls the detect stage runs at once, each on one core, while it "
        "advances the cameras whose results are in; 0: one per core.",
    )

    @property
    def detect_calls_resolved(self) -> int:
        return self.detect_calls or os.cpu_count() or 1


def load_edge_config(path: Path) -> EdgeBoxConfig:
    cfg, _ = load_yaml_model(path, EdgeBoxConfig, "an edge config")
    base = path.parent

    def rel(p: Path) -> Path:
        return p if p.is_absolute() else (base / p)

    def local(src: SourceConfig | None) -> SourceConfig | None:
        # A file named relative to this config; URLs and device numbers stay as they are.
        if src is None or "://" in src.uri or src.uri.isdigit():
            return src
        return src.model_copy(update={"uri": str(rel(Path(src.uri)))})

    return cfg.model_copy(
        update={
            "outbox": cfg.outbox.model_copy(update={"path": rel(cfg.outbox.path)}),
            "fleet": cfg.fleet.model_copy(update={"state_dir": rel(cfg.fleet.state_dir)}),
            "cameras": [
                c.model_copy(update={"config": rel(c.config), "source": local(c.source)})
                for c in cfg.cameras
            ],
            "aggregator": cfg.aggregator.model_copy(
                update={
                    "server_public_key": rel(cfg.aggregator.server_public_key),
                    "secret_key": rel(cfg.aggregator.secret_key),
                    "token_file": rel(cfg.aggregator.token_file)
                    if cfg.aggregator.token_file
                    else None,
                    "ca_file": rel(cfg.aggregator.ca_file) if cfg.aggregator.ca_file else None,
                }
            ),
        }
    )
