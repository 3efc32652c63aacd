"""What MediaStore needs from the place evidence bytes are kept."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from contract.errors import StreetwatchError


class BlobStoreError(StreetwatchError):
    """The store cannot do what was asked (unreachable, credentials refused, no bucket, a
    failed request); the message names the bucket or folder and the key."""


class MissingBlobError(LookupError):
    """No object under this key (removed by retention, or never placed)."""


class BlobStore(Protocol):
    """Bytes under keys. Keys are content addresses, so putting a key again puts the same
    bytes: every method may be repeated, and none decides what may be deleted (MediaStore
    does, under its lock, from its rows)."""

    #: "local" or "s3", for logs and metrics.
    kind: str

    def exists(self, key: str) -> bool:
        """Whether an object is stored under key."""
        ...

    def put(self, key: str, source: Path, content_type: str) -> None:
        """Store the file source under key (source stays; the caller removes it)."""
        ...

    def delete(self, keys: Sequence[str]) -> None:
        """Remove these keys; a key that is already gone is not an error."""
        ...

    def stale_keys(self, older_than: float) -> Iterator[str]:
        """Every key last written before older_than (Unix seconds): the candidates of the
        sweep for objects whose row was never committed (a crash between the two)."""
        ...

    def discard_incomplete(self, older_than: float) -> int:
        """Drop uploads begun before older_than and never finished; how many went."""
        ...
