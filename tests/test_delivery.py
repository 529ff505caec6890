"""The delivery promise: a point whose log() returned reaches the server once, whatever happens."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest

from tests.harness import (
    REPO,
    TOKEN,
    CaptureServer,
    DelayProxy,
    TrackioServer,
    assert_each_step_once,
    cli_process,
    free_port,
    orphan_spool,
    own,
    run_python,
    spool_point,
    wait_until,
)
from trackio_integrations import TrackioClient


def test_a_server_killed_and_restarted_mid_run_loses_nothing(
    server: TrackioServer, project: str
) -> None:
    run = TrackioClient(project, server_url=server.write_url)
    for step in range(3000):
        if step == 1000:
            server.kill()  # SIGKILL: no goodbye, requests in flight are cut
        if step == 2000:
            server.start()
        run.log({"loss": 1 / (step + 1), "step_copy": step}, step=step)
        if step % 50 == 0:
            time.sleep(0.01)
    assert run.finish(timeout=90), f"{run.pending} points still pending"
    assert_each_step_once(server, project, run.name, "loss", 3000)


def test_a_server_that_comes_up_late_gets_everything_by_finish(
    tmp_path: Path, project: str
) -> None:
    late = TrackioServer(tmp_path / "late", port=free_port())
    with pytest.warns(UserWarning, match="not reachable"):
        run = TrackioClient(project, server_url=late.write_url)
    for step in range(500):
        run.log({"loss": float(step)}, step=step)
    time.sleep(1.0)  # the sender tries, fails and backs off
    late.start()
    try:
        assert run.finish(timeout=60)
        assert_each_step_once(late, project, run.name, "loss", 500)
    finally:
        late.stop()


def test_a_server_down_until_after_finish_gets_everything_by_sync(
    tmp_path: Path, project: str
) -> None:
    late = TrackioServer(tmp_path / "late", port=free_port())
    with pytest.warns(UserWarning):
        run = TrackioClient(project, server_url=late.url, write_token=TOKEN, system_metrics=False)
    for step in range(300):
        run.log({"loss": float(step)}, step=step)
    assert run.finish(timeout=1) is False
    assert run.pending == 300
    late.start()
    try:
        result = cli_process(["sync"], env={"TRACKIO_WRITE_TOKEN": TOKEN})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Sent 300 of 300" in result.stdout
        assert_each_step_once(late, project, run.name, "loss", 300)
    finally:
        late.stop()


TRAINING = textwrap.dedent(
    """
    import sys, time
    from trackio_integrations import TrackioClient
    run = TrackioClient("{project}", name="killed-run", {target})
    print("READY", flush=True)
    for step in range(100_000):
        run.log({{"loss": 1 / (step + 1)}}, step=step)
        print(step, flush=True)  # after log() returned: this point is acknowledged
        time.sleep(0.001)
    """
)


def _sigkill_mid_run(project: str, target: str, env: dict[str, str] | None = None) -> int:
    """Start a training process, SIGKILL it mid-run, return the last acknowledged step."""
    proc = subprocess.Popen(
        [sys.executable, "-c", TRAINING.format(project=project, target=target)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={
            **os.environ,
            "TRACKIO_WATCHER": "0",
            **(env or {}),
        },  # a whole job killed: its watcher too
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    last = -1
    for line in proc.stdout:
        last = int(line)
        if last >= 2500:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    for line in proc.stdout.read().split():  # printed before the kill landed
        last = int(line)
    return last


def test_a_sigkilled_training_process_loses_no_acknowledged_point(
    server: TrackioServer, project: str
) -> None:
    last = _sigkill_mid_run(project, f"server_url={server.write_url!r}")
    result = cli_process(["sync"], env={"TRACKIO_WRITE_TOKEN": TOKEN})
    assert result.returncode == 0, result.stdout + result.stderr
    steps = [v["step"] for v in server.values(project, "killed-run", "loss")]
    assert len(steps) == len(set(steps)), "a point was stored twice"
    assert set(range(last + 1)) <= set(steps), (
        f"lost {sorted(set(range(last + 1)) - set(steps))[:10]}"
    )


def test_the_embedded_default_survives_sigkill_and_trackio_show_displays_it(
    tmp_path: Path, project: str
) -> None:
    last = _sigkill_mid_run(project, "")
    result = cli_process(["sync"])
    assert result.returncode == 0, result.stdout + result.stderr
    viewer = TrackioServer(Path(os.environ["TRACKIO_DIR"]))
    viewer.start()
    try:
        acknowledged = set(range(last + 1))
        wait_until(lambda: acknowledged <= set(viewer.steps(project, "killed-run", "loss")), 30)
        steps = viewer.steps(project, "killed-run", "loss")
        assert len(steps) == len(set(steps))
    finally:
        viewer.stop()


def test_the_embedded_default_keeps_steps_timestamps_and_config(
    tmp_path: Path, project: str
) -> None:
    from datetime import datetime

    before = time.time()
    with TrackioClient(project, config={"lr": 0.01, "layers": [4, 4]}) as run:
        for step in range(100):
            run.log({"loss": 1 / (step + 1)}, step=step * 10)
            time.sleep(0.002)
    after = time.time()
    viewer = TrackioServer(Path(os.environ["TRACKIO_DIR"]))
    viewer.start()
    try:
        # the server imports the inbox in the background, right after it starts answering
        wait_until(lambda: len(viewer.values(project, run.name, "loss")) >= 100, 30)
        values = viewer.values(project, run.name, "loss")
        assert [v["step"] for v in values] == [s * 10 for s in range(100)]
        stamps = [datetime.fromisoformat(v["timestamp"]).timestamp() for v in values]
        assert all(before <= t <= after for t in stamps)  # the time of the log() call
        assert stamps == sorted(stamps) and stamps[-1] - stamps[0] > 0.15
        assert own(viewer.configs(project)[run.run_id]) == {
            "lr": 0.01,
            "layers": [4, 4],
            "_Group": None,
        }
    finally:
        viewer.stop()


def test_a_request_stuck_in_the_network_never_holds_up_log(
    server: TrackioServer, project: str
) -> None:
    # What log() costs is the benchmark's business; here, whether it ever waits on the network.
    proxy = DelayProxy(server.port)
    try:
        run = TrackioClient(
            project, server_url=f"{proxy.url}?write_token={TOKEN}", system_metrics=False
        )
        proxy.hold()  # from now on no request gets through until release()
        run.log({"loss": 0.0, "acc": 0.5}, step=0)
        wait_until(proxy.holding.is_set, 60)  # the sender's request is stuck in the network
        for step in range(1, 2000):
            run.log({"loss": float(step), "acc": 0.5}, step=step)
            if step % 100 == 0:
                time.sleep(0.05)  # a training step
        # Every log() returned while the request stayed stuck: none of them waited for it.
        assert server.values(project, run.name, "loss") == []
        assert run.pending == 2000
        proxy.release()
        assert run.finish(timeout=90), f"{run.pending} points still pending"
    finally:
        proxy.close()
    assert_each_step_once(server, project, run.name, "loss", 2000)


def test_a_rejected_token_stops_sending_loudly_once_and_sync_delivers_later(
    server: TrackioServer, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    run = TrackioClient(project, server_url=server.write_url, system_metrics=False)
    for step in range(100):
        run.log({"loss": float(step)}, step=step)
    assert run.flush(timeout=30)
    server.stop()
    server.start(token="rotated-token")  # the admin rotated the token mid-run
    caplog.set_level(logging.WARNING, logger="trackio_integrations")
    for step in range(100, 200):
        run.log({"loss": float(step)}, step=step)
        if step % 20 == 0:
            time.sleep(0.2)
    assert run.finish(timeout=10) is False
    assert run.pending == 100
    stops = [r for r in caplog.records if "sending stopped" in r.getMessage()]
    assert len(stops) == 1
    assert "TRACKIO_WRITE_TOKEN" in stops[0].getMessage()
    assert "rotated-token" not in caplog.text and TOKEN not in caplog.text
    result = cli_process(["sync", "--write-token", "rotated-token"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert_each_step_once(server, project, run.name, "loss", 200)


def test_a_poison_batch_delivers_the_good_points_and_dead_letters_the_bad(
    server: TrackioServer, project: str, spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = [spool_point(project, step) for step in range(40)]
    no_run = orjson.dumps({"project": project, "metrics": {"loss": 1}, "log_id": "bad-1"})
    lines = [*good[:15], no_run, *good[15:30], b"{not json", *good[30:]]
    orphan_spool(spool_dir, server.url, project, lines)
    caplog.set_level(logging.WARNING, logger="trackio_integrations")
    # The next client for the same server replays the orphan by itself.
    with TrackioClient("other-project", server_url=server.write_url) as run:
        run.log({"x": 1}, step=0)
    wait_until(lambda: len(server.values(project, "r", "loss")) >= 40, 30)
    assert sorted(v["step"] for v in server.values(project, "r", "loss")) == list(range(40))
    dead = list((spool_dir / "dead-letter").glob("*.jsonl"))
    assert len(dead) == 1
    rejected = [orjson.loads(line) for line in dead[0].read_bytes().splitlines()]
    assert [r["entry"] for r in rejected] == [orjson.loads(no_run), "{not json"]
    assert all(r["reason"] for r in rejected)
    assert str(dead[0]) in caplog.text
    status = cli_process(["status"])
    assert "Dead-lettered: 2 point(s)" in status.stdout


def test_pending_points_of_another_project_are_replayed_by_the_next_client(
    tmp_path: Path, server: TrackioServer
) -> None:
    down = f"http://127.0.0.1:{server.port}"
    server.stop()
    with pytest.warns(UserWarning):
        first = TrackioClient("project-a", server_url=down, write_token=TOKEN)
    for step in range(50):
        first.log({"loss": float(step)}, step=step)
    assert first.finish(timeout=0.5) is False
    server.start()
    with TrackioClient("project-b", server_url=down, write_token=TOKEN) as second:
        second.log({"loss": 0.0}, step=0)
        assert second.flush(timeout=30)
    wait_until(lambda: len(server.values("project-a", first.name, "loss")) == 50, 30)


def test_a_forked_child_sends_its_own_points_and_never_its_parents(
    shared_server: TrackioServer, project: str
) -> None:
    code = f"""
import os
from trackio_integrations import TrackioClient
run = TrackioClient({project!r}, name="forking", server_url={shared_server.write_url!r})
for step in range(20):
    run.log({{"parent": float(step)}}, step=step)
pid = os.fork()
if pid == 0:  # a DataLoader worker, say
    for step in range(10):
        run.log({{"child": float(step)}}, step=100 + step)
    ok = run.finish(timeout=30)
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0
for step in range(20, 30):
    run.log({{"parent": float(step)}}, step=step)
assert run.finish(timeout=30)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert_each_step_once(shared_server, project, "forking", "parent", 30)
    assert shared_server.steps(project, "forking", "child") == list(range(100, 110))
    assert len(shared_server.logs(project, "forking")) == 40  # nothing sent twice


def test_a_step_logged_again_after_a_resume_is_stored_once(
    shared_server: TrackioServer, project: str
) -> None:
    with TrackioClient(
        project,
        name="resumed",
        run_id="rid-resume",
        server_url=shared_server.write_url,
        step_ids=True,
    ) as first:
        for step in range(10):
            first.log({"loss": float(step)}, step=step)
            first.log({"eval/acc": 0.5}, step=step)  # other names at the same step: kept
    with TrackioClient(
        project,
        name="resumed",
        run_id="rid-resume",
        server_url=shared_server.write_url,
        step_ids=True,
    ) as second:  # resumed from the checkpoint at step 5
        for step in range(5, 15):
            second.log({"loss": float(step)}, step=step)
    assert_each_step_once(shared_server, project, "resumed", "loss", 15)
    assert shared_server.steps(project, "resumed", "eval/acc") == list(range(10))


def test_a_poison_point_first_in_line_is_found_by_sync_too(
    server: TrackioServer, project: str, spool_dir: Path
) -> None:
    # Nothing was delivered before it, so nothing yet proves the server healthy.
    no_run = orjson.dumps({"project": project, "metrics": {"loss": 1}, "log_id": "bad-first"})
    orphan_spool(
        spool_dir, server.url, project, [no_run, *(spool_point(project, s) for s in range(9))]
    )
    result = cli_process(["sync"], env={"TRACKIO_WRITE_TOKEN": TOKEN})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 point(s) were refused" in result.stdout
    assert sorted(v["step"] for v in server.values(project, "r", "loss")) == list(range(9))


def test_a_server_failing_every_write_loses_nothing_to_the_dead_letters(
    capture: CaptureServer, project: str, spool_dir: Path
) -> None:
    sick = {"on": False}

    def respond(path: str, body: bytes) -> tuple[int, object]:
        if path == "/version":
            return 200, {"version": "0.43.0", "api_version": 1}
        if sick["on"] and b'"logs":[]' not in body:
            return 500, {"error": "database disk image is malformed"}
        return 200, {"data": None}

    capture.respond = respond
    run = TrackioClient(project, server_url=capture.url, write_token="t", system_metrics=False)
    run.log({"loss": 0.0}, step=0)
    assert run.flush(timeout=10)  # the server has stored a point: it can be asked again
    sick["on"] = True
    for step in range(1, 200):
        run.log({"loss": float(step)}, step=step)
    assert run.flush(timeout=3) is False
    assert not (spool_dir / "dead-letter").exists()
    assert run.pending == 199
    sick["on"] = False
    assert run.finish(timeout=60)  # every point acknowledged by a 200 ...
    assert not (spool_dir / "dead-letter").exists()  # ... none set aside
    assert {entry["step"] for entry in capture.bulk_logs()} == set(range(200))
