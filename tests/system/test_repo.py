"""Repository hygiene that CI depends on."""

from __future__ import annotations

import os
import re
import shlex
import subprocess

from tests.conftest import REPO

SETUP_SCRIPT = "scripts/setup.sh"


def _readme_commands() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    found = dict(
        re.findall(r"<!-- (setup|test)-command -->\s*```(?:sh|bash)?\n(.+?)\n```", text, re.S)
    )
    assert set(found) == {"setup", "test"}, "README must mark its set-up and test commands"
    return found


def test_ci_runs_the_readme_commands() -> None:
    # Whole lines, word for word: a README command that CI ran with other arguments (or only
    # as part of a longer line) would not be the command CI checks.
    ci_lines = {line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()}
    for name, cmd in _readme_commands().items():
        assert cmd.strip() in ci_lines, f"README {name} command is not a line of .ci/run"


def test_setup_command_is_the_setup_script() -> None:
    assert shlex.split(_readme_commands()["setup"]) == [SETUP_SCRIPT]
    script = REPO / SETUP_SCRIPT
    assert os.access(script, os.X_OK), f"{SETUP_SCRIPT} is not executable"
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines
    subprocess.run(["bash", "-n", str(script)], check=True)
    staged = subprocess.run(
        ["git", "ls-files", "-s", SETUP_SCRIPT], cwd=REPO, capture_output=True, text=True
    ).stdout
    # A fresh clone runs it as `scripts/setup.sh`: git must keep the executable bit.
    assert staged == "" or staged.startswith("100755 "), staged


def test_setup_script_explains_itself_and_rejects_unknown_options() -> None:
    script = str(REPO / SETUP_SCRIPT)
    shown = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    assert "--export" in shown.stdout
    wrong = subprocess.run([script, "--exprot"], capture_output=True, text=True, timeout=30)
    assert wrong.returncode == 2
    assert "unknown option: --exprot" in wrong.stderr


def test_no_weights_or_media_tracked() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    bad = [f for f in files if re.search(r"\.(onnx|pt|mp4|avi|mkv|gif|webm)$", f)]
    assert bad == []
