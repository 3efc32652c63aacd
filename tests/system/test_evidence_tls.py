"""Evidence over HTTPS: `aggregator serve` with a certificate from a CA made for the test, an
edge that trusts that CA through `aggregator.ca_file` uploads; one that does not is refused
with a clear error, keeps its files and sends them once it is given the CA."""

from __future__ import annotations

import hashlib
import logging
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, select

from aggregator.db.models import MEDIA
from contract.errors import StreetwatchError
from edge.config.edge_box import load_edge_config
from edge.delivery.uploader import Uploader
from tests.deploy import Deployment
from tests.system.evidencehelpers import N_FILES, outbox_state, queue_snapshots, wait

# Slow: a real aggregator over TLS and a real edge.
pytestmark = pytest.mark.slow


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd, timeout=60)


def make_pki(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate it signed for 127.0.0.1: (ca, cert, key)."""
    folder.mkdir(parents=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=Streetwatch test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
             cwd=folder)  # fmt: skip
    (folder / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
        cwd=folder,
    )  # fmt: skip
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


def _edit_yaml(path: Path, section: str, **values: str) -> None:
    data = yaml.safe_load(path.read_text())
    data.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(data))


@pytest.mark.slow
def test_evidence_goes_over_https_with_the_ca_file_and_waits_without_it(
    deployment: Deployment,
) -> None:
    d = deployment
    ca, cert, key = make_pki(d.root / "tls")
    _edit_yaml(d.root / "aggregator.yaml", "http", tls_cert_file=str(cert), tls_key_file=str(key))
    cfg = d.add_edge("box-s")
    https = f"https://127.0.0.1:{d.http_port}"
    _edit_yaml(cfg, "aggregator", http_url=https)
    trust = ssl.create_default_context(cafile=str(ca))

    agg = d.spawn("aggregator", "--log-level", "warning", "serve", "-c", "aggregator.yaml",
                  log="aggregator.log")  # fmt: skip

    def ready() -> bool:
        assert agg.poll() is None, (d.root / "aggregator.log").read_text()[-3000:]
        try:
            return httpx.get(f"{https}/readyz", verify=trust, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait("the aggregator over https", ready)
    with pytest.raises(httpx.HTTPError):  # plain HTTP is not served any more
        httpx.get(f"http://127.0.0.1:{d.http_port}/readyz", timeout=2)

    outbox = d.root / "box-s-outbox.sqlite3"
    hashes = queue_snapshots(outbox, d.root / "box-s-media")

    # Without the CA the edge cannot trust the server: refused, retried, nothing lost.
    edge = d.spawn("edge", "publish", "-c", cfg.name, log="edge-no-ca.log")
    wait("failed uploads", lambda: int(outbox_state(outbox)[2].get("failures", 0)) >= 2)
    d.kill(edge)
    depth, dead, status = outbox_state(outbox)
    assert (depth, dead) == (N_FILES, 0)
    assert "certificate" in str(status["last_error"])
    assert "aggregator.ca_file" in str(status["last_error"])
    assert "aggregator.ca_file" in (d.root / "edge-no-ca.log").read_text()

    # With it, everything arrives, byte for byte.
    _edit_yaml(cfg, "aggregator", ca_file=str(ca))
    d.spawn("edge", "publish", "-c", cfg.name, log="edge-ca.log")
    wait("the outbox to drain", lambda: outbox_state(outbox)[0] == 0)
    engine = create_engine(d.db_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(select(MEDIA.c.media_id, MEDIA.c.sha256)).all())
    engine.dispose()
    assert rows == hashes
    pw = d.root / "admin.password"
    pw.write_text("admin-password-for-tls")
    d.run("aggregator", "users", "add", "-c", "aggregator.yaml", "admin", "--role", "admin",
          "--password-file", str(pw))  # fmt: skip
    with httpx.Client(base_url=https, verify=trust, timeout=30) as client:
        r = client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": "admin-password-for-tls"}
        )
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
        for media_id, digest in hashes.items():
            body = client.get(f"/api/v1/media/{media_id}").content
            assert hashlib.sha256(body).hexdigest() == digest


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://192.0.2.10:8000", True),
        ("http://aggregator.example:8000", True),
        ("http://127.0.0.1:8000", False),
        ("http://localhost:8000", False),
        ("http://[::1]:8000", False),
        ("https://192.0.2.10:8443", False),
    ],
)
def test_plain_http_to_another_host_is_warned_about_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, url: str, warned: bool
) -> None:
    (tmp_path / "box.token").write_text("token\n")
    (tmp_path / "box.token").chmod(0o600)
    (tmp_path / "edge.yaml").write_text(
        "edge_id: box\naggregator:\n  endpoint: tcp://127.0.0.1:5560\n"
        "  server_public_key: a.key\n  secret_key: b.key_secret\n"
        f"  http_url: '{url}'\n  token_file: box.token\n"
    )
    with caplog.at_level(logging.WARNING, logger="edge.delivery.uploader"):
        Uploader(load_edge_config(tmp_path / "edge.yaml"))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert bool(warnings) == warned, warnings
    if warned:
        assert "plain HTTP" in warnings[0]
        assert "https://" in warnings[0]


def test_ca_file_must_exist(tmp_path: Path) -> None:
    (tmp_path / "edge.yaml").write_text(
        "edge_id: box\naggregator:\n  endpoint: tcp://127.0.0.1:5560\n"
        "  server_public_key: a.key\n  secret_key: b.key_secret\n"
        "  http_url: https://127.0.0.1:8443\n  token_file: box.token\n  ca_file: missing.pem\n"
    )
    (tmp_path / "box.token").write_text("token\n")
    with pytest.raises(StreetwatchError, match=r"missing\.pem"):
        Uploader(load_edge_config(tmp_path / "edge.yaml"))
