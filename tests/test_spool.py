"""The spool on this machine: its limits, what it keeps, and the commands that read it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.harness import (
    TOKEN,
    TrackioServer,
    assert_each_step_once,
    cli_process,
    free_port,
    orphan_spool,
    run_python,
    spool_point,
    watcher_ended,
)
from trackio_integrations import TrackioClient
from trackio_integrations.cli import main as cli
from trackio_integrations.core.dead_letter import dead_letter
from trackio_integrations.core.spool import Spool


def test_a_full_disk_warns_and_keeps_delivering_from_memory(
    shared_server: TrackioServer, project: str
) -> None:
    code = f"""
import resource, signal
from trackio_integrations import TrackioClient
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a full disk: write() fails with an error
resource.setrlimit(resource.RLIMIT_FSIZE, (32 * 1024, 32 * 1024))
run = TrackioClient({project!r}, name="full-disk", server_url={shared_server.write_url!r})
for step in range(2000):
    run.log({{"loss": float(step), "pad": "x" * 50}}, step=step)
assert run.finish(timeout=60), run.pending
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "cannot write the spool" in result.stderr
    assert_each_step_once(shared_server, project, "full-disk", "loss", 2000)


def test_an_unwritable_spool_folder_warns_and_still_delivers(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(UserWarning, match="Cannot write the trackio-integrations spool"):
        run = TrackioClient(
            project, server_url=shared_server.write_url, spool_dir=blocker / "spool"
        )
    for step in range(100):
        run.log({"loss": float(step)}, step=step)
    assert run.finish(timeout=30)
    assert_each_step_once(shared_server, project, run.name, "loss", 100)


def test_process_exit_never_hangs_on_an_unreachable_server(project: str) -> None:
    code = f"""
import warnings
warnings.simplefilter("ignore")
from trackio_integrations import TrackioClient
run = TrackioClient(
    {project!r}, server_url="http://127.0.0.1:{free_port()}", write_token="t", system_metrics=False
)
for step in range(100):
    run.log({{"loss": 1.0}}, step=step)
"""  # no finish(): the atexit flush has a bound (5 s); without one, this would never exit
    result = run_python(code, timeout=90)  # a hang raises TimeoutExpired
    assert result.returncode == 0, result.stderr
    assert "100 points you logged not yet delivered" in result.stderr
    assert "trackio-integrations sync" in result.stderr


def test_flush_reports_what_is_pending_within_its_timeout(project: str) -> None:
    with pytest.warns(UserWarning):
        # no system samples: the count below is of these points alone, and a sample falls due
        # about when the flush's second ends
        run = TrackioClient(
            project, server_url=f"http://127.0.0.1:{free_port()}", system_metrics=False
        )
    for step in range(10):
        run.log({"a": 1}, step=step)
    started = time.monotonic()
    assert run.flush(timeout=1.0) is False
    waited = time.monotonic() - started
    # It waited its timeout, and returned: a flush ignoring its timeout would wait forever. The
    # upper margin is wide for a loaded machine; latency bounds belong in the benchmark.
    assert 1.0 <= waited < 30, waited
    assert run.pending == 10
    run.finish(timeout=0.1)


@pytest.mark.timeout(420)
def test_a_long_outage_does_not_grow_memory(project: str) -> None:
    # 600,000 points: a 10-minute outage at 1,000 points/s, logged as fast as possible.
    code = f"""
import warnings
warnings.simplefilter("ignore")
from trackio_integrations import TrackioClient

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

run = TrackioClient(
    {project!r}, server_url="http://127.0.0.1:{free_port()}", write_token="t", system_metrics=False
)
point = {{f"metric_{{i}}": i * 0.5 for i in range(10)}}
run.log(point, step=0)
before = rss_mb()
for step in range(1, 600_001):
    run.log(point, step=step)
print(round(rss_mb() - before, 1), run.pending)
run.finish(timeout=0.1)
"""
    result = run_python(code, timeout=300)
    assert result.returncode == 0, result.stderr
    growth, pending = result.stdout.split()
    assert int(pending) == 600_001
    assert float(growth) < 40, f"RSS grew {growth} MB"


def test_status_lists_pending_points_per_target_project_and_run(
    project: str, spool_dir: Path
) -> None:
    lines = [spool_point(project, step) for step in range(7)]
    orphan_spool(spool_dir, "http://127.0.0.1:9", project, lines)
    assert cli(["status"]) == 0
    result = cli_process(["status"])
    assert "http://127.0.0.1:9" in result.stdout and project in result.stdout
    assert "7 point(s) waiting" in result.stdout


def test_sync_exits_non_zero_when_points_are_left(project: str, spool_dir: Path) -> None:
    orphan_spool(spool_dir, f"http://127.0.0.1:{free_port()}", project, [spool_point(project, 0)])
    result = cli_process(["sync", "--retries", "1"])
    assert result.returncode == 1
    assert "Left 1 point(s)" in result.stdout
    assert (spool_dir / "orphan0001").is_dir()  # kept for the next try


def test_no_token_is_ever_written_to_disk(project: str, spool_dir: Path) -> None:
    secret = "WRITE-SECRET-31337"
    with pytest.warns(UserWarning):
        run = TrackioClient(
            project,
            server_url=f"http://127.0.0.1:{free_port()}/?write_token={secret}",
            hf_token="hf_SECRET_31337",
            config={"note": "points wait on disk while the server is down"},
        )
    for step in range(100):
        run.log({"loss": float(step)}, step=step)
    run.finish(timeout=0.5)
    watcher_ended(run)  # its files too, and none vanishing under the reads below
    files = [p for p in spool_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".jsonl" for p in files)  # the points are there...
    for path in files:  # ...and no token is
        data = path.read_bytes()
        assert secret.encode() not in data and b"hf_SECRET_31337" not in data


def test_a_spool_at_its_size_limit_keeps_points_in_memory_and_delivers_them(
    server: TrackioServer, project: str, spool_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKIO_SPOOL_MAX_MB", "1")  # a segment is 8 MB: the first one is the limit
    down = server.url
    server.stop()
    with pytest.warns(UserWarning):
        # no system samples: the count below is of these points alone
        run = TrackioClient(project, server_url=down, write_token=TOKEN, system_metrics=False)
    for step in range(40_000):
        run.log({"loss": float(step), "pad": "x" * 200}, step=step)
    on_disk = sum(p.stat().st_size for p in spool_dir.rglob("*.jsonl"))
    assert on_disk < 9 * 2**20  # stopped growing at the first full segment
    assert run.pending == 40_000
    server.start()
    assert run.finish(timeout=120), run.pending
    assert_each_step_once(server, project, run.name, "loss", 40_000)


def test_spool_files_are_private_to_the_user(project: str, spool_dir: Path) -> None:
    with pytest.warns(UserWarning):
        run = TrackioClient(project, server_url=f"http://127.0.0.1:{free_port()}", write_token="t")
    run.log({"loss": 1.0}, step=0)
    run.finish(timeout=0.1)
    watcher_ended(run)  # its files too, and none vanishing under the reads below
    orphan_spool(spool_dir, "http://127.0.0.1:9", project, [b"{not json"])
    dead_letter(spool_dir, Spool.in_memory({"writer": "w"}), [b"{}"], "test")
    folders = [p for p in spool_dir.rglob("*") if p.is_dir()]
    files = [p for p in spool_dir.rglob("*") if p.is_file()]
    assert files and any(p.name == "meta.json" for p in files)
    assert all(p.stat().st_mode & 0o077 == 0 for p in files), [oct(p.stat().st_mode) for p in files]
    assert all(p.stat().st_mode & 0o077 == 0 for p in folders if p.parent == spool_dir)


def test_a_delivered_spool_is_deleted_without_waiting_on_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fdatasync makes undelivered points survive a power loss; a delivered folder about to be
    deleted needs none (a busy disk makes each one take milliseconds at ``finish()``)."""
    import os

    synced: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: synced.append(fd) or real(fd))
    delivered = Spool.create(tmp_path, "delivered", {})
    delivered.append(spool_point("run", 0) + b"\n")
    batch = delivered.next_batch(10)
    assert batch is not None
    delivered.ack(batch)
    delivered.close()
    assert synced == [] and not (tmp_path / "delivered").exists()

    kept = Spool.create(tmp_path, "kept", {})
    kept.append(spool_point("run", 0) + b"\n")
    kept.close()
    assert synced and (tmp_path / "kept").is_dir()  # its point waits for the next client


def test_every_spool_folder_is_private_also_those_made_on_the_way(
    project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # mkdir(parents=True, mode=0o700) gives the mode to the last folder alone: the spool's root
    # and the folders that provenance and an artifact's files add were 0755.
    root = tmp_path / "new" / "spool"
    monkeypatch.setenv("TRACKIO_SPOOL_DIR", str(root))
    monkeypatch.setenv("TRACKIO_PROVENANCE", "1")
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    with pytest.warns(UserWarning):
        run = TrackioClient(project, server_url=f"http://127.0.0.1:{free_port()}", write_token="t")
    run.log({"loss": 1.0}, step=0)
    run.log_artifact(str(model), name="model")
    run.finish(timeout=0.5)
    folders = [root, root.parent, *(p for p in root.rglob("*") if p.is_dir())]
    assert len(folders) > 3, folders
    loose = {str(p): oct(p.stat().st_mode) for p in folders if p.stat().st_mode & 0o077}
    assert not loose
