"""Aggregator settings, from one YAML file (errors name file, line and field)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aggregator.core.fleet_config import FleetConfig, ModesConfig
from aggregator.core.grid_config import GridConfig
from contract.config.loading import load_yaml_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestConfig(_Strict):
    bind: str = Field("tcp://0.0.0.0:5560", description="ZeroMQ ROUTER endpoint edges connect to.")
    server_secret_key: Path = Field(Path("keys/aggregator.key_secret"))
    max_message_bytes: int = Field(
        16 * 1024,
        ge=1024,
        description="Larger event payloads are nacked (counted as oversized). Above the "
        "protocol's 16 KiB the transport drops the sender's connection, whatever this says.",
    )
    batch_max: int = Field(500, ge=1, description="Messages committed in one transaction at most.")
    batch_ms: float = Field(20.0, gt=0, description="Longest a message waits for its batch.")
    health_host: str = Field(
        "127.0.0.1", description="`aggregator ingest` only: where its probes listen."
    )
    health_port: int = Field(
        8001,
        ge=1,
        le=65535,
        description="`aggregator ingest` only: /healthz, /readyz and /metrics of the replica.",
    )


class S3Config(_Strict):
    """An S3-compatible bucket for evidence (media.store: s3): AWS S3, SeaweedFS, MinIO, Ceph."""

    endpoint_url: str | None = Field(
        None,
        description="The S3 API's URL, e.g. http://seaweedfs:8333. Unset: AWS S3 in region.",
    )
    bucket: str = Field(min_length=3, max_length=63, description="The bucket evidence goes to.")
    region: str = Field("us-east-1", description="Signing region (self-hosted servers ignore it).")
    path_style: bool = Field(
        True,
        description="Address the bucket as endpoint/bucket/key (self-hosted servers) rather "
        "than bucket.endpoint/key (virtual hosts, AWS).",
    )
    prefix: str = Field(
        "",
        pattern=r"^([A-Za-z0-9._-]+/)*$",
        description="Key prefix for every object, e.g. 'streetwatch/' (empty or ending in '/').",
    )
    access_key_file: Path | None = Field(
        None,
        description="File holding the access key id; relative to this config. Unset (with "
        "secret_key_file): AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment.",
    )
    secret_key_file: Path | None = Field(
        None, description="File holding the secret access key (mode 600); relative to this config."
    )
    serve: Literal["proxy", "redirect"] = Field(
        "proxy",
        description="Downloads: proxy streams the object through the API (with Range), for "
        "browsers that cannot reach the bucket; redirect answers 307 to a presigned URL.",
    )
    presign_expiry_s: int = Field(
        300, ge=1, le=7 * 86400, description="Lifetime of a presigned download URL (redirect)."
    )
    create_bucket: bool = Field(
        False,
        description="Create the bucket at start when it is missing. Off: a missing bucket is "
        "an error at start (a typo should not start an empty bucket).",
    )
    multipart_chunk_bytes: int = Field(
        8 * 1024 * 1024,
        ge=5 * 1024 * 1024,
        description="Uploads larger than this go in parts of this size (S3's minimum is 5 MiB).",
    )
    timeout_s: float = Field(10.0, gt=0, description="Connect and read timeout per request.")

    @model_validator(mode="after")
    def _key_pair(self) -> S3Config:
        if (self.access_key_file is None) != (self.secret_key_file is None):
            raise ValueError(
                "access_key_file and secret_key_file go together: set both, or neither to "
                "take AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment"
            )
        return self


class MediaConfig(_Strict):
    """Evidence files: where they live and how long."""

    store: Literal["local", "s3"] = Field(
        "local", description="Where evidence is kept: local (the dir folder) or s3 (a bucket)."
    )
    dir: Path = Field(
        Path("media"),
        description="Folder for clips and snapshots (store: local); with store: s3, only "
        "uploads being received before they go to the bucket.",
    )
    s3: S3Config | None = Field(None, description="The bucket; required with store: s3.")
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1024, description="Larger uploads: 413.")
    max_age_days: float = Field(90.0, gt=0, description="Evidence older than this is deleted.")
    max_total_bytes: int = Field(
        50 * 1024**3,
        ge=1024,
        description="Above this, retention removes evidence: dismissed events' first, then the "
        "oldest of the edge holding the most. Evidence of confirmed events and open cases is "
        "held: never removed, and uploads get 507 when held evidence leaves no room.",
    )
    per_edge_max_bytes: int | None = Field(
        None,
        ge=1024,
        description="Evidence one edge may hold. An upload beyond it first removes that edge's "
        "oldest dismissed evidence, else is refused with 507 (the edge keeps it and retries). "
        "Unset: no per-edge quota.",
    )
    prune_every_s: float = Field(300.0, gt=0)

    @model_validator(mode="after")
    def _store_has_its_settings(self) -> MediaConfig:
        if self.store == "s3" and self.s3 is None:
            raise ValueError("store: s3 needs an s3 section (endpoint_url, bucket, ...)")
        return self

    def resolved(self, base: Path) -> MediaConfig:
        """This config with its relative paths made relative to base (the config's folder)."""

        def under(path: Path) -> Path:
            return path if path.is_absolute() else base / path

        s3 = self.s3
        if s3 is not None and s3.access_key_file is not None and s3.secret_key_file is not None:
            s3 = s3.model_copy(
                update={
                    "access_key_file": under(s3.access_key_file),
                    "secret_key_file": under(s3.secret_key_file),
                }
            )
        return self.model_copy(update={"dir": under(self.dir), "s3": s3})


class RetentionConfig(_Strict):
    """Time partitions of events and their messages, and how long events are kept
    (PostgreSQL; SQLite keeps plain tables and ignores this)."""

    partition_days: float = Field(
        7.0,
        ge=1 / 24,
        description="Length of one partition of events (by start) and of event messages "
        "(by time), days. Changing it later only affects partitions not made yet.",
    )
    partitions_ahead: int = Field(
        2, ge=1, le=52, description="Partitions kept ready after the current one."
    )
    events_max_age_days: float | None = Field(
        None,
        gt=0,
        description="Events older than this are removed by dropping whole partitions; events "
        "confirmed or in an open case are kept. Unset: events are kept forever.",
    )
    maintain_every_s: float = Field(
        3600.0, gt=0, description="How often partitions are made ahead and expired ones dropped."
    )


class CasesConfig(_Strict):
    catalogue: Path | None = Field(
        None,
        description="The category catalogue (YAML, relative to this config): categories, "
        "departments, staged deadlines; unset: the shipped GB/T 30428.2-style default "
        "(aggregator/grid/catalogue.yaml).",
    )


class HttpConfig(_Strict):
    """The HTTP front: limits every request meets before any route (aggregator/core/http.py)."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest request body except evidence uploads (those: "
        "media.max_upload_bytes); larger: 413, refused from Content-Length before reading.",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="A request body (not an upload) must arrive whole within this; else 408.",
    )
    upload_timeout_s: float = Field(
        600.0,
        gt=0,
        description="An evidence upload's body must arrive whole within this; else 408.",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A request head must arrive whole within this; else 408 and "
        "the connection is closed (slowloris).",
    )
    max_header_bytes: int = Field(
        16 * 1024, ge=4096, description="Largest request line and headers; larger: 400."
    )
    keep_alive_s: int = Field(
        5, ge=1, description="An idle keep-alive connection closes after this."
    )
    trusted_proxies: tuple[str, ...] = Field(
        (),
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed. Empty: the client is the socket's peer, and those "
        "headers are ignored.",
    )
    secure_cookies: bool = Field(
        False,
        description="Mark the session cookie Secure on plain HTTP too (TLS ends at a proxy that "
        "is not trusted or sends no X-Forwarded-Proto); it always is over https.",
    )
    docs: bool = Field(
        False,
        description="Serve Swagger UI at /docs (it loads scripts from a CDN); /openapi.json "
        "needs a login either way.",
    )
    login_concurrency: int = Field(
        2, ge=1, description="Password checks at once (argon2 takes 64 MiB each); more wait."
    )
    login_queue: int = Field(
        32, ge=0, description="Logins that may wait for a password check; more: 429."
    )
    tls_cert_file: Path | None = Field(
        None,
        description="Serve HTTPS with this PEM certificate (chain); relative to this config. "
        "Needs tls_key_file. Unset: plain HTTP (keep it on loopback or behind a TLS proxy).",
    )
    tls_key_file: Path | None = Field(
        None, description="The certificate's PEM private key (mode 600); relative to this config."
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpConfig:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, proxies: tuple[str, ...]) -> tuple[str, ...]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"{proxy!r} is not an IP address or CIDR network") from None
        return proxies


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
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    fleet: FleetConfig = Field(default_factory=FleetConfig)
    modes: ModesConfig = Field(default_factory=ModesConfig)
    grid: GridConfig = Field(default_factory=GridConfig)


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
            "media": cfg.media.resolved(base),
            "grid": cfg.grid.resolved(base),
            "cases": cfg.cases.model_copy(
                update={"catalogue": base / cfg.cases.catalogue}
                if cfg.cases.catalogue is not None and not cfg.cases.catalogue.is_absolute()
                else {}
            ),
            "http": cfg.http.model_copy(
                update={
                    name: base / value
                    for name in ("tls_cert_file", "tls_key_file")
                    if (value := getattr(cfg.http, name)) is not None and not value.is_absolute()
                }
            ),
        }
    )
