"""Secrets and data are the owner's alone, whatever the umask (outside systemd it is usually
022): token files 0600 even when re-issued over an old file, the SQLite database 0600, the
media folder 0700 with 0600 files, the edge outbox 0600 in a 0700 folder."""

from __future__ import annotations

import hashlib
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge.delivery.outbox import Outbox
from tests.deploy import Deployment

# Slow: the real commands and servers.
pytestmark = pytest.mark.slow

JPEG = b"\xff\xd8\xff\xe0" + b"evidence" * 200


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual interactive umask, for this process and the commands it starts."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("umask_022")
def test_re_issued_token_file_becomes_owner_only(deployment: Deployment) -> None:
    d = deployment
    d.add_edge("box-p")
    token_file = d.root / "keys" / "box-p.token"
    token_file.chmod(0o644)  # as a copy or an older release left it
    d.run(
        "aggregator", "edges", "token", "-c", "aggregator.yaml", "box-p", "--out", str(token_file)
    )
    assert _mode(token_file) == 0o600
    assert not list(token_file.parent.glob("*.tmp*"))  # written in place of the old, atomically


@pytest.mark.usefixtures("umask_022")
def test_database_and_media_are_owner_only(deployment: Deployment) -> None:
    d = deployment
    d.add_edge("box-p")  # migrates: creates the SQLite file
    db = Path(d.db_url.removeprefix("sqlite:///"))
    assert _mode(db) == 0o600
    d.start_aggregator()
    token = (d.root / "keys" / "box-p.token").read_text().strip()
    r = httpx.put(
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
    assert r.status_code == 201, r.text
    media = d.root / "media"
    assert _mode(media) == 0o700
    [stored] = [p for p in media.rglob("*") if p.is_file()]
    assert _mode(stored) == 0o600
    assert _mode(stored.parent) == 0o700
    for sidecar in db.parent.glob(db.name + "-*"):  # the WAL and shared-memory files
        assert _mode(sidecar) == 0o600, sidecar


@pytest.mark.usefixtures("umask_022")
def test_edge_outbox_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "outbox.sqlite3"
    box = Outbox(path)
    box.put(b"payload", "start")
    box.close()
    assert _mode(path.parent) == 0o700
    assert _mode(path) == 0o600
    old = tmp_path / "old.sqlite3"  # an outbox an older release made 0644
    old.touch(0o644)
    Outbox(old).close()
    assert _mode(old) == 0o600
