"""Key files: secret ones readable by their owner only, and refused otherwise."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from contract.errors import StreetwatchError
from contract.keys import generate, load_pair, load_public, owner_only, write_secret


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


def test_secret_replaces_a_readable_file_and_is_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "box.token"
    target.write_text("old-token\n")
    target.chmod(0o644)  # as a copy, or an older release, left it
    write_secret(target, "new-token\n")
    assert target.read_text() == "new-token\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["box.token"]  # no temporary file left


def test_secret_in_a_missing_folder_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(StreetwatchError, match=r"nowhere/box\.token: cannot write"):
        write_secret(tmp_path / "nowhere" / "box.token", "t")


def test_owner_only_tightens_files_and_folders(tmp_path: Path) -> None:
    folder, data = tmp_path / "media", tmp_path / "db.sqlite3"
    folder.mkdir(mode=0o755)
    data.touch(0o644)
    owner_only(folder, 0o700)
    owner_only(data, 0o600)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(data.stat().st_mode) == 0o600
