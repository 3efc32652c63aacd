"""CurveZMQ key pairs: public key shared, secret key readable by its owner only."""

from __future__ import annotations

import os
from pathlib import Path

import zmq.auth

from contract.errors import StreetwatchError


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
