"""Key files: secret ones readable by their owner only, and refused otherwise."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from contract.errors import StreetwatchError
from contract.keys import generate, load_pair, load_public


def test_generated_secret_is_owner_only_and_loads(tmp_path: Path) -> None:
    public, secret = generate(tmp_path, "box-1")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    pub, sec = load_pair(secret)
    assert pub == load_public(public)
    assert len(pub) == len(sec) == 40


def test_refuses_to_overwrite_and_to_use_a_shared_secret(tmp_path: Path) -> None:
    _, secret = generate(tmp_path, "box-1")
    with pytest.raises(StreetwatchError, match=r"box-1\.key: already exists"):
        generate(tmp_path, "box-1")
    secret.chmod(0o644)
    with pytest.raises(StreetwatchError, match="readable by others; chmod 600 it"):
        load_pair(secret)


def test_public_file_is_not_a_secret(tmp_path: Path) -> None:
    public, _ = generate(tmp_path, "box-1")
    with pytest.raises(StreetwatchError, match="holds no secret key"):
        load_pair(public)
