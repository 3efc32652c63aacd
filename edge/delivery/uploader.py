"""Upload evidence (clips, snapshots) to the aggregator over HTTPS (or HTTP on loopback) with
the box's token, retrying with backoff until acknowledged; the aggregator deduplicates by
content hash. Refusals that may pass (401, 5xx, 507 no room, TLS errors) are retried."""

from __future__ import annotations

import ipaddress
import json
import logging
import ssl
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from contract.errors import StreetwatchError
from contract.uploads import MEDIA_PATH, UploadHeaders
from edge.config.edge_box import EdgeBoxConfig
from edge.delivery.outbox import Outbox

log = logging.getLogger(__name__)
STATUS_KEY = "uploader_status"
# Answers that will not change if we try again: the file goes to dead_media. 403 is the
# evidence of another edge's event (a token problem is 401); 507 (no room) is retried.
_FINAL = {400, 403, 404, 409, 413, 415, 422}


@dataclass
class UploaderStats:
    uploaded: int = 0
    failures: int = 0
    rejected: int = 0
    depth: int = 0
    last_error: str = ""


def read_token(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise StreetwatchError(f"{path}: cannot read upload token: {exc.strerror}") from None
    if not token:
        raise StreetwatchError(f"{path}: upload token file is empty")
    if path.stat().st_mode & 0o077:
        log.warning("%s: the upload token is readable by others; chmod 600 it", path)
    return token


def trust(ca_file: Path | None) -> ssl.SSLContext:
    """What an https aggregator's certificate is checked against: the CA file, else the
    system's trusted CAs."""
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise StreetwatchError(f"{ca_file}: cannot read aggregator.ca_file: {exc}") from None


def on_loopback(url: str) -> bool:
    host = httpx.URL(url).host
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _untrusted(exc: BaseException) -> bool:
    """Whether an HTTP error is the server's certificate failing verification."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


class Uploader:
    def __init__(self, cfg: EdgeBoxConfig) -> None:
        link = cfg.aggregator
        if not link.http_url or not link.token_file:
            raise StreetwatchError("evidence upload needs aggregator.http_url and token_file")
        self.cfg = cfg
        self.base = link.http_url.rstrip("/")
        self.token = read_token(link.token_file)
        self.verify = trust(link.ca_file)
        self.stats = UploaderStats()
        if self.base.startswith("http://") and not on_loopback(self.base):
            log.warning(
                "aggregator.http_url %s is plain HTTP to another host: evidence and the upload "
                "token cross the network unencrypted; use https:// (with aggregator.ca_file)",
                self.base,
            )

    def run(self, stop: threading.Event) -> None:
        outbox = Outbox(self.cfg.outbox.path, self.cfg.outbox.max_rows)
        backoff = 0.5
        client = httpx.Client(
            timeout=30, headers={"Authorization": f"Bearer {self.token}"}, verify=self.verify
        )
        last_status = 0.0
        try:
            while not stop.is_set():
                batch = outbox.pending_media(10)
                self.stats.depth = outbox.media_depth()
                if time.monotonic() - last_status > 1:
                    last_status = time.monotonic()
                    outbox.set_meta({STATUS_KEY: json.dumps(asdict(self.stats))})
                if not batch:
                    stop.wait(0.2)
                    continue
                for m in batch:
                    if stop.is_set():
                        break
                    try:
                        data = m.path.read_bytes()
                    except OSError as exc:
                        outbox.dead_media(m.media_id, f"file unreadable: {exc.strerror}")
                        continue
                    try:
                        r = client.put(
                            self.base + MEDIA_PATH.format(media_id=m.media_id),
                            content=data,
                            headers=UploadHeaders(
                                event_id=m.event_id,
                                kind=m.kind,  # type: ignore[arg-type]  # written by clips.py
                                sha256=m.sha256,
                                content_type=m.content_type,
                                start_ts=m.start_ts,
                                duration_s=m.duration_s,
                            ).to_http(),
                        )
                    except httpx.HTTPError as exc:
                        self._failed(self._why(exc))
                        stop.wait(backoff)
                        backoff = min(backoff * 2, self.cfg.aggregator.max_backoff_s)
                        break
                    if r.status_code in (200, 201):
                        outbox.ack_media(m.media_id)
                        self.stats.uploaded += 1
                        backoff = 0.5
                    elif r.status_code in _FINAL:
                        log.error("aggregator refused %s %s: %s", m.kind, m.media_id, r.text[:200])
                        outbox.dead_media(m.media_id, f"{r.status_code} {r.text[:300]}")
                        self.stats.rejected += 1
                    else:  # 401 (token being fixed), 5xx, 507, 429: try again later
                        self._failed(f"{r.status_code} {r.text[:200]}")
                        stop.wait(backoff)
                        backoff = min(backoff * 2, self.cfg.aggregator.max_backoff_s)
                        break
        finally:
            client.close()
            outbox.set_meta({STATUS_KEY: json.dumps(asdict(self.stats))})
            outbox.close()

    def _why(self, exc: httpx.HTTPError) -> str:
        if _untrusted(exc):
            return (
                f"the certificate of {self.base} is not trusted ({exc}): set aggregator.ca_file "
                "to the CA that signed it"
            )
        return f"{type(exc).__name__}: {exc}"

    def _failed(self, why: str) -> None:
        self.stats.failures += 1
        self.stats.last_error = why
        log.warning("upload failed: %s", why)
