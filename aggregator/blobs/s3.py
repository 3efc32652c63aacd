"""Evidence bytes as objects in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, Ceph).

boto3 does the protocol: signing, retries, multipart uploads (upload_file with a
TransferConfig streams the spooled file in parts, never the whole body in memory) and
presigned URLs. Credentials come from two files or from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, and only from there: boto3's own search would end at the cloud
instance-metadata address, which a self-hosted site must not be asking.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from aggregator.blobs.base import BlobStoreError, MissingBlobError
from aggregator.core.config import S3Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

#: Errors of a request: the server's answer, the transport's, boto3's transfer manager's.
FAILURES = (ClientError, BotoCoreError, Boto3Error)
#: Bytes read from an object per piece when streaming it to a client.
READ_PIECE_BYTES = 64 * 1024
#: Keys per DeleteObjects request (the S3 limit).
DELETE_BATCH = 1000
#: What the server's error codes mean for someone starting the service.
REFUSALS = {
    "InvalidAccessKeyId": "the access key id is unknown to the server",
    "SignatureDoesNotMatch": "the secret key does not match the access key id",
    "AccessDenied": "the credentials may not use this bucket",
    "403": "access refused: check the credentials and the bucket's policy",
}


def _read_secret(path: Path, what: str) -> str:
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise BlobStoreError(f"media.s3.{what}: cannot read {path}: {exc.strerror}") from None
    if not value:
        raise BlobStoreError(f"media.s3.{what}: {path} is empty")
    return value


@dataclass(frozen=True)
class Credentials:
    key_id: str
    secret: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def credentials(cfg: S3Config, environ: Mapping[str, str]) -> Credentials:
    """The configured credentials: from the two files, else from the environment."""
    if cfg.access_key_file is not None and cfg.secret_key_file is not None:
        return Credentials(
            _read_secret(cfg.access_key_file, "access_key_file"),
            _read_secret(cfg.secret_key_file, "secret_key_file"),
        )
    key_id, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        raise BlobStoreError(
            f"media.s3: no credentials for bucket {cfg.bucket!r}: set access_key_file and "
            "secret_key_file, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
        )
    return Credentials(key_id, secret, environ.get("AWS_SESSION_TOKEN") or None)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) or str(
        exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    )


def _missing(exc: ClientError) -> bool:
    return _code(exc) in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


class S3Blobs:
    kind = "s3"

    def __init__(self, cfg: S3Config, environ: Mapping[str, str] | None = None) -> None:
        self.cfg = cfg
        where = cfg.endpoint_url or f"AWS S3 ({cfg.region})"
        self.where = f"bucket {cfg.bucket!r} at {where}"
        creds = credentials(cfg, os.environ if environ is None else environ)
        self.client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=cfg.endpoint_url,
            region_name=cfg.region,
            aws_access_key_id=creds.key_id,
            aws_secret_access_key=creds.secret,
            aws_session_token=creds.session_token,
            config=Config(
                s3={"addressing_style": "path" if cfg.path_style else "virtual"},
                signature_version="s3v4",  # presigned URLs too (boto3 would sign those v2)
                connect_timeout=cfg.timeout_s,
                read_timeout=cfg.timeout_s,
                retries={"mode": "standard", "max_attempts": 3},
                max_pool_connections=20,
            ),
        )
        self.transfer = TransferConfig(
            multipart_threshold=cfg.multipart_chunk_bytes,
            multipart_chunksize=cfg.multipart_chunk_bytes,
            max_concurrency=4,
        )

    def _key(self, key: str) -> str:
        return f"{self.cfg.prefix}{key}"

    def _fail(self, doing: str, exc: Exception) -> BlobStoreError:
        return BlobStoreError(f"{self.where}: {doing} failed: {exc}")

    def check(self) -> None:
        """Reach the bucket with the credentials, or say plainly why not; create a missing
        bucket only when create_bucket is set."""
        bucket = self.cfg.bucket
        try:
            self.client.list_objects_v2(Bucket=bucket, MaxKeys=1, Prefix=self.cfg.prefix)
        except ClientError as exc:
            code = _code(exc)
            if code in ("NoSuchBucket", "404") and self.cfg.create_bucket:
                self._create()
                return
            if code in ("NoSuchBucket", "404"):
                raise BlobStoreError(
                    f"{self.where} does not exist: create it, or set media.s3.create_bucket: true"
                ) from None
            reason = REFUSALS.get(code, f"the server answered {code}")
            raise BlobStoreError(f"{self.where}: {reason}") from None
        except BotoCoreError as exc:
            raise BlobStoreError(f"{self.where} cannot be reached: {exc}") from None

    def _create(self) -> None:
        args: dict[str, Any] = {"Bucket": self.cfg.bucket}
        if self.cfg.region != "us-east-1":  # us-east-1 takes no location constraint
            args["CreateBucketConfiguration"] = {"LocationConstraint": self.cfg.region}
        try:
            self.client.create_bucket(**args)
        except FAILURES as exc:
            raise BlobStoreError(f"{self.where}: cannot create the bucket: {exc}") from None

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.cfg.bucket, Key=self._key(key))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise self._fail(f"looking up {key}", exc) from exc
        except BotoCoreError as exc:
            raise self._fail(f"looking up {key}", exc) from exc
        return True

    def put(self, key: str, source: Path, content_type: str) -> None:
        try:
            self.client.upload_file(
                str(source),
                self.cfg.bucket,
                self._key(key),
                ExtraArgs={"ContentType": content_type},
                Config=self.transfer,
            )
        except FAILURES as exc:
            raise self._fail(f"uploading {key}", exc) from exc

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            batch: list[ObjectIdentifierTypeDef]
            batch = [{"Key": self._key(k)} for k in keys[start : start + DELETE_BATCH]]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.cfg.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except FAILURES as exc:
                raise self._fail(f"deleting {len(batch)} objects", exc) from exc
            failed = [e for e in answer.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if failed:
                first = failed[0]
                raise BlobStoreError(
                    f"{self.where}: {len(failed)} objects not deleted, e.g. {first.get('Key')}: "
                    f"{first.get('Code')} {first.get('Message')}"
                )

    def read(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes start..end-1 of the object, in pieces. The request is made now (a missing
        object raises MissingBlobError here), the body is read as the iterator is."""
        try:
            answer = self.client.get_object(
                Bucket=self.cfg.bucket, Key=self._key(key), Range=f"bytes={start}-{end - 1}"
            )
        except ClientError as exc:
            if _missing(exc):
                raise MissingBlobError(f"{self.where}: no object {key}") from None
            raise self._fail(f"reading {key}", exc) from exc
        except BotoCoreError as exc:
            raise self._fail(f"reading {key}", exc) from exc
        return _pieces(answer["Body"])

    def presign(self, key: str) -> str:
        """A URL that GETs the object (Range included) without credentials, for a while."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.cfg.bucket, "Key": self._key(key)},
            ExpiresIn=self.cfg.presign_expiry_s,
        )

    def stale_keys(self, older_than: float) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.cfg.bucket, Prefix=self.cfg.prefix
        )
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    if obj["LastModified"].timestamp() < older_than:
                        yield obj["Key"].removeprefix(self.cfg.prefix)
        except FAILURES as exc:
            raise self._fail("listing the bucket", exc) from exc

    def discard_incomplete(self, older_than: float) -> int:
        """Abort multipart uploads a crash left behind (their parts take space unseen); the
        first 1,000 per call, which an hourly sweep keeps up with."""
        aborted = 0
        try:
            answer = self.client.list_multipart_uploads(
                Bucket=self.cfg.bucket, Prefix=self.cfg.prefix
            )
            for up in answer.get("Uploads", []):
                if up["Initiated"].timestamp() < older_than:
                    self.client.abort_multipart_upload(
                        Bucket=self.cfg.bucket, Key=up["Key"], UploadId=up["UploadId"]
                    )
                    aborted += 1
        except FAILURES as exc:
            raise self._fail("aborting stale multipart uploads", exc) from exc
        return aborted


def _pieces(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(READ_PIECE_BYTES)
    finally:
        body.close()
