"""Evidence in an S3 bucket (media.store: s3) against a real S3 server, SeaweedFS: objects
land once and byte-identical, dedup, quotas, the legal hold and retention work as with local
files, downloads answer ranges exactly as the local store does (or redirect to a presigned
URL), the media lock holds across replicas, and a bucket that cannot be used is a clear error."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update

from aggregator.blobs import BlobStoreError
from aggregator.blobs.s3 import S3Blobs
from aggregator.core.config import MediaConfig, S3Config
from aggregator.db.models import MEDIA
from aggregator.media import MediaError, MediaStore, Upload
from aggregator.media_upload import content_key
from tests.aggregator.mediahelpers import KB4, World
from tests.deploy import database, free_port
from tests.seaweed import S3Server, seaweedfs

# Slow: a SeaweedFS server process for the module.
pytestmark = pytest.mark.slow

MP4 = "video/mp4"
AGGREGATOR = [sys.executable, "-m", "aggregator.cli"]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database(request.param, tmp_path) as url:
        yield url


def bucket_config(s3: S3Server, tmp: Path, **changes: Any) -> S3Config:
    """A fresh bucket, with the credentials in two files as a site keeps them."""
    access, secret = s3.key_files(tmp / "keys")
    values: dict[str, Any] = {
        "endpoint_url": s3.endpoint_url,
        "bucket": s3.new_bucket(),
        "access_key_file": access,
        "secret_key_file": secret,
    }
    return S3Config(**{**values, **changes})


def s3_world(
    s3: S3Server,
    tmp: Path,
    url: str | None = None,
    bucket: dict[str, Any] | None = None,
    **media: Any,
) -> World:
    """The real app with its evidence in a fresh bucket (bucket: changes to its S3Config)."""
    cfg = bucket_config(s3, tmp, **(bucket or {}))
    return World(tmp, url, store="s3", s3=cfg, **media)


def bucket_of(w: World) -> str:
    assert w.media.cfg.s3 is not None
    return w.media.cfg.s3.bucket


def expected_objects(w: World) -> dict[str, str]:
    """Key -> sha256 of every row's object: what the bucket must hold, no more."""
    with w.engine.connect() as conn:
        rows = conn.execute(select(MEDIA.c.sha256, MEDIA.c.content_type)).all()
    return {content_key(r.sha256, r.content_type): r.sha256 for r in rows}


def assert_bucket_matches_rows(s3: S3Server, w: World) -> dict[str, bytes]:
    objects = s3.objects(bucket_of(w))
    assert {k: hashlib.sha256(v).hexdigest() for k, v in objects.items()} == expected_objects(w)
    assert not [p for p in w.media.cfg.dir.rglob("*") if p.is_file()]  # spool is empty
    return objects


def put_clip(w: World, edge_id: str, body: bytes, media_id: str | None = None) -> httpx.Response:
    r: httpx.Response = w.client.put(
        f"/api/v1/media/{media_id or uuid.uuid4()}",
        content=body,
        headers={
            "Authorization": f"Bearer {w.tokens[edge_id]}",
            "Content-Type": MP4,
            "X-Event-Id": w.event(edge_id),
            "X-Media-Kind": "clip",
            "X-Content-SHA256": hashlib.sha256(body).hexdigest(),
        },
    )
    return r


def clip_bytes(size: int) -> bytes:
    return b"\x00\x00\x00\x18ftypisom" + os.urandom(size - 12)


def test_uploads_land_once_byte_identical_with_dedup(tmp_path: Path, s3: S3Server, db: str) -> None:
    w = s3_world(s3, tmp_path, db)
    w.edge("box-a")
    # One clip over the multipart threshold (8 MiB): it goes up in parts.
    bodies = [clip_bytes(9 * 1024 * 1024), clip_bytes(300_000), clip_bytes(5000)]
    ids = []
    for body in bodies:
        r = put_clip(w, "box-a", body)
        assert r.status_code == 201, r.text
        ids.append(str(r.json()["media_id"]))
    assert put_clip(w, "box-a", bodies[1], ids[1]).status_code == 200  # the same upload again
    assert put_clip(w, "box-a", bodies[1]).status_code == 201  # same bytes, another id
    objects = assert_bucket_matches_rows(s3, w)
    assert len(objects) == 3  # content-addressed: the shared bytes are one object
    assert sorted(objects.values(), key=len) == sorted(bodies, key=len)
    for mid, body in zip(ids, bodies, strict=True):
        got = w.client.get(f"/api/v1/media/{mid}", headers=w.session)
        assert got.status_code == 200
        assert got.content == body
        assert got.headers["content-type"] == MP4


def test_retention_removes_objects_and_the_legal_hold_keeps_them(
    tmp_path: Path, s3: S3Server, db: str
) -> None:
    w = s3_world(s3, tmp_path, db, max_total_bytes=5 * KB4, max_age_days=1)
    w.edge("box-a")
    w.edge("box-b")
    case_event = w.event("box-a")
    case_media = w.stored("box-a", case_event, KB4)
    w.review(case_event, "confirm")  # evidence of an open case: held
    with w.engine.begin() as conn:  # and past the age limit
        conn.execute(
            update(MEDIA)
            .where(MEDIA.c.media_id == case_media)
            .values(received_at=time.time() - 10 * 86400)
        )
    junk = [w.stored("box-b", w.event("box-b"), KB4) for _ in range(8)]
    assert len(s3.objects(bucket_of(w))) == 9
    assert w.media.prune() == 4
    assert w.present(case_media)
    assert sum(w.present(m) for m in junk) == 4
    assert len(assert_bucket_matches_rows(s3, w)) == 5  # the removed rows' objects went too


def test_an_object_two_uploads_share_stays_until_both_are_gone(
    tmp_path: Path, s3: S3Server
) -> None:
    w = s3_world(s3, tmp_path, max_age_days=1)
    w.edge("box-a")
    body = clip_bytes(4000)
    first, second = (str(put_clip(w, "box-a", body).json()["media_id"]) for _ in range(2))
    with w.engine.begin() as conn:
        conn.execute(
            update(MEDIA).where(MEDIA.c.media_id == first).values(received_at=time.time() - 2e5)
        )
    assert w.media.prune() == 1
    assert not w.present(first)
    assert w.present(second)
    assert len(assert_bucket_matches_rows(s3, w)) == 1
    with w.engine.begin() as conn:
        conn.execute(update(MEDIA).values(received_at=time.time() - 2e5))
    assert w.media.prune() == 1
    assert s3.objects(bucket_of(w)) == {}


def test_quota_refusal_leaves_no_object_and_eviction_deletes_one(
    tmp_path: Path, s3: S3Server, db: str
) -> None:
    w = s3_world(s3, tmp_path, db, per_edge_max_bytes=2 * KB4 + 100)
    w.edge("box-b")
    first_event = w.event("box-b")
    first = w.stored("box-b", first_event, KB4)
    w.stored("box-b", w.event("box-b"), KB4)
    third_event = w.event("box-b")
    r = w.upload("box-b", third_event, KB4)
    assert r.status_code == 507, r.text
    assert len(assert_bucket_matches_rows(s3, w)) == 2
    w.review(first_event, "dismiss")
    assert w.upload("box-b", third_event, KB4).status_code == 201
    assert not w.present(first)
    assert len(assert_bucket_matches_rows(s3, w)) == 2  # the dismissed one's object went


def test_a_failed_row_leaves_no_object_and_can_be_sent_again(tmp_path: Path, s3: S3Server) -> None:
    w = s3_world(s3, tmp_path)
    w.edge("box-a")
    with w.engine.begin() as conn:  # the database refuses every new media row
        conn.execute(
            text(
                "CREATE TRIGGER refuse_media BEFORE INSERT ON media "
                "BEGIN SELECT RAISE(ABORT, 'media rows refused by the test'); END"
            )
        )
    body, mid = clip_bytes(20_000), str(uuid.uuid4())
    r = put_clip(w, "box-a", body, mid)
    assert r.status_code == 503, r.text
    assert s3.objects(bucket_of(w)) == {}  # placed before the row, removed when it failed
    with w.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse_media"))
    assert put_clip(w, "box-a", body, mid).status_code == 201
    assert list(assert_bucket_matches_rows(s3, w).values()) == [body]


def test_an_object_left_by_a_crash_is_swept(tmp_path: Path, s3: S3Server) -> None:
    w = s3_world(s3, tmp_path)
    w.edge("box-a")
    kept = w.stored("box-a", w.event("box-a"), KB4)
    orphan = content_key("ab" * 32, "image/jpeg")  # as if the row never committed
    s3.client().put_object(Bucket=bucket_of(w), Key=orphan, Body=b"\xff\xd8\xff" + b"0" * 100)
    foreign = "not-evidence/readme.txt"  # not a content key: never ours to delete
    s3.client().put_object(Bucket=bucket_of(w), Key=foreign, Body=b"x")
    w.media.prune(now=time.time() + 2 * 3600)  # an hour after it was left
    assert set(s3.objects(bucket_of(w))) == {*expected_objects(w), foreign}
    assert w.present(kept)


RANGES = [
    None,
    "bytes=100-199",
    "bytes=-500",
    "bytes=299990-",
    "bytes=0-0,200-299,250-399",  # several: multipart/byteranges, overlapping ones merged
    "bytes=999999-",  # past the end: 416
    "bytes=abc",  # no range at all: 400
    "items=0-1",  # another unit: 400
]


@pytest.fixture(scope="module")
def two_stores(
    tmp_path_factory: pytest.TempPathFactory, s3: S3Server
) -> tuple[World, World, str, bytes]:
    """The same clip in a local store and in a bucket."""
    body = clip_bytes(300_000)
    local = World(tmp_path_factory.mktemp("local"))
    bucket = s3_world(s3, tmp_path_factory.mktemp("bucket"))
    mid = str(uuid.uuid4())
    for w in (local, bucket):
        w.edge("box-a")
        assert put_clip(w, "box-a", body, mid).status_code == 201
    return local, bucket, mid, body


def _body(r: httpx.Response) -> bytes:
    boundary = r.headers["content-type"].partition("boundary=")[2]
    return r.content.replace(boundary.encode(), b"B") if boundary else r.content


@pytest.mark.parametrize("wanted", RANGES)
def test_proxied_ranges_answer_as_the_local_store_does(
    two_stores: tuple[World, World, str, bytes], wanted: str | None
) -> None:
    mid, body = two_stores[2:]
    extra = {"Range": wanted} if wanted else {}
    a, b = (
        w.client.get(f"/api/v1/media/{mid}", headers={**w.session, **extra}) for w in two_stores[:2]
    )
    assert b.status_code == a.status_code
    for header in ("content-range", "content-length", "accept-ranges"):
        assert b.headers.get(header) == a.headers.get(header), header
    assert _body(b) == _body(a)
    if wanted == "bytes=100-199":
        assert (b.status_code, b.content) == (206, body[100:200])
    if wanted is None:
        assert b.content == body


def test_redirect_mode_gives_a_presigned_url_that_answers_ranges(
    tmp_path: Path, s3: S3Server
) -> None:
    w = s3_world(s3, tmp_path, bucket={"serve": "redirect", "presign_expiry_s": 60})
    w.edge("box-a")
    body = clip_bytes(50_000)
    mid = put_clip(w, "box-a", body).json()["media_id"]
    r = w.client.get(f"/api/v1/media/{mid}", headers=w.session, follow_redirects=False)
    assert r.status_code == 307
    location = r.headers["location"]
    assert location.startswith(f"{s3.endpoint_url}/{bucket_of(w)}/")
    assert "X-Amz-Signature=" in location
    part = httpx.get(location, headers={"Range": "bytes=1000-1999"})  # no credentials
    assert part.status_code == 206
    assert part.content == body[1000:2000]
    assert httpx.get(location).content == body
    # The review UI may load the redirected clip: its CSP allows the bucket's origin, and
    # only for images and media.
    csp = w.client.get("/ui/").headers["content-security-policy"]
    assert f"media-src 'self' {s3.endpoint_url}" in csp
    assert f"img-src 'self' {s3.endpoint_url}" in csp
    assert "default-src 'self';" in csp


def test_replicas_share_the_media_lock_on_postgresql(tmp_path: Path, s3: S3Server) -> None:
    """Two MediaStores on one database and one bucket are two replicas: only the advisory
    lock stands between their quota checks. 16 uploads race for a quota of 5."""
    with database("postgresql", tmp_path) as url:
        w = s3_world(s3, tmp_path, url, per_edge_max_bytes=5 * KB4)
        w.edge("box-a")
        other = MediaStore(w.media.cfg, w.engine)  # its own process lock, as another replica
        stores = [w.media, other]
        events = [w.event("box-a") for _ in range(16)]
        answers: list[str] = []

        def upload(i: int) -> None:
            body = b"\xff\xd8\xff\xe0" + os.urandom(KB4 - 4)
            up = Upload(
                uuid.uuid4(),
                "box-a",
                uuid.UUID(events[i]),
                "snapshot",
                "image/jpeg",
                hashlib.sha256(body).hexdigest(),
                0.0,
                0.0,
            )
            try:
                stores[i % 2].save(up, body)
                answers.append("stored")
            except MediaError as exc:
                answers.append(str(exc.status))

        threads = [threading.Thread(target=upload, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(answers) == ["507"] * 11 + ["stored"] * 5
        assert w.total() == 5 * KB4
        assert len(assert_bucket_matches_rows(s3, w)) == 5
        w.engine.dispose()


def _check_error(s3: S3Server, tmp: Path, message: str, **changes: Any) -> None:
    cfg = bucket_config(s3, tmp, **changes)
    with pytest.raises(BlobStoreError) as err:
        MediaStore(MediaConfig(dir=tmp / "media", store="s3", s3=cfg), engine=None)  # type: ignore[arg-type]
    assert message in str(err.value)


def test_a_bucket_that_cannot_be_used_is_a_clear_error(tmp_path: Path, s3: S3Server) -> None:
    where = f"at {s3.endpoint_url}"
    _check_error(s3, tmp_path, "does not exist", bucket="no-such-bucket-here")
    _check_error(s3, tmp_path, "'no-such-bucket-here' " + where, bucket="no-such-bucket-here")
    wrong = tmp_path / "wrong.secret"
    wrong.write_text("not-the-secret")
    _check_error(s3, tmp_path, "the secret key does not match", secret_key_file=wrong)
    unknown = tmp_path / "unknown.key"
    unknown.write_text("NOSUCHKEY")
    _check_error(s3, tmp_path, "the access key id is unknown", access_key_file=unknown)
    dead = f"http://127.0.0.1:{free_port()}"
    _check_error(s3, tmp_path, "cannot be reached", endpoint_url=dead, timeout_s=1)
    _check_error(s3, tmp_path, "cannot read", secret_key_file=tmp_path / "missing")
    # Created only when asked.
    made = bucket_config(s3, tmp_path, bucket=f"sw-made-{uuid.uuid4().hex[:8]}", create_bucket=True)
    S3Blobs(made).check()
    assert made.bucket in [b["Name"] for b in s3.client().list_buckets()["Buckets"]]


def test_credentials_from_the_environment(tmp_path: Path, s3: S3Server) -> None:
    cfg = bucket_config(s3, tmp_path, access_key_file=None, secret_key_file=None)
    S3Blobs(
        cfg, {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    ).check()
    with pytest.raises(BlobStoreError, match="no credentials for bucket"):
        S3Blobs(cfg, {})


def test_the_command_line_names_the_bucket_in_one_line(tmp_path: Path, s3: S3Server) -> None:
    access, secret = s3.key_files(tmp_path / "keys")
    (tmp_path / "aggregator.yaml").write_text(
        f"database_url: sqlite:///a.sqlite3\nmedia:\n  store: s3\n  s3:\n"
        f"    endpoint_url: {s3.endpoint_url}\n    bucket: missing-bucket\n"
        f"    access_key_file: keys/{access.name}\n    secret_key_file: keys/{secret.name}\n"
    )
    res = subprocess.run(
        [*AGGREGATOR, "--log-level", "error", "media", "prune", "-c", "aggregator.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip().splitlines() == [
        f"aggregator: error: bucket 'missing-bucket' at {s3.endpoint_url} does not exist: "
        "create it, or set media.s3.create_bucket: true"
    ]
