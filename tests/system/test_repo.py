"""Repository hygiene that CI depends on."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO


def _readme_commands() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    found = dict(
        re.findall(r"<!-- (setup|test)-command -->\s*```(?:sh|bash)?\n(.+?)\n```", text, re.S)
    )
    assert set(found) == {"setup", "test"}, "README must mark its set-up and test commands"
    return found


def test_ci_runs_the_readme_commands() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    for name, cmd in _readme_commands().items():
        assert cmd.strip() in ci, f"README {name} command is not what .ci/run runs"


def test_no_weights_or_media_tracked() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    bad = [f for f in files if re.search(r"\.(onnx|pt|mp4|avi|mkv|gif|webm)$", f)]
    assert bad == []
