"""Every command in README and in the documentation (docs/*.md) works as written.

Fences: ```python blocks are programs and run as they are; ```bash lines are commands and run as
they are (in a clean environment: the embedded default, a temporary TRACKIO_DIR and spool).
```py, ```sh and ```text blocks are fragments or synopses that need your model, data or cluster;
they are not run, so each ```py or ```sh block says why on the line before it, in a comment that
starts `<!-- fragment` (e.g. `<!-- fragments, not programs: each needs your model and data -->`).
A command that appears on several pages runs once. `make test` is this suite itself; `pip install`
lines are checked against the extras pyproject.toml declares instead of being installed over the
test environment.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import tomllib

from tests.harness import BIN, REPO, run_python

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = r"^ *```{language}\n(.*?)^ *```"


def blocks(language: str) -> list[tuple[str, str]]:
    """(where, body) of every ``language`` fence; where is ``page:line``."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in re.finditer(FENCE.format(language=language), text, re.DOTALL | re.MULTILINE):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{page.relative_to(REPO)}:{line}", match.group(1)))
    return found


def commands() -> list[str]:
    lines = [line.strip() for _, block in blocks("bash") for line in block.splitlines()]
    return list(dict.fromkeys(line for line in lines if line and not line.startswith("#")))


def test_the_docs_have_programs_and_commands_to_test() -> None:
    assert len(blocks("python")) >= 2
    assert any(c.startswith("make demo") for c in commands())
    assert any(c.startswith("python examples/") for c in commands())
    assert "make demo" in (REPO / "README.md").read_text()


@pytest.mark.parametrize("program", [pytest.param(b, id=w) for w, b in blocks("python")])
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


def test_every_fence_is_a_program_a_command_or_a_marked_fragment() -> None:
    """A block is skipped on purpose, never by a mistyped or missing fence language."""
    problems = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        inside = False
        for number, line in enumerate(lines):
            if not line.strip().startswith("```"):
                continue
            where = f"{page.relative_to(REPO)}:{number + 1}"
            inside = not inside
            if not inside:
                continue  # a closing fence
            language = line.strip()[3:]
            if language not in ("python", "bash", "py", "sh", "text"):
                problems.append(f"{where}: fence language {language!r}")
            before = [text.strip() for text in lines[:number] if text.strip()]
            if language in ("py", "sh") and not (before and before[-1].startswith("<!-- fragment")):
                problems.append(f"{where}: add a `<!-- fragment: why -->` line before it")
    assert not problems, problems
