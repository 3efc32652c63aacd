"""CurveZMQ key pairs, and files of secrets and data: public keys shared, everything else
readable by its owner only, whatever the umask (outside systemd it is usually 022)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import zmq.auth

from contract.errors import StreetwatchError

log = logging.getLogger(__name__)


def generate(directory: Path, name: str) -> tuple[Path, Path]:
    """Write NAME.key (public) and NAME.key_secret (mode 600); refuse to overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = directory / f"{name}.key", directory / f"{name}.key_secret"
    for p in (public, secret):
        if p.exists():
            raise StreetwatchError(f"{p}: already exists; remove it first to make a new key")
    old = os.umask(0o077)  # the secret file is never readable by others, not even briefly
    try:
        zmq.auth.create_certificates(str(directory), name)
    finally:
        os.umask(old)
    secret.chmod(0o600)
    public.chmod(0o644)
    return public, secret


def load_public(path: Path) -> bytes:
    try:
        public, _ = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise StreetwatchError(f"{path}: cannot read public key: {exc}") from None
    return public


def load_pair(path: Path) -> tuple[bytes, bytes]:
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise StreetwatchError(f"{path}: cannot read secret key: {exc}") from None
    if secret is None:
        raise StreetwatchError(f"{path}: holds no secret key (use the .key_secret file)")
    if path.stat().st_mode & 0o077:
        raise StreetwatchError(f"{path}: secret key is readable by others; chmod 600 it")
    return public, secret


def write_secret(path: Path, text: str) -> None:
    """Write a secret (an upload token) to path, mode 600, replacing any old file whatever
    its mode: a new file made owner-only from the start, renamed over the old one."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise StreetwatchError(f"{path}: cannot write: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w") as f:  # mkstemp makes it 0600
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise StreetwatchError(f"{path}: cannot write: {exc.strerror}") from None


def owner_only(path: Path, mode: int) -> None:
    """Tighten an existing file (0o600) or folder (0o700) that others may read; one that is
    not ours to change is logged, not refused, as the service can still run."""
    if not path.stat().st_mode & 0o077:
        return
    try:
        path.chmod(mode)
    except PermissionError:
        log.warning("%s: readable by others, and not ours to chmod %o", path, mode)
