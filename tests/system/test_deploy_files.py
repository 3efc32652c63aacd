"""deploy/: the systemd units, the compose file and the Dockerfile run commands that exist.

Every command line in them is checked against the installed `aggregator` and `edge` console
scripts through their real `--help` (subcommands and options, level by level), the units are
parsed (and verified by `systemd-analyze verify` where it exists), the compose file's mounts
and dependencies are checked against the repository, and the Dockerfile must install the
project it copies. Nothing here starts a service.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

DEPLOY = REPO / "deploy"
UNITS = {
    "streetwatch-aggregator.service": [
        "/opt/streetwatch/.venv/bin/aggregator",
        "--log-format",
        "json",
        "serve",
        "--config",
        "/etc/streetwatch/aggregator.yaml",
    ],
    "streetwatch-edge.service": [
        "/opt/streetwatch/.venv/bin/edge",
        "--log-format",
        "json",
        "run",
        "--config",
        "/etc/streetwatch/edge-box.yaml",
    ],
}
VENV_BIN = "/opt/streetwatch/.venv/bin/"
# Bind-mount sources the operator creates by following deploy/README.md (they hold secrets, so
# they are not in the repository), with the README line that creates each.
OPERATOR_DIRS = {"etc": "mkdir -p etc/keys"}


def _scripts() -> dict[str, str]:
    with (REPO / "pyproject.toml").open("rb") as f:
        scripts: dict[str, str] = tomllib.load(f)["project"]["scripts"]
    return scripts


def _bin(tool: str) -> Path:
    """The installed console script, beside the interpreter running the tests (.venv/bin)."""
    path = Path(sys.executable).parent / tool
    assert path.is_file(), f"{tool}: console script not installed at {path}"
    return path


# --- the command lines, checked through the real CLI --------------------------------------


@cache
def _help(tool: str, *path: str) -> tuple[dict[str, bool], frozenset[str]]:
    """Options (name -> takes a value) and subcommands of `tool *path --help`."""
    res = subprocess.run(
        [str(_bin(tool)), *path, "--help"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, f"`{tool} {' '.join(path)} --help` failed: {res.stderr}"
    options: dict[str, bool] = {}
    commands: set[str] = set()
    section = ""
    for line in res.stdout.splitlines():
        if re.match(r"^[A-Z][a-z]+:$", line):
            section = line[:-1]
            continue
        if section == "Options":
            m = re.match(r"^  (-\w, )?(--[a-z0-9][a-z0-9-]*)(.*)$", line)
            if m:
                rest = m.group(3)
                # "--count INTEGER RANGE  help": one space then a metavar takes a value;
                # "--exit-when-done     help" (two spaces or nothing) is a flag.
                takes = bool(re.match(r"^ \S", rest)) and not rest.lstrip().startswith("/")
                options[m.group(2)] = takes
                if m.group(1):
                    options[m.group(1)[:2]] = takes
        elif section == "Commands":
            m = re.match(r"^  ([a-z][a-z0-9_-]*)(\s|$)", line)
            if m:
                commands.add(m.group(1))
    return options, frozenset(commands)


def check_command_line(argv: list[str]) -> None:
    """Walk argv level by level through the real `--help` of each group and command: every
    option must exist at its level, every word at a group level must be one of its commands,
    and the line must end on a command, not a group. Then the whole line with `--help` must
    be accepted by click (option values and choices included)."""
    tool = Path(argv[0]).name
    assert tool in _scripts(), f"{argv[0]}: {tool} is not in pyproject [project.scripts]"
    path: list[str] = []
    args = list(argv[1:])
    while args:
        word = args.pop(0)
        options, commands = _help(tool, *path)
        where = " ".join([tool, *path])
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            assert name in options, f"`{where}` has no option {name} (options: {sorted(options)})"
            if options[name] and "=" not in word:
                assert args, f"`{where} {name}` needs a value"
                args.pop(0)
        elif commands:
            assert word in commands, (
                f"`{where}` has no command '{word}' (commands: {sorted(commands)})"
            )
            path.append(word)
        else:
            pytest.fail(f"`{where}` takes no argument '{word}' in {shlex.join(argv)}")
    assert path, f"{shlex.join(argv)} names no subcommand"
    assert not _help(tool, *path)[1], f"`{tool} {' '.join(path)}` is a group, not a command"
    res = subprocess.run(
        [str(_bin(tool)), *argv[1:], "--help"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, f"{shlex.join(argv)} --help: {res.stderr or res.stdout}"


def test_the_command_line_checker_catches_mistakes() -> None:
    check_command_line(["/x/aggregator", "--log-level", "info", "serve", "-c", "a.yaml"])
    for bad in (
        ["/x/aggregator", "serve", "--no-such-option", "a.yaml"],
        ["/x/aggregator", "no-such-command", "--config", "a.yaml"],
        ["/x/aggregator", "edges", "--config", "a.yaml"],
        ["/x/aggregator", "--log-format", "yaml", "serve", "--config", "a.yaml"],
        ["/x/no-such-tool", "serve"],
    ):
        with pytest.raises(AssertionError):
            check_command_line(bad)


# --- systemd units ------------------------------------------------------------------------


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((DEPLOY / "systemd" / name).read_text())
    return parser


def _seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|sec|min|m)?", value.strip())
    assert m, f"not a time span: {value}"
    scale = {"ms": 0.001, "min": 60.0, "m": 60.0}.get(m.group(2) or "s", 1.0)
    return float(m.group(1)) * scale


@pytest.mark.parametrize("name", sorted(UNITS))
def test_unit_sections_and_keys(name: str) -> None:
    unit = _unit(name)
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    u, s = unit["Unit"], unit["Service"]
    assert "network-online.target" in u["After"].split()
    assert "network-online.target" in u["Wants"].split()
    if "aggregator" in name:
        assert "postgresql.service" in u["After"].split()
    assert int(u["StartLimitBurst"]) >= 1
    assert _seconds(u["StartLimitIntervalSec"]) > 0
    # Neither program talks sd_notify, so notify would leave the unit "activating" forever.
    assert s["Type"] in {"simple", "exec"}
    assert s["User"] == "streetwatch"
    assert s["WorkingDirectory"] == "/var/lib/streetwatch"
    assert s["StateDirectory"] == "streetwatch"
    assert shlex.split(s["ExecStart"]) == UNITS[name]
    assert s["Restart"] == "on-failure"
    assert _seconds(s["RestartSec"]) >= 1
    assert s["KillSignal"] == "SIGTERM"
    assert 10 <= _seconds(s["TimeoutStopSec"]) <= 120
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert s.get(key) == value, f"{name}: [Service] {key} should be {value!r}"
    assert "/var/lib/streetwatch" in s["ReadWritePaths"].split()
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_edge_unit_names_its_health_endpoints() -> None:
    text = (DEPLOY / "systemd" / "streetwatch-edge.service").read_text()
    for needle in ("127.0.0.1:9108", "/healthz", "/readyz", "/metrics", "http: {host, port}"):
        assert needle in text


@pytest.mark.parametrize("name", sorted(UNITS))
def test_unit_exec_start_exists(name: str) -> None:
    argv = shlex.split(_unit(name)["Service"]["ExecStart"])
    assert argv[0].startswith(VENV_BIN), argv[0]
    check_command_line(argv)


@pytest.mark.parametrize("name", sorted(UNITS))
def test_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed; the units were checked by configparser")
    # /opt/streetwatch does not exist here: point ExecStart at this environment's scripts, so
    # that verify also checks the binary is there and executable.
    text = (DEPLOY / "systemd" / name).read_text()
    (tmp_path / name).write_text(text.replace(VENV_BIN, f"{_bin('edge').parent}/"))
    res = subprocess.run(
        [analyze, "verify", "--man=no", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 on unknown keys and bad values but prints them, naming the unit.
    complaints = [ln for ln in (res.stdout + res.stderr).splitlines() if name in ln]
    assert res.returncode == 0, res.stdout + res.stderr
    assert not complaints, res.stdout + res.stderr


# --- compose ------------------------------------------------------------------------------


COMPOSE_FILES = ("compose.yaml", "compose.city.yaml")


@cache
def _compose(name: str = "compose.yaml") -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / name).read_text())
    return doc


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for v in service.get("volumes", []):
        assert isinstance(v, str), f"use the short volume syntax: {v}"
        src, dst, *mode = v.split(":")
        out.append((src, dst, mode[0] if mode else "rw"))
    return out


def test_compose_services() -> None:
    doc = _compose()
    services = doc["services"]
    assert {"postgres", "aggregator", "edge"} <= set(services)
    pg = services["postgres"]
    assert pg["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(dst == "/var/lib/postgresql/data" for _, dst, _ in _mounts(pg))

    agg, edge = services["aggregator"], services["edge"]
    build = agg["build"]
    assert build["context"] == ".."
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert edge.get("image") == agg["image"], "the edge runs the aggregator's image"
    assert agg["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert edge["depends_on"]["aggregator"]["condition"] == "service_healthy"
    published = {str(p).split(":")[-1] for p in agg["ports"]}
    assert {"8000", "5560"} <= published
    for svc, port in ((agg, 8000), (edge, 9108)):
        test = svc["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], test
        assert f"127.0.0.1:{port}/readyz" in test[3]
        assert "urllib" in test[3]
        compile(test[3], "healthcheck", "exec")
    declared = set(doc.get("volumes") or {})
    for svc in services.values():
        for src, _, _ in _mounts(svc):
            if not src.startswith((".", "/")):
                assert src in declared, f"named volume {src} is not declared"


@pytest.mark.parametrize("service", ["aggregator", "edge"])
def test_compose_command_exists(service: str) -> None:
    svc = _compose()["services"][service]
    command = svc["command"]
    assert isinstance(command, list), "exec form: a list"
    assert command[0] == service
    check_command_line(command)
    # The same command line as the systemd unit, and its config comes from a mount.
    unit = UNITS[f"streetwatch-{service}.service"]
    assert [Path(unit[0]).name, *unit[1:]] == command
    config = Path(command[command.index("--config") + 1])
    assert any(config.is_relative_to(dst) for _, dst, _ in _mounts(svc)), config


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_bind_mounts_exist(name: str) -> None:
    readme = (DEPLOY / "README.md").read_text()
    seen = 0
    for svc in _compose(name)["services"].values():
        for src, dst, mode in _mounts(svc):
            if not src.startswith((".", "/")):
                continue
            seen += 1
            assert not src.startswith("/"), f"{src}: host paths must be relative to deploy/"
            host = (DEPLOY / src).resolve()
            assert host.is_relative_to(REPO), f"{src} is outside the repository"
            rel = host.relative_to(DEPLOY).as_posix() if host.is_relative_to(DEPLOY) else None
            if rel is not None and rel.split("/")[0] in OPERATOR_DIRS and "/" in rel:
                # A file the operator puts into an operator folder: the README names it.
                assert rel.split("/", 1)[1] in readme, f"README must say how to create {src}"
                assert mode == "ro", f"{src} holds configs and keys: mount it read-only"
            elif rel in OPERATOR_DIRS:
                assert OPERATOR_DIRS[rel] in readme, f"README must say how to create {src}"
                assert mode == "ro", f"{src} holds configs and keys: mount it read-only"
            else:
                assert host.exists(), f"{src} (mounted at {dst}) does not exist"
    assert seen >= 3


def test_city_compose_runs_replicas_of_existing_commands() -> None:
    """compose.city.yaml: 3 ingest replicas each with its replica id and probes, API
    replicas behind a balancer that lists them all, object storage, PostgreSQL; every
    command line exists, and its config file ships in configs/."""
    services = _compose("compose.city.yaml")["services"]
    ingest = [n for n in services if n.startswith("ingest-")]
    api = [n for n in services if n.startswith("api-")]
    assert len(ingest) >= 3
    assert len(api) >= 2
    assert {"postgres", "seaweedfs", "balancer", "edge"} <= set(services)
    for name in ingest:
        command = services[name]["command"]
        assert command[command.index("--replica-id") + 1] == name
        assert "8001/readyz" in services[name]["healthcheck"]["test"][3]
    balancer = services["balancer"]["command"]
    assert sorted(balancer[i + 1] for i, a in enumerate(balancer) if a == "--to") == sorted(
        f"{n}:8000" for n in api
    )
    for name in (*ingest, *api, "edge"):
        command = services[name]["command"]
        check_command_line(command)
        config = Path(command[command.index("--config") + 1])
        assert (REPO / "configs" / config.name).is_file(), f"{config.name} is not in configs/"


def test_compose_file_with_docker_compose() -> None:
    docker = shutil.which("docker")
    ok = (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    )
    if not ok:
        pytest.skip("no `docker compose` here; the compose file was checked by parsing")
    assert docker
    res = subprocess.run(
        [docker, "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "POSTGRES_PASSWORD": "x"},
    )
    assert res.returncode == 0, res.stderr


# --- Dockerfile ---------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_installs_the_project() -> None:
    ins = _instructions()
    assert ins[0] == ("FROM", "python:3.11-slim")
    assert not any(word == "ENTRYPOINT" for word, _ in ins)
    copied: list[str] = []
    for word, rest in ins:
        if word in {"COPY", "ADD"}:
            assert word == "COPY", "COPY, not ADD"
            *sources, _ = shlex.split(rest)
            for src in sources:
                assert not src.startswith("--"), "no COPY --from or --chown needed"
                assert (REPO / src).exists(), f"COPY {src}: not in the build context (repo root)"
                assert not re.search(r"\.(onnx|pt|mp4|avi|mkv|gif)$|videos|assets", src), src
                copied.append(src.rstrip("/"))
    # pyproject itself, its readme, and every package it installs are copied: a package's
    # whole folder, or (a folder mapped by package-dir, like models/) its __init__.py and
    # every package-data file in it, and nothing else from it (models/ also holds weights).
    with (REPO / "pyproject.toml").open("rb") as f:
        setuptools = tomllib.load(f)["tool"]["setuptools"]
    assert {"pyproject.toml", "README.md"} <= set(copied), copied
    for package in setuptools["packages"]:
        if "." in package:
            continue
        folder = setuptools.get("package-dir", {}).get(package, package)
        if folder in copied:
            continue
        data = setuptools.get("package-data", {}).get(package, [])
        files = {f"{folder}/__init__.py"}
        files |= {p.relative_to(REPO).as_posix() for g in data for p in (REPO / folder).glob(g)}
        inside = {c for c in copied if c.startswith(f"{folder}/")}
        assert inside == files, f"package {package}: copy {folder}/ or exactly {sorted(files)}"
    pip = [rest for word, rest in ins if word == "RUN" and "pip install" in rest]
    assert pip, "the Dockerfile never runs pip install"
    installs = [
        m.group(2) or ""
        for r in pip
        if (m := re.search(r"pip install (\S+ )*[\"']?\.(\[[a-z,]+\])?[\"']?(\s|$)", r))
    ]
    assert installs, f"the Dockerfile never installs the project (.): {pip}"
    # Compose runs the aggregator and the edge from this one image: it needs both extras.
    assert {"edge", "aggregator"} <= set(installs[0].strip("[]").split(",")), installs
    assert not any(re.search(r"pip install .*(-e|--editable)\b", r) for r in pip)
    users = [rest for word, rest in ins if word == "USER"]
    assert users, "the image must set a USER"
    assert users[-1] not in {"root", "0"}, "the image must not run as root"
    # BuildKit's Dockerfile-specific ignore file must let the copied sources through.
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for src in copied:
        assert f"!{src}" in ignore or f"!{src}/" in ignore, f"{src} is excluded from the context"
