"""Every command in README works as written.

Fences: ```python blocks are programs and run as they are; ```bash lines are commands and run as
they are (in a clean environment: the embedded default, a temporary TRACKIO_DIR and spool).
```py, ```sh and ```text blocks are fragments or synopses that need your model, data or cluster;
they are not run. `make test` is this suite itself; `pip install` lines are checked against the
extras pyproject.toml declares instead of being installed over the test environment.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import tomllib

from tests.harness import BIN, REPO, run_python

README = (REPO / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"^ *```{language}\n(.*?)^ *```", README, re.DOTALL | re.MULTILINE)


def commands() -> list[str]:
    lines = [line.strip() for block in blocks("bash") for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_readme_has_programs_and_commands_to_test() -> None:
    assert len(blocks("python")) >= 1
    assert any(c.startswith("make demo") for c in commands())
    assert any(c.startswith("python examples/") for c in commands())


@pytest.mark.parametrize("program", blocks("python"))
def test_python_snippets_run_as_written(program: str) -> None:
    result = run_python(program, timeout=180)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "command", [c for c in commands() if not c.startswith(("make test", "pip install"))]
)
def test_shell_commands_run_as_written(command: str, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_pip_install_lines_name_extras_that_exist() -> None:
    declared = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    named = {
        extra
        for command in commands()
        if command.startswith("pip install")
        for group in re.findall(r"\.\[([a-z,]+)\]", command)
        for extra in group.split(",")
    }
    assert named and named <= declared
