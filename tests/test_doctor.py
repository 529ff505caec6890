"""`trackio-integrations doctor`: says where logging would go, whether it works, and what to fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.harness import REPO, TOKEN, TrackioServer, free_port, orphan_spool, spool_point
from trackio_integrations.cli import commands as cli


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackio_integrations.cli", "doctor", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_doctor_passes_against_a_working_server(shared_server: TrackioServer) -> None:
    result = doctor(TRACKIO_SERVER_URL=shared_server.write_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Target:       server {shared_server.url}\n" in result.stdout  # said once
    assert "trackio 0.43.0, API version 1" in result.stdout
    assert "Write access: OK" in result.stdout
    assert "set (from the URL)" in result.stdout
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("flags", "env", "source"),
    [
        ([], {"TRACKIO_WRITE_TOKEN": TOKEN}, "TRACKIO_WRITE_TOKEN"),
        (["--write-token", TOKEN], {}, "--write-token"),
        (["--server-url", "URL"], {"TRACKIO_WRITE_TOKEN": TOKEN}, "TRACKIO_WRITE_TOKEN"),
    ],
)
def test_doctor_takes_the_token_from_where_the_client_would(
    shared_server: TrackioServer, flags: list[str], env: dict[str, str], source: str
) -> None:
    flags = [shared_server.url if flag == "URL" else flag for flag in flags]
    if "--server-url" not in flags:
        env = {**env, "TRACKIO_SERVER_URL": shared_server.url}
    result = doctor(*flags, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Write token:  set (from {source})" in result.stdout
    assert "Write access: OK" in result.stdout


def test_doctor_counts_the_points_waiting_for_its_target(
    shared_server: TrackioServer, project: str, spool_dir: Path
) -> None:
    orphan_spool(spool_dir, shared_server.url, project, [spool_point(project, 0)])
    orphan_spool(spool_dir, "http://127.0.0.1:9", project, [spool_point(project, 1)], "other")
    result = doctor(TRACKIO_SERVER_URL=shared_server.write_url)
    assert "2 pending, 1 for this target" in result.stdout, result.stdout


def test_doctor_explains_a_wrong_token_without_printing_it(shared_server: TrackioServer) -> None:
    result = doctor("--server-url", shared_server.url, "--write-token", "WRONG-TOKEN")
    assert result.returncode == 1
    assert "rejected the write token" in result.stdout and "TRACKIO_WRITE_TOKEN" in result.stdout
    assert "WRONG-TOKEN" not in result.stdout + result.stderr
    assert "***" not in result.stdout  # the hint's placeholder does not look like a masked token


def test_doctor_without_a_token_does_not_say_a_token_was_rejected(
    shared_server: TrackioServer,
) -> None:
    """Found running doctor as Getting started shows it, TRACKIO_WRITE_TOKEN not yet exported:
    "rejected the write token" sent a newcomer looking for a wrong token when none was set."""
    result = doctor(TRACKIO_SERVER_URL=shared_server.url, TRACKIO_WRITE_TOKEN="")
    assert result.returncode == 1
    assert "refused to write without a write token (none was given)" in result.stdout
    assert "rejected the write token" not in result.stdout, result.stdout
    assert "Set TRACKIO_WRITE_TOKEN" in result.stdout


def test_doctor_reports_an_unreachable_server() -> None:
    result = doctor("--server-url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "not reachable" in result.stdout and "Fix:" in result.stdout


def test_doctor_on_the_embedded_default_says_how_to_look() -> None:
    result = doctor()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Target:       local storage in" in result.stdout
    assert f"TRACKIO_DIR={os.environ['TRACKIO_DIR']} trackio show" in result.stdout


def test_doctor_follows_the_space_rule(
    shared_server: TrackioServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A Space cannot exist here: a mock answers in its place (no traffic leaves the machine).
    seen: list[httpx.Request] = []

    def space(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/version":
            return httpx.Response(200, json={"version": "0.43.0", "api_version": 1})
        return httpx.Response(500, json={"error": "Expected a HF_TOKEN to be provided"})

    real = cli.Transport
    monkeypatch.setattr(
        cli, "Transport", lambda target, **kw: real(target, transport=httpx.MockTransport(space))
    )
    monkeypatch.setenv("TRACKIO_SERVER_URL", shared_server.write_url)
    monkeypatch.setenv("TRACKIO_SPACE_ID", "alice/demo")
    with pytest.warns(UserWarning, match="the Space wins"):
        code = cli.main(["doctor"])
    out = capsys.readouterr().out
    assert code == 1
    assert "Target:       Space alice/demo (https://alice-demo.hf.space)" in out
    assert "HF token:     missing" in out and "HF_TOKEN" in out
    assert {r.url.host for r in seen} == {"alice-demo.hf.space"}
    assert TOKEN not in out


def test_doctor_rejects_a_malformed_url_clearly() -> None:
    result = doctor("--server-url", "trackio.internal:7860?write_token=SECRET")
    assert result.returncode == 2
    assert "Invalid Trackio server URL" in result.stderr and "SECRET" not in result.stderr


def test_an_unwritable_spool_is_one_fix_and_a_verdict_that_agrees_with_the_exit_code(
    tmp_path: Path,
) -> None:
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    result = doctor(TRACKIO_SPOOL_DIR=str(not_a_folder))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.count("Fix:") == 1 and "TRACKIO_SPOOL_DIR" in result.stdout
    assert result.stdout.rstrip().endswith("Logging would NOT work; see above.")
