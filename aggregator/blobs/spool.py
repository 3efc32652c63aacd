"""An upload being received: a temporary file (mode 600) hashed as it is written, before it
goes to the blob store. Bounded memory whatever the size."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

#: Temporary files of uploads in progress; older than an hour they are a crash's.
INCOMING_PREFIX = ".incoming-"


class SpoolFullError(OSError):
    """The disk under the spool folder is full (the upload is refused with 507)."""


class Incoming:
    """Blocking: call it from a worker thread, not the event loop."""

    def __init__(self, directory: Path) -> None:
        fd, name = tempfile.mkstemp(prefix=INCOMING_PREFIX, suffix=".part", dir=directory)
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self.head = b""  # the first bytes, for sniffing the type

    def write(self, chunk: bytes) -> None:
        if len(self.head) < 16:
            self.head += chunk[: 16 - len(self.head)]
        self._hash.update(chunk)
        try:
            self._file.write(chunk)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise SpoolFullError(
                    errno.ENOSPC, f"the disk of the media folder {self.path.parent} is full"
                ) from None
            raise
        self.size += len(chunk)

    def finish(self) -> str:
        """Flush to disk (the edge deletes its copy once we answer) and return the sha256."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        return self._hash.hexdigest()

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


def remove_stale(directory: Path, older_than: float) -> int:
    """Remove temporary files last written before older_than (a crash's); how many went."""
    removed = 0
    for p in directory.glob(f"{INCOMING_PREFIX}*.part"):
        try:
            if p.stat().st_mtime < older_than:
                p.unlink(missing_ok=True)
                removed += 1
        except FileNotFoundError:
            continue
    return removed
