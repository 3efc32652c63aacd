"""Packaging: the edge and the aggregator install and run apart, from a wheel, without the
checkout.

Fast checks: neither side imports the other (in a fresh interpreter, and statically over
every file), and pyproject lists every package folder. Slow checks build one wheel from the
sources (as git would commit them), install `wheel[aggregator]` and `wheel[edge]` into two
fresh virtual environments, and run each side from a folder outside the checkout: the
aggregator serves /healthz and the review UI, the edge replays a sample video with the model
the packaged manifest names, found in $STREETWATCH_ASSETS.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest

from edge.detectors.catalog import load_manifest
from tests.conftest import REPO
from tests.deploy import free_port

SIDES = ("contract", "edge", "aggregator")
# Who may import whom: the edge and the aggregator only share contract/.
FORBIDDEN = {"contract": {"edge", "aggregator"}, "edge": {"aggregator"}, "aggregator": {"edge"}}
# Distributions one side brings and the other must not install (headless OpenCV: neither).
# NumPy is on both sides now: Shapely (the grid's geometry) is built on it.
EDGE_ONLY = {"opencv-python", "onnxruntime", "av", "trackers", "supervision"}
AGGREGATOR_ONLY = {"fastapi", "starlette", "sqlalchemy", "alembic", "psycopg", "uvicorn"}
AGGREGATOR_ONLY |= {"argon2-cffi", "shapely", "python-multipart"}
# No byte-compiling: it is most of an install's time (SymPy, SciPy), and the tests run once.
PIP_INSTALL = ["-m", "pip", "install", "--no-input", "--progress-bar", "off", "--no-compile"]


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would point Python at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return {**env, **extra}


# --- the import boundary ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "other"),
    [
        ("aggregator.main", "edge"),
        ("aggregator.cli", "edge"),
        ("edge.worker", "aggregator"),
        ("edge.cli.main", "aggregator"),
    ],
)
def test_importing_one_side_loads_nothing_of_the_other(module: str, other: str) -> None:
    code = (
        f"import {module}, sys; "
        f"print([m for m in sys.modules if m == {other!r} or m.startswith({other + '.'!r})])"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=_clean_env(),
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]", f"importing {module} loaded {res.stdout.strip()}"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a file, at any depth (lazy imports too),
    and of importlib.import_module / __import__ calls with a literal name."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if name in {"import_module", "__import__"} and isinstance(arg, ast.Constant):
                found.append((node.lineno, str(arg.value)))
    return found


def boundary_violations(package_dir: Path, forbidden: set[str]) -> list[str]:
    out = []
    for path in sorted(package_dir.rglob("*.py")):
        for line, module in imported_modules(path):
            if module.split(".")[0] in forbidden:
                out.append(f"{path.relative_to(package_dir.parent)}:{line} imports {module}")
    return out


@pytest.mark.parametrize("side", SIDES)
def test_no_file_imports_across_the_boundary(side: str) -> None:
    assert boundary_violations(REPO / side, FORBIDDEN[side]) == []


def test_the_boundary_check_finds_lazy_and_dynamic_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "aggregator"
    pkg.mkdir()
    (pkg / "ok.py").write_text("from contract import wire\nimport edgetpu\n")
    (pkg / "bad.py").write_text(
        "import importlib\n"
        "def f():\n"
        "    from edge.detectors import catalog\n"
        "    return importlib.import_module('edge.worker')\n"
    )
    assert boundary_violations(pkg, {"edge"}) == [
        "aggregator/bad.py:3 imports edge.detectors",
        "aggregator/bad.py:4 imports edge.worker",
    ]


# --- what pyproject installs --------------------------------------------------------------


def _setuptools() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as f:
        config: dict[str, object] = tomllib.load(f)["tool"]["setuptools"]
    return config


def test_pyproject_lists_every_package_folder() -> None:
    # The list is explicit (models/ is mapped onto `streetwatch_models`); a package folder
    # left out would be missing from every wheel while editable installs still work.
    listed = set(_setuptools()["packages"])  # type: ignore[call-overload]
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for side in SIDES
        for init in (REPO / side).rglob("__init__.py")
    }
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - on_disk == {"streetwatch_models"}
    assert _setuptools()["package-dir"] == {"streetwatch_models": "models"}
    assert (REPO / "models" / "__init__.py").is_file()


# --- a wheel, installed side by side without the checkout -------------------------------


def _run(argv: list[str | Path], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [str(a) for a in argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=_clean_env(**env),
    )
    assert res.returncode == 0, f"{argv}: {res.stderr[-3000:] or res.stdout[-3000:]}"
    return res


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One wheel built from the files git would commit (no build/ left-overs, no weights),
    plus a stand-in weights file in models/ that must stay out of it."""
    src = tmp_path_factory.mktemp("src")
    listed = _run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], REPO)
    for rel in listed.stdout.splitlines():
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    (src / "models" / "weights-stand-in.onnx").write_bytes(b"not a model")
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, src], dist)
    (built,) = dist.glob("streetwatch-*.whl")
    with zipfile.ZipFile(built) as z:
        names = set(z.namelist())
    assert "streetwatch_models/manifest.yaml" in names
    assert not [n for n in names if n.endswith(".onnx")], "weights were packaged"
    return built


@pytest.fixture(scope="session")
def venvs(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fresh virtual environment per side, with `wheel[side]` installed (both at once)."""
    root = tmp_path_factory.mktemp("venvs")
    installs: dict[str, subprocess.Popen[str]] = {}
    for side in ("aggregator", "edge"):
        _run([sys.executable, "-m", "venv", root / side], root)
        installs[side] = subprocess.Popen(
            [root / side / "bin" / "python", *PIP_INSTALL, f"{wheel}[{side}]"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=root,
            env=_clean_env(),
        )
    try:
        for side, proc in installs.items():
            out, _ = proc.communicate(timeout=480)
            assert proc.returncode == 0, f"pip install {wheel.name}[{side}]: {out[-3000:]}"
    finally:
        for proc in installs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return {side: root / side for side in installs}


def _installed(venv: Path) -> set[str]:
    res = _run([venv / "bin" / "python", "-m", "pip", "list", "--format", "json"], venv)
    return {re.sub(r"[-_.]+", "-", d["name"]).lower() for d in json.loads(res.stdout)}


def _module_file(venv: Path, module: str, cwd: Path) -> Path:
    code = f"import {module}; print({module}.__file__)"
    return Path(_run([venv / "bin" / "python", "-c", code], cwd).stdout.strip())


@pytest.mark.slow
def test_the_aggregator_installs_and_serves_without_the_edge(
    venvs: dict[str, Path], tmp_path: Path
) -> None:
    venv = venvs["aggregator"]
    installed = _installed(venv)
    assert "streetwatch" in installed
    assert installed >= AGGREGATOR_ONLY
    assert installed & (EDGE_ONLY | {"opencv-python-headless"}) == set()
    assert _module_file(venv, "aggregator", tmp_path).is_relative_to(venv)

    _run([venv / "bin" / "aggregator", "keys", "generate", "--dir", "keys"], tmp_path)
    http_port, zmq_port = free_port(), free_port()
    (tmp_path / "aggregator.yaml").write_text(
        "database_url: sqlite:///aggregator.sqlite3\n"
        f"ingest:\n  bind: tcp://127.0.0.1:{zmq_port}\n"
        "  server_secret_key: keys/aggregator.key_secret\n"
        f"http:\n  host: 127.0.0.1\n  port: {http_port}\n"
    )
    log = (tmp_path / "aggregator.log").open("w")
    proc = subprocess.Popen(
        [venv / "bin" / "aggregator", "serve", "-c", "aggregator.yaml"],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_clean_env(),
    )
    url = f"http://127.0.0.1:{http_port}"
    try:
        health = None
        deadline = time.monotonic() + 60
        while health is None and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "aggregator.log").read_text()[-3000:]
            try:
                health = httpx.get(f"{url}/healthz", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health is not None, "the aggregator never answered /healthz"
        assert health.status_code == 200, health.text
        # The review UI is package data too.
        ui = httpx.get(f"{url}/ui/", timeout=5)
        assert ui.status_code == 200
        assert "<html" in ui.text.lower()
        proc.send_signal(signal.SIGTERM)
        # Stops on its own; uvicorn re-raises the SIGTERM it caught once HTTP has shut down.
        assert proc.wait(30) in {0, -signal.SIGTERM}, (tmp_path / "aggregator.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
    assert (tmp_path / "aggregator.sqlite3").is_file(), "the migrations never ran"


@pytest.mark.slow
def test_the_edge_installs_and_replays_without_the_aggregator(
    venvs: dict[str, Path], tmp_path: Path, assets: Path
) -> None:
    venv = venvs["edge"]
    installed = _installed(venv)
    assert "streetwatch" in installed
    assert installed >= EDGE_ONLY
    assert installed & AGGREGATOR_ONLY == set(), "the edge extra installs aggregator libraries"
    # The manifest is the wheel's package data, not the checkout's models/.
    manifest_pkg = _module_file(venv, "streetwatch_models", tmp_path)
    assert manifest_pkg.is_relative_to(venv)
    assert (manifest_pkg.parent / "manifest.yaml").is_file()

    camera = "bottle-detection.camera.yaml"
    shutil.copy(REPO / "sample_videos" / camera, tmp_path / camera)
    model = re.search(r"model:\s*(\S+)", (tmp_path / camera).read_text())
    assert model, f"{camera} names no model"
    env = {"STREETWATCH_ASSETS": str(assets)}
    listing = _run([venv / "bin" / "edge", "models", "list"], tmp_path, **env).stdout
    found = assets / "models" / load_manifest().models[model.group(1)].file
    assert re.search(rf"^{model.group(1)}\s.*\s{re.escape(str(found))}$", listing, re.M), listing

    video = assets / "videos" / "bottle-detection.mp4"
    argv = [venv / "bin" / "edge", "replay", video, "-c", camera, "--fast", "-q"]
    _run([*argv, "--events-out", "events.jsonl", "--tracks-out", "tracks.jsonl"], tmp_path, **env)
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert any(e["type"] == "litter" and e["phase"] == "start" for e in events), events
    tracks = (tmp_path / "tracks.jsonl").read_text().splitlines()
    assert any(json.loads(line)["tracks"] for line in tracks)
