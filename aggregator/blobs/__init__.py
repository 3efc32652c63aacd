"""Where evidence bytes live: a local folder (the default) or an S3-compatible bucket.

MediaStore (aggregator/media.py) keeps the rows, the retention and the legal hold; a blob
store only keeps bytes under content keys (``ab/abcdef....mp4``) and never decides what to
delete.
"""

from __future__ import annotations

from aggregator.blobs.base import BlobStore, BlobStoreError, MissingBlobError
from aggregator.blobs.local import LocalBlobs
from aggregator.core.config import MediaConfig

__all__ = ["BlobStore", "BlobStoreError", "LocalBlobs", "MissingBlobError", "open_blob_store"]


def open_blob_store(cfg: MediaConfig) -> BlobStore:
    """The store media.store names, checked: an S3 bucket that cannot be reached, refuses
    the credentials or does not exist raises BlobStoreError naming bucket and endpoint."""
    if cfg.store == "s3":
        # boto3 is imported only by sites that keep evidence in a bucket.
        from aggregator.blobs.s3 import S3Blobs

        assert cfg.s3 is not None  # MediaConfig's validator
        bucket = S3Blobs(cfg.s3)
        bucket.check()
        return bucket
    return LocalBlobs(cfg.dir)
