"""Upload tokens end with their edge: revoking clears the token, and re-adding an edge does
not bring its old token back (the `aggregator edges` commands, against a running service)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid

import httpx
import pytest

from tests.deploy import Deployment

# Slow: the real aggregator command line and server.
pytestmark = pytest.mark.slow

JPEG = b"\xff\xd8\xff\xe0" + b"evidence" * 200


def _upload(d: Deployment, token: str) -> httpx.Response:
    return httpx.put(
        f"{d.url}/api/v1/media/{uuid.uuid4()}",
        content=JPEG,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "image/jpeg",
            "X-Event-Id": str(uuid.uuid4()),
            "X-Media-Kind": "snapshot",
            "X-Content-SHA256": hashlib.sha256(JPEG).hexdigest(),
        },
        timeout=30,
    )


def _edges(d: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "edges", *args, "-c", "aggregator.yaml"],
        capture_output=True,
        text=True,
        cwd=d.root,
        timeout=60,
    )


def test_revoke_and_re_add_clear_the_upload_token(deployment: Deployment) -> None:
    d = deployment
    d.add_edge("box-t")
    old = (d.root / "keys" / "box-t.token").read_text().strip()
    d.start_aggregator()
    assert _upload(d, old).status_code == 201

    assert _edges(d, "revoke", "box-t").returncode == 0
    assert _upload(d, old).status_code == 401
    refused = _edges(d, "token", "box-t")
    assert refused.returncode == 1
    assert "edge 'box-t' is revoked" in refused.stderr

    added = _edges(d, "add", "box-t", "keys/box-t.key")
    assert added.returncode == 0, added.stderr
    assert "aggregator edges token" in added.stdout  # it says a new token is needed
    r = _upload(d, old)
    assert r.status_code == 401, r.text  # the old token did not come back

    made = _edges(d, "token", "box-t")
    assert made.returncode == 0, made.stderr
    assert _upload(d, made.stdout.strip()).status_code == 201


def test_re_adding_an_allowed_edge_with_its_key_keeps_its_token(deployment: Deployment) -> None:
    d = deployment
    d.add_edge("box-s")
    token = (d.root / "keys" / "box-s.token").read_text().strip()
    d.start_aggregator()
    assert _edges(d, "add", "box-s", "keys/box-s.key").returncode == 0  # idempotent set-up
    assert _upload(d, token).status_code == 201
