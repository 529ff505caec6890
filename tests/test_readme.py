"""Every command in README and in the documentation (docs/*.md) works as written, and does what
the page says it does.

Fences: ```python blocks are programs and run as they are; ```bash lines are commands and run as
they are (in a clean environment: the embedded default, a temporary TRACKIO_DIR and spool).
```nginx is the gateway configuration of docs/gateway.md (one block, on that page only), which
tests/nginx.py renders and runs; ```yaml is the LightningCLI configuration of docs/lightning.md
(one block, on that page only), which tests/test_lightning_cli.py runs. ```py, ```sh and ```text blocks are fragments or synopses that
need your model, data or cluster; they are not run, so each ```py or ```sh block says why on the
line before it, in a comment that starts `<!-- fragment` (e.g.
`<!-- fragments, not programs: each needs your model and data -->`). A command that appears on several pages runs once. `make test` is this suite itself; `pip install`
lines are checked against the extras pyproject.toml declares instead of being installed over the
test environment.

Each program and command must do more than exit 0: ``EXPECTED`` says what its output shows, and
what an example logged is read back from a real ``trackio show``. The performance page's results
must be the rendering of the saved benchmark run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import tomllib

from tests.harness import BIN, REPO, TrackioServer, free_port, own, run_python, wait_until

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = r"^ *```{language}\n(.*?)^ *```"
PERFORMANCE = REPO / "docs" / "performance.md"
GATEWAY_PAGE = REPO / "docs" / "gateway.md"  # its one nginx block is what tests/nginx.py runs
CLI_PAGE = REPO / "docs" / "lightning.md"  # its one yaml block is what test_lightning_cli.py runs
# A ```bash block after this mark starts a server that runs until stopped: run by its own test.
SERVER_MARK = "<!-- server"

# What each command's output must show (all of the patterns, as regular expressions).
EXPECTED = {
    "make demo": [
        r"framework\s+project\s+run\s+points",
        r"dashboard tabs lit: metrics, media, reports, system, files, artifacts, traces\n",
        r"Every run arrived whole\.",
    ],
    "trackio-integrations doctor": [r"Target:\s+local", r"Logging would work\."],
    "python examples/transformers_trainer.py": [r"Logged \d+ train/loss points to run"],
    "python examples/lightning_logger.py": [r"Logged \d+ points to run"],
    "python examples/accelerate_tracker.py": [r"Logged \d+ points to run"],
    "python examples/health_alerts.py": [r"Logged \d+ points to run", r"\[TRACKIO ERROR\]"],
    "python examples/hyperparameter_search.py": [
        r"Searched 3 trials: runs lr-search-bs8-trial-0 \.\. lr-search-bs8-trial-2 in group "
        r"lr-search-bs8 of demo-search",
        r"in group lr-search-bs16 of demo-search",
    ],
    ".venv/bin/python bench/bench.py --quick": [
        r"\| Measurement \(median of rounds\) \|",
        r"\| all points on the server: delivery run \| 1/1 rounds complete \|",
    ],
    "trackio-integrations status": [r"No points waiting\."],
    "trackio-integrations sync": [r"No points to send\."],
}
LOGGED = re.compile(r"Logged (\d+) (?:train/loss )?points to run (\S+) of (\S+)")


def blocks(language: str, server: bool = False) -> list[tuple[str, str]]:
    """(where, body) of every ``language`` fence; where is ``page:line``. ``server``: only the
    blocks that start a server (``<!-- server`` on the line before), else all but those."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in re.finditer(FENCE.format(language=language), text, re.DOTALL | re.MULTILINE):
            line = text.count("\n", 0, match.start()) + 1
            before = text[: match.start()].rstrip().rsplit("\n", 1)[-1].strip()
            if before.startswith(SERVER_MARK) == server:
                found.append((f"{page.relative_to(REPO)}:{line}", match.group(1)))
    return found


def commands() -> list[str]:
    lines = [line.strip() for _, block in blocks("bash") for line in block.splitlines()]
    return list(dict.fromkeys(line for line in lines if line and not line.startswith("#")))


def expected(command: str) -> list[str]:
    """The patterns for a command (its text before any ``#`` comment)."""
    return EXPECTED[command.split("  #")[0].strip()]


@pytest.fixture(scope="module")
def local_viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackioServer]:
    """``trackio show`` on the embedded default's storage, where the examples log."""
    viewer = TrackioServer(tmp_path_factory.mktemp("readme-trackio"))
    viewer.start()
    yield viewer
    viewer.stop()


def test_the_docs_have_programs_and_commands_to_test() -> None:
    assert len(blocks("python")) >= 2
    assert any(c.startswith("make demo") for c in commands())
    assert any(c.startswith("python examples/") for c in commands())
    assert "make demo" in (REPO / "README.md").read_text()


def test_every_command_has_something_to_check_besides_its_exit_status() -> None:
    run = [c for c in commands() if not c.startswith(("make test", "pip install"))]
    assert [c for c in run if c.split("  #")[0].strip() not in EXPECTED] == []


@pytest.mark.parametrize("program", [pytest.param(b, id=w) for w, b in blocks("python")])
def test_python_snippets_run_as_written(
    program: str, local_viewer: TrackioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKIO_DIR", str(local_viewer.data_dir))
    result = run_python(program, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr, result.stderr
    if "readme-quickstart" in program:  # what it logged is what the dashboard reads
        name, run_id = result.stdout.split()
        steps = local_viewer.wait_for_steps("readme-quickstart", name, "train/loss", 100)
        assert steps == list(range(100))  # each once
        values = local_viewer.values("readme-quickstart", name, "train/loss")
        assert [v["value"] for v in values] == pytest.approx([1 / (s + 1) for s in range(100)])
        assert own(local_viewer.wait_for_config("readme-quickstart", run_id, best_loss=0.01)) == {
            "_Group": None,
            "lr": 3e-4,
            "layers": 4,
            "best_loss": 0.01,
        }


@pytest.mark.timeout(900)  # `make demo` trains six runs; the benchmark's smoke test
@pytest.mark.parametrize(
    "command", [c for c in commands() if not c.startswith(("make test", "pip install"))]
)
def test_shell_commands_run_as_written(
    command: str, local_viewer: TrackioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKIO_DIR", str(local_viewer.data_dir))
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    for pattern in expected(command):
        assert re.search(pattern, result.stdout), f"{pattern!r} not in the output:\n{output}"
    if logged := LOGGED.search(result.stdout):  # an example: read its run back
        count, run, project = int(logged[1]), logged[2], logged[3]
        steps = local_viewer.wait_for_steps(project, run, "train/loss", count)
        assert len(steps) == len(set(steps)) == count


@pytest.mark.timeout(180)
def test_the_server_block_starts_a_server_that_a_run_logs_to(tmp_path: Path) -> None:
    """Getting started's server, as written (``pip install`` aside, and on the loopback instead
    of every interface): it prints a write-access URL, and a run given that URL arrives."""
    ((where, block),) = blocks("bash", server=True)
    lines = [line for line in block.splitlines() if line and not line.startswith("pip install")]
    script = "\n".join(lines).replace("--host 0.0.0.0", "--host 127.0.0.1")
    assert script.count("--host 127.0.0.1") == 1, where
    port = free_port()
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "GRADIO_SERVER_PORT": str(port)}
    env.update(TRACKIO_DIR=str(tmp_path / "server-data"), BROWSER="true", HF_HUB_OFFLINE="1")
    for name in ("TRACKIO_SERVER_URL", "TRACKIO_WRITE_TOKEN", "TRACKIO_SPACE_ID"):
        env.pop(name, None)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            ["bash", "-c", script],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=tmp_path,
        )
    try:
        printed = re.compile(r"with write access at: (http://[\w.]+:(\d+)\S*write_token=\w+)")
        found = wait_until(lambda: printed.search(log.read_text()), timeout=90)
        url, shown_port = found[1], int(found[2])
        assert shown_port == port  # the port the page names (GRADIO_SERVER_PORT)
        env_run = {"TRACKIO_SERVER_URL": url}
        doctor = subprocess.run(
            [str(BIN / "trackio-integrations"), "doctor"],
            env={**os.environ, **env_run},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Write access: OK" in doctor.stdout and doctor.returncode == 0, doctor.stdout
        result = run_python(
            "from trackio_integrations import TrackioClient\n"
            "with TrackioClient('first-server') as run:\n"
            "    run.log({'train/loss': 0.5}, step=0)\n"
            "print(run.name)\n",
            env=env_run,
        )
        assert result.returncode == 0, result.stderr
        viewer = TrackioServer(tmp_path / "unused", port=port)
        assert viewer.wait_for_steps("first-server", result.stdout.strip(), "train/loss", 1) == [0]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


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


def bench_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", REPO / "bench" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_performance_results_are_the_saved_benchmark_run() -> None:
    report = bench_report()
    results = json.loads(report.RESULTS.read_text())
    environment = results["environment"]
    assert re.fullmatch(r"[0-9a-f]{7,40}", environment["commit"])  # which code was measured
    assert environment["cpu_model"] != "?" and environment["cpus"] >= 1  # on what
    assert results["problems"] == []  # a run that lost points is no result to show
    # every number the performance page shows is the one the saved run holds
    assert report.readme_section(PERFORMANCE.read_text()) == report.render(results)


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
            if language not in ("python", "bash", "py", "sh", "text", "nginx", "yaml"):
                problems.append(f"{where}: fence language {language!r}")
            if language == "nginx" and page != GATEWAY_PAGE:
                problems.append(f"{where}: an nginx block the gateway tests do not run")
            if language == "yaml" and page != CLI_PAGE:
                problems.append(f"{where}: a yaml block tests/test_lightning_cli.py does not run")
            before = [text.strip() for text in lines[:number] if text.strip()]
            if language in ("py", "sh") and not (before and before[-1].startswith("<!-- fragment")):
                problems.append(f"{where}: add a `<!-- fragment: why -->` line before it")
    assert not problems, problems


def test_the_media_costs_are_a_saved_benchmark_run() -> None:
    """docs/media.md's table is the output of `make bench-media` saved in bench/saved/, and the
    README's ranges span the saved runs."""
    saved = sorted((REPO / "bench" / "saved").glob("media-2core-*.txt"))
    assert len(saved) >= 1
    tables = [[line for line in f.read_text().splitlines() if line.startswith("|")] for f in saved]
    page = (REPO / "docs" / "media.md").read_text()
    assert any(table and all(row in page for row in table) for table in tables)
    ratios = [[float(row.rsplit("|", 2)[-2]) for row in table[2:]] for table in tables]
    spans = [
        f"{round(min(r[i] for r in ratios) * 100)}-{round(max(r[i] for r in ratios) * 100)}%"
        for i in range(3)
    ]
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"costs {spans[0]}, {spans[1]} and {spans[2]} of trackio's own" in readme, spans


NAMED_VERSION = re.compile(r"\b(transformers|accelerate|Lightning) \**(\d+\.\d+\.\d+)\**")


def test_the_versions_the_pages_name_are_the_ones_installed() -> None:
    """ "Tested with X 1.2.3" stays true: each version a page names is the installed one."""
    from importlib.metadata import version

    named = {
        (page.name, name, found)
        for page in PAGES
        for name, found in NAMED_VERSION.findall(page.read_text())
    }
    assert {name for _, name, _ in named} == {"transformers", "accelerate", "Lightning"}
    stale = [(p, n, v) for p, n, v in named if v != version(n.lower())]
    assert not stale, f"installed: { {n: version(n.lower()) for _, n, _ in named} }, named: {stale}"
