"""Model manifest, offline search order, and the checked download."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest

from contract.config.manifest import MANIFEST_PACKAGE
from contract.files import sha256_of
from edge.detectors import catalog as model_catalog
from edge.detectors.catalog import (
    Manifest,
    ModelEntry,
    default_models_dir,
    fetch,
    load_manifest,
    resolve_model,
    search_dirs,
)
from edge.errors import ModelError
from tests.conftest import REPO


def test_the_manifest_package_is_the_checkouts_models_folder() -> None:
    # Editable install: package data read through importlib.resources is models/ itself, so
    # an edit to models/manifest.yaml is what load_manifest() reads, with no reinstall.
    assert Path(str(files(MANIFEST_PACKAGE))) == REPO / "models"
    edited = REPO / "models" / "manifest.yaml"
    assert load_manifest() == load_manifest(edited)


def test_manifest_lists_the_shipped_models(assets: Path) -> None:
    m = load_manifest()
    assert {"yolox_nano", "yolov8n_int8"} <= m.models.keys()
    nano = m.models["yolox_nano"]
    assert nano.input_wh == (416, 416)
    assert len(m.class_names(nano)) == 80
    # The manifest's checksum is the real file's.
    assert sha256_of(assets / "models" / nano.file) == nano.sha256


def test_search_order(tmp_path: Path, assets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = load_manifest()
    project = tmp_path / "checkout"
    (project / "models").mkdir(parents=True)
    env_assets = tmp_path / "elsewhere"
    (env_assets / "models").mkdir(parents=True)
    shared = tmp_path / "shared" / "assets" / "models"
    shared.mkdir(parents=True)
    monkeypatch.setattr(model_catalog, "checkout_root", lambda: project)
    monkeypatch.delenv("STREETWATCH_ASSETS", raising=False)

    with pytest.raises(ModelError, match=r"model 'yolox_nano' \(yolox_nano\.onnx\) not found in"):
        resolve_model("yolox_nano", m)
    for d in (shared, env_assets / "models", project / "models"):
        (d / "yolox_nano.onnx").symlink_to(assets / "models" / "yolox_nano.onnx")
    assert resolve_model("yolox_nano", m).parent == project / "models"
    (project / "models" / "yolox_nano.onnx").unlink()
    assert resolve_model("yolox_nano", m).parent == shared
    monkeypatch.setenv("STREETWATCH_ASSETS", str(env_assets))
    assert resolve_model("yolox_nano", m).parent == env_assets / "models"
    # An explicit path wins over everything.
    explicit = assets / "models" / "yolox_nano.onnx"
    assert resolve_model(str(explicit), m) == explicit


def test_a_wheel_install_searches_only_the_assets_folder(
    tmp_path: Path, assets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Installed from a wheel there is no checkout: neither site-packages/models nor a
    # ../shared beside it is searched, and downloads need a folder to go to.
    monkeypatch.setattr(model_catalog, "checkout_root", lambda: None)
    monkeypatch.delenv("STREETWATCH_ASSETS", raising=False)
    assert search_dirs() == []
    with pytest.raises(
        ModelError,
        match=r"not found in no folder \(not a checkout, and \$STREETWATCH_ASSETS is not set\)",
    ):
        resolve_model("yolox_nano", load_manifest())
    with pytest.raises(ModelError, match=r"no models folder: .*\(edge models fetch --dest\)"):
        default_models_dir()
    monkeypatch.setenv("STREETWATCH_ASSETS", str(tmp_path))
    assert search_dirs() == [tmp_path / "models"] == [default_models_dir()]
    monkeypatch.setenv("STREETWATCH_ASSETS", str(assets))
    assert resolve_model("yolox_nano", load_manifest()) == assets / "models" / "yolox_nano.onnx"


def test_a_checkout_downloads_into_its_models_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREETWATCH_ASSETS", "/nonexistent")
    assert default_models_dir() == REPO / "models"
    assert search_dirs()[-1] == REPO.parent / "shared" / "assets" / "models"


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(ModelError, match=r"unknown model .yolo5x.*yolox_nano"):
        resolve_model("yolo5x", load_manifest())


def _manifest(url: str, sha: str | None) -> Manifest:
    entry = ModelEntry(
        file="m.onnx",
        family="yolox",
        input_wh=(416, 416),
        classes="c",
        url=url,
        sha256=sha,
        licence="test",
    )
    return Manifest(models={"m": entry}, class_lists={"c": ["a"]})


def test_fetch_checks_the_checksum(tmp_path: Path, assets: Path) -> None:
    src = assets / "models" / "yolox_nano.onnx"
    dest = tmp_path / "models"
    seen: list[int] = []
    got = fetch("m", _manifest(src.as_uri(), sha256_of(src)), dest, lambda d, t: seen.append(d))
    assert got == dest / "m.onnx"
    assert got.read_bytes() == src.read_bytes()
    assert seen[-1] == src.stat().st_size

    with pytest.raises(ModelError, match="does not match the manifest's sha256; discarded"):
        fetch("m", _manifest(src.as_uri(), "0" * 64), tmp_path / "bad")
    assert list((tmp_path / "bad").iterdir()) == []


def test_fetch_failure_names_the_url(tmp_path: Path) -> None:
    url = (tmp_path / "missing.onnx").as_uri()
    with pytest.raises(ModelError, match=re.escape(f"download of 'm' from {url} failed")):
        fetch("m", _manifest(url, None), tmp_path / "d")
