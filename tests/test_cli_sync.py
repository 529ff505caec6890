"""`sync` and `status` resolve the target as the client does; a token never reaches another server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import (
    REPO,
    TOKEN,
    DelayProxy,
    TrackioServer,
    assert_each_step_once,
    cli_process,
    free_port,
    orphan_spool,
    run_python,
    spool_point,
)

KILLED_JOB = textwrap.dedent(
    """
    import os, signal
    from trackio_integrations import TrackioClient
    run = TrackioClient(name="killed-job")  # target and project from the environment
    for step in range(12):
        run.log({"loss": 1 / (step + 1)}, step=step)
    os.kill(os.getpid(), signal.SIGKILL)  # the OOM killer, while the server is down
    """
)


@pytest.fixture
def late_server(tmp_path: Path) -> Iterator[TrackioServer]:
    """A real server that is down until the test starts it."""
    server = TrackioServer(tmp_path / "late", port=free_port())
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("where", "flags"),
    [("url", []), ("variable", []), ("flag", ["--write-token", TOKEN])],
)
def test_sync_in_the_jobs_environment_sends_what_a_killed_job_left(
    late_server: TrackioServer, project: str, where: str, flags: list[str]
) -> None:
    env = {
        **os.environ,
        "TRACKIO_PROJECT": project,
        "TRACKIO_SERVER_URL": late_server.write_url if where == "url" else late_server.url,
        "TRACKIO_WATCHER": "0",  # a whole job killed: its watcher too
    }
    if where == "variable":
        env["TRACKIO_WRITE_TOKEN"] = TOKEN
    job = subprocess.run(
        [sys.executable, "-c", KILLED_JOB], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert job.returncode == -9, job.stderr

    late_server.start()
    result = cli_process(["sync", *flags], env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Sent 12 of 12 point(s)" in result.stdout
    assert_each_step_once(late_server, project, "killed-job", "loss", 12)
    assert TOKEN not in result.stdout + result.stderr


@pytest.fixture
def server_a(tmp_path: Path) -> Iterator[tuple[TrackioServer, DelayProxy]]:
    """A real server with a token of its own, behind a proxy that records what is sent to it."""
    server = TrackioServer(tmp_path / "server-a", token="token-of-server-a")
    server.start()
    proxy = DelayProxy(server.port)
    yield server, proxy
    proxy.close()
    server.stop()


def test_a_spool_for_server_a_is_never_sent_with_server_bs_token(
    server_a: tuple[TrackioServer, DelayProxy],
    shared_server: TrackioServer,
    project: str,
    spool_dir: Path,
) -> None:
    a, to_a = server_a
    orphan_spool(spool_dir, to_a.url, project, [spool_point(project, s) for s in range(5)])
    in_b = {"TRACKIO_SERVER_URL": shared_server.write_url}  # this environment names server B

    status = cli_process(["status"], env=in_b)
    assert to_a.url in status.stdout and "no write token" in status.stdout

    result = cli_process(["sync", "--retries", "1"], env=in_b)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Left 5 point(s) for server {to_a.url}: no write token for it here" in result.stdout
    assert f"sync --server-url {to_a.url} --write-token" in result.stdout  # what to do
    assert TOKEN.encode() not in to_a.sent
    assert a.runs(project) == [] and shared_server.runs(project) == []

    # Doing what the message says delivers them, with A's token only.
    fixed = cli_process(
        ["sync", "--server-url", to_a.url, "--write-token", "token-of-server-a"], env=in_b
    )
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert_each_step_once(a, project, "r", "loss", 5)
    assert b"token-of-server-a" in to_a.sent and TOKEN.encode() not in to_a.sent
    assert shared_server.runs(project) == []


def test_a_token_that_names_no_server_goes_nowhere_when_two_servers_wait(
    server_a: tuple[TrackioServer, DelayProxy], project: str, spool_dir: Path
) -> None:
    a, first = server_a
    second = DelayProxy(a.port)  # another URL: another server, as far as a client can tell
    try:
        orphan_spool(spool_dir, first.url, project, [spool_point(project, 0)])
        orphan_spool(spool_dir, second.url, project, [spool_point(project, 1)], "orphan0002")
        status = cli_process(["status", "--write-token", "token-of-server-a"])
        assert status.stdout.count("no write token") == 2, status.stdout

        result = cli_process(["sync", "--retries", "1", "--write-token", "token-of-server-a"])
        assert result.returncode == 1, result.stdout + result.stderr
        assert "used only when the spools wait for one server" in result.stdout
        assert b"token-of-server-a" not in first.sent + second.sent
        assert a.runs(project) == []
    finally:
        second.close()


def test_status_says_which_token_sync_would_use(
    shared_server: TrackioServer, project: str, spool_dir: Path
) -> None:
    orphan_spool(spool_dir, shared_server.url + "/", project, [spool_point(project, 0)])
    named = cli_process(["status"], env={"TRACKIO_SERVER_URL": shared_server.write_url})
    assert "write token from TRACKIO_SERVER_URL" in named.stdout, named.stdout
    flag = cli_process(["status", "--server-url", shared_server.url, "--write-token", "x"])
    assert "write token from --write-token" in flag.stdout
    assert TOKEN not in named.stdout + flag.stdout


def test_sync_without_a_token_says_that_none_is_set_once_in_its_own_words(
    shared_server: TrackioServer, project: str
) -> None:
    """An offline run for a server (its points and its provenance upload), then `sync` with the
    server named and no token: one reason, ours, for the points and the upload alike."""
    offline = run_python(
        "from trackio_integrations import TrackioClient\n"
        f"with TrackioClient({project!r}) as run:\n"
        "    run.log({'loss': 1.0}, step=0)\n",
        env={
            "TRACKIO_MODE": "offline",
            "TRACKIO_SERVER_URL": shared_server.url,
            "TRACKIO_PROVENANCE": "1",
        },
    )
    assert offline.returncode == 0, offline.stderr
    result = cli_process(["sync", "--retries", "1"], env={"TRACKIO_SERVER_URL": shared_server.url})
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    # the provenance files (a diff where the checkout has changes, the package list)
    assert f"upload request(s) for server {shared_server.url}: no write token is set;" in out
    assert "goes only there" not in out  # there is no token to go anywhere
    assert "trackio.show()" not in out and "uploads stopped" not in out  # the server's own words
    assert shared_server.runs(project) == []


WRONG_URL_RUN = """
from trackio_integrations import TrackioClient
run = TrackioClient("wrong-url", config={"lr": 0.1})
run.log({"loss": 1.0}, step=0)
run.finish(timeout=1.0, artifact_timeout=1.0)
"""


def test_points_for_a_server_that_never_answers_are_told_once_and_can_be_discarded(
    spool_dir: Path,
) -> None:
    """One run against a wrong URL: its exit says what waits (the user's point apart from what
    the package adds) and how to send, list or delete it; later processes stay quiet; `status`
    lists it by target; `sync --discard` asks, then deletes."""
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    # provenance on, as by default: its config and its files come on top of the user's point
    first = run_python(WRONG_URL_RUN, env={"TRACKIO_SERVER_URL": url, "TRACKIO_PROVENANCE": "1"})
    assert first.returncode == 0, first.stderr
    told = re.compile(
        r"1 point you logged, and \d+ records? the package adds \(the run's config(, system samples)?\)"
    )
    assert len(told.findall(first.stderr)) == 1, first.stderr
    assert "upload request(s) (artifacts, files, the run's provenance when on)" in first.stderr
    assert f"sync --discard {url}` deletes them" in first.stderr and "status` lists" in first.stderr

    local = run_python(WRONG_URL_RUN, env={"TRACKIO_SERVER_URL": ""})  # a later, unrelated run
    assert local.returncode == 0, local.stderr
    assert url not in local.stderr  # said once, by the run that left them

    status = cli_process(["status"])
    assert re.search(f"For {re.escape(url)}: {told.pattern}", status.stdout), status.stdout

    kept = subprocess.run(
        [sys.executable, "-m", "trackio_integrations.cli", "sync", "--discard", url + "/"],
        input="n\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert kept.returncode == 1 and "Delete them? [y/N]" in kept.stdout, kept.stdout
    assert "Nothing deleted" in kept.stdout
    assert f"For {url}" in cli_process(["status"]).stdout

    gone = cli_process(["sync", "--discard", url, "--yes"])
    assert gone.returncode == 0 and f"Deleted what waited for {url}." in gone.stdout, gone.stdout
    assert "No points waiting." in cli_process(["status"]).stdout
    assert [p.name for p in spool_dir.iterdir() if (p / "meta.json").exists()] == []


LATE_CONFIG_RUN = """
from trackio_integrations import TrackioClient
run = TrackioClient("late-config", config={"lr": 0.1})
for step in range(3):
    run.log({"loss": 1.0 / (step + 1)}, step=step)
run.update_config({"best_loss": 0.33})  # after the last point: it rides a copy of that point
run.finish(timeout=1.0, artifact_timeout=1.0)
"""


def test_a_config_after_the_last_point_is_not_told_as_a_point_the_user_logged(
    spool_dir: Path,
) -> None:
    """Found following Getting started against a mistyped URL: 100 points and an
    ``update_config`` read "101 points you logged", in the exit message and in ``status``."""
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = run_python(LATE_CONFIG_RUN, env={"TRACKIO_SERVER_URL": url, "TRACKIO_PROVENANCE": "0"})
    assert done.returncode == 0, done.stderr
    told = r"3 points you logged, and \d records? the package adds \(the run's config(, system samples)?\)"
    assert len(re.findall(told, done.stderr)) == 1, done.stderr
    status = cli_process(["status"]).stdout
    assert re.search(f"For {re.escape(url)}: {told}", status), status


def test_points_a_dead_run_left_are_told_by_the_next_process_only(spool_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    orphan_spool(spool_dir, url, "gone", [spool_point("gone", s) for s in range(2)])
    said = [run_python(WRONG_URL_RUN, env={"TRACKIO_SERVER_URL": ""}) for _ in range(2)]
    assert all(done.returncode == 0 for done in said), said[0].stderr + said[1].stderr
    assert said[0].stderr.count(f"2 points you logged for {url} wait") == 1, said[0].stderr
    assert f"sync --discard {url}` deletes them" in said[0].stderr
    assert url not in said[1].stderr


def test_discard_of_a_target_spelled_otherwise_names_the_targets_that_wait(
    spool_dir: Path,
) -> None:
    """Found trying ``sync --discard 127.0.0.1:PORT`` (no scheme): "Nothing waits" alone read as
    if the points were gone; it now names what waits, as ``status`` shows it, and deletes none."""
    url = f"http://127.0.0.1:{free_port()}"
    orphan_spool(spool_dir, url, "typo", [spool_point("typo", s) for s in range(2)])
    said = cli_process(["sync", "--discard", url.removeprefix("http://"), "--yes"])
    assert said.returncode == 0, said.stdout + said.stderr
    assert f"What waits there is for: {url} (as `status` shows them)." in said.stdout, said.stdout
    assert f"For {url}: 2 points you logged" in cli_process(["status"]).stdout
