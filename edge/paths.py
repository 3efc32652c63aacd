"""Where the project finds its own files and the shared assets, without any network."""

from __future__ import annotations

import os
from pathlib import Path

ASSETS_ENV = "STREETWATCH_ASSETS"


def project_root() -> Path:
    """The checkout the package runs from (editable install), holding models/ and configs/.

    In a wheel install this is site-packages, which holds neither: code that needs the
    checkout asks checkout_root(), which tells the two apart."""
    return Path(__file__).resolve().parent.parent


def checkout_root() -> Path | None:
    """The source checkout when running from one (editable install), else None (a wheel)."""
    root = project_root()
    return root if (root / "pyproject.toml").is_file() else None


def assets_dir() -> Path:
    """The shared assets folder: $STREETWATCH_ASSETS, else ../shared/assets beside the checkout."""
    env = os.environ.get(ASSETS_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return (project_root().parent / "shared" / "assets").resolve()
