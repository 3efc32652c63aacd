"""Evidence bytes as files in a local folder: ``DIR/ab/abcdef....mp4`` (mode 600, folders 700)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from contract.keys import owner_only


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobs:
    kind = "local"

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        owner_only(directory, 0o700)

    def path(self, key: str) -> Path:
        return self.dir / key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def put(self, key: str, source: Path, content_type: str) -> None:
        """A hard link to source (an upload's temporary file in the same folder, already
        flushed to disk): atomic, no copy, and source stays for a second put if needed."""
        dest = self.path(key)
        dest.parent.mkdir(exist_ok=True, mode=0o700)
        try:
            os.link(source, dest)
        except FileExistsError:
            return  # the same content, put before
        _fsync_dir(dest.parent)

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.path(key).unlink(missing_ok=True)

    def stale_keys(self, older_than: float) -> Iterator[str]:
        for path in self.dir.glob("??/*"):
            try:
                if path.is_file() and path.stat().st_mtime < older_than:
                    yield f"{path.parent.name}/{path.name}"
            except FileNotFoundError:
                continue  # removed while we looked

    def discard_incomplete(self, older_than: float) -> int:
        return 0  # a file is linked whole or not at all; the spool's leftovers are the caller's
