"""The model manifest and the offline search path for model files.

The manifest is package data of `streetwatch_models`, which is the checkout's models/ folder
(pyproject.toml maps it), so a checkout and a wheel install read it the same way.

Search order for a model name or file: an explicit path, then the checkout's models/ (when
running from one), then $STREETWATCH_ASSETS/models, then ../shared/assets/models beside the
checkout. Nothing here touches the network; `fetch` is the one explicit download, run by a
user on a connected machine.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable
from pathlib import Path

from contract.config.manifest import Manifest, ModelEntry, load_manifest
from contract.files import sha256_of
from edge.errors import ModelError

__all__ = ["Manifest", "ModelEntry", "load_manifest"]
from edge.paths import ASSETS_ENV, assets_dir, checkout_root


def search_dirs() -> list[Path]:
    """The checkout's models/, then $STREETWATCH_ASSETS/models, then ../shared/assets/models
    beside the checkout. A wheel install has no checkout: only $STREETWATCH_ASSETS/models."""
    checkout = checkout_root()
    dirs = [checkout / "models"] if checkout else []
    if os.environ.get(ASSETS_ENV):
        dirs.append(assets_dir() / "models")
    if checkout:
        dirs.append(checkout.parent / "shared" / "assets" / "models")
    return dirs


def default_models_dir() -> Path:
    """Where downloads go unless told: the first folder searched (see search_dirs)."""
    dirs = search_dirs()
    if not dirs:
        raise ModelError(
            f"no models folder: not running from a checkout and ${ASSETS_ENV} is not set; "
            "give the folder to save into (edge models fetch --dest)"
        )
    return dirs[0]


def resolve_model(spec: str, manifest: Manifest, base_dir: Path | None = None) -> Path:
    """Find the .onnx file for a manifest name or a path; ModelError lists where it looked."""
    as_path = Path(spec).expanduser()
    if as_path.suffix or "/" in spec:
        candidates = [as_path] if as_path.is_absolute() else [Path.cwd() / as_path]
        if base_dir is not None and not as_path.is_absolute():
            candidates.append(base_dir / as_path)
        for c in candidates:
            if c.is_file():
                return c.absolute()
        raise ModelError(f"model file not found: {spec}")
    entry = manifest.models.get(spec)
    if entry is None:
        known = ", ".join(sorted(manifest.models))
        raise ModelError(f"unknown model '{spec}': give a path to an .onnx file or one of: {known}")
    looked = []
    for d in search_dirs():
        candidate = d / entry.file
        looked.append(str(d))
        if candidate.is_file():
            return candidate.absolute()
    where = ", ".join(looked) or f"no folder (not a checkout, and ${ASSETS_ENV} is not set)"
    hint = f"; run `edge models fetch {spec}` on a connected machine" if entry.url else ""
    raise ModelError(f"model '{spec}' ({entry.file}) not found in {where}{hint}")


def fetch(
    name: str,
    manifest: Manifest,
    dest_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Download a manifest model into dest_dir, verifying its checksum before it is kept."""
    entry = manifest.models.get(name)
    if entry is None:
        raise ModelError(f"unknown model '{name}': one of {', '.join(sorted(manifest.models))}")
    if not entry.url:
        raise ModelError(f"model '{name}' has no download URL; see its notes in the manifest")
    dest_dir.mkdir(parents=True, exist_ok=True)
    final = dest_dir / entry.file
    partial = final.with_suffix(final.suffix + ".part")
    try:
        with urllib.request.urlopen(entry.url, timeout=60) as resp, partial.open("wb") as out:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            while chunk := resp.read(1 << 16):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ModelError(f"download of '{name}' from {entry.url} failed: {exc}") from None
    if entry.sha256 and sha256_of(partial) != entry.sha256:
        partial.unlink(missing_ok=True)
        raise ModelError(f"download of '{name}' does not match the manifest's sha256; discarded")
    partial.replace(final)
    return final
