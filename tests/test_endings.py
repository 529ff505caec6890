"""Every way a run ends shows on the dashboard, with nobody at the keyboard.

A process killed mid-run (SIGKILL, ``os._exit``, a segfault, the OOM killer) has its acknowledged
points, media, system samples and alerts delivered by its watcher within seconds, exactly once,
and one alert saying how it ended; a clean end (``finish()``, ``sys.exit``, a caught exception)
raises no alarm; no watcher outlives what it watches.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from transformers import Trainer, TrainerCallback, TrainingArguments

from examples.transformers_trainer import TokenData, tiny_model
from tests.harness import REPO, CaptureServer, TrackioServer, cli_process, free_port, wait_until
from trackio_integrations import TrackioCallback
from trackio_integrations.monitoring.health import HealthChecks

ENDED = "Run ended without finish()"

# A process killed before its watcher has started leaves its spool to `sync` (docs/guarantees.md):
# a training script says READY (or forks) only once its runs' watchers have taken their handoff,
# which each says in its spool folder's watcher.json; else a death a few steps in would race it.
AWAIT_WATCHERS = textwrap.dedent(
    """
    import glob, json, os, time

    def await_watchers(count):
        deadline = time.monotonic() + 60
        pattern = os.path.join(os.environ["TRACKIO_SPOOL_DIR"], "*", "watcher.json")
        while time.monotonic() < deadline:
            found = 0
            for path in glob.glob(pattern):
                try:
                    with open(path) as state:
                        found += json.load(state).get("watches") == os.getpid()
                except (OSError, ValueError):
                    pass
            if found >= count:
                return
            time.sleep(0.01)
        raise SystemExit("the run's watcher did not start within 60 s")
    """
)

TRAINING = AWAIT_WATCHERS + textwrap.dedent(
    """
    import ctypes, os, sys, tempfile, time
    import numpy as np
    from trackio_integrations import Image, TrackioClient

    how, at = sys.argv[1], int(sys.argv[2])
    run = TrackioClient(sys.argv[3], name=sys.argv[4], config={"lr": 0.1})
    await_watchers(1)
    print("READY", flush=True)
    for step in range(100_000):
        if step == at:
            if how == "os_exit":
                os._exit(3)
            if how == "segfault":
                ctypes.string_at(0)
            if how == "oom":  # until the cgroup's limit: the OOM killer ends it
                hog = []
                while True:
                    hog.append(bytearray(16 << 20))
                    time.sleep(0.005)
            if how == "finish":
                run.finish()
                break
            if how == "sys_exit":
                sys.exit(3)
            if how == "caught":
                try:
                    raise ValueError("handled by the script")
                except ValueError:
                    break
        metrics = {"loss": 1 / (step + 1)}
        if step == 3:
            metrics["sample"] = Image(np.zeros((4, 4, 3), dtype=np.uint8))
        run.log(metrics, step=step)
        if step == 2:
            run.log_system({"cpu": 12.5})
        if step == 4:  # a queued upload: the watcher sends it too
            weights = os.path.join(tempfile.mkdtemp(), "weights.bin")
            with open(weights, "wb") as f:
                f.write(os.urandom(4096))
            run.log_artifact(weights, name="weights")
        if step == 5:
            run.alert("warm-up done", level="info")
        print(step, flush=True)  # after log() returned: this point is acknowledged
        time.sleep(0.0005)
    """
)


def watchers(spool_dir: Path) -> list[int]:
    """The watcher processes of runs spooled under ``spool_dir`` (a test's own folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"trackio_integrations.cli.watcher" in cmdline and str(spool_dir).encode() in cmdline:
            found.append(int(entry.name) if state != "Z" else -int(entry.name))
    return found


def watcher_states(spool_dir: Path) -> str:
    """What the watchers of runs spooled under ``spool_dir`` last wrote for ``status``."""
    states = []
    for path in spool_dir.glob("*/watcher.json"):
        with contextlib.suppress(OSError):
            states.append(path.read_text())
    return "\n".join(states)


def start(
    server: TrackioServer,
    project: str,
    run: str,
    how: str,
    at: int,
    cgroup: Path | None = None,
    wait: float = 30,
    **env: str,
) -> subprocess.Popen[str]:
    """TRAINING, ready to be read with ``last_printed``."""
    command = [sys.executable, "-c", TRAINING, how, str(at), project, run]
    if cgroup is not None:  # enter the cgroup first: the watcher it starts is in it too
        command = ["sh", "-c", f'echo $$ > {cgroup / "cgroup.procs"} && exec "$@"', "sh", *command]
    return launch(command, server.job_env(TRACKIO_WATCHER_WAIT=str(wait), **env))


def launch(command: list[str], env: dict[str, str], stdin: bool = False) -> subprocess.Popen[str]:
    """One of the scripts above, once it said READY (its watchers hold their hand-off)."""
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"
    return proc


def last_printed(proc: subprocess.Popen[str], kill_at: int | None = None) -> int:
    """Read the steps the process acknowledged; SIGKILL it after ``kill_at``; the last one."""
    assert proc.stdout is not None
    last = -1
    for line in proc.stdout:
        if not line.strip().isdigit():
            continue  # an alert's console line
        last = int(line)
        if kill_at is not None and last >= kill_at:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(30)
    for line in proc.stdout.read().splitlines():  # printed before the end landed
        if line.strip().isdigit():
            last = int(line)
    return last


def each_acknowledged_once(steps: list[int], last: int) -> bool:
    """Steps 0 to ``last`` (the last one printed), each once; the step a kill caught between its
    log() and its print may be there too (written to the spool, so delivered): about 1 in 100
    kills at a random moment."""
    return steps in (list(range(last + 1)), list(range(last + 2)))


def alerts(server: TrackioServer, project: str, run: str) -> list[dict[str, object]]:
    return list(server.api("get_alerts", project, run) or [])


def assert_delivered_and_marked(
    server: TrackioServer,
    project: str,
    run: str,
    last: int,
    died: float,
    why: str,
    warmed: bool = True,
) -> float:
    """Every acknowledged point once, the media, sample and alerts, and the ending, in 15 s."""

    def complete() -> bool:
        ended = [a for a in alerts(server, project, run) if a["title"] == ENDED]
        return bool(ended) and len(server.values(project, run, "loss")) >= last + 1

    wait_until(complete, 15.0 - (time.monotonic() - died), 0.1)
    seconds = time.monotonic() - died
    steps = server.steps(project, run, "loss")
    assert each_acknowledged_once(steps, last), "a point is missing or was stored twice"
    found = alerts(server, project, run)
    ended = [a for a in found if a["title"] == ENDED]
    assert len(ended) == 1, found
    assert ended[0]["level"] == "error"
    assert why in str(ended[0]["text"]) and f"at step {steps[-1]}" in str(ended[0]["text"])
    assert any(a["title"] == "warm-up done" for a in found) or last < 5 or not warmed
    return seconds


def test_a_run_killed_at_random_moments_is_delivered_whole_and_marked_within_15_s(
    shared_server: TrackioServer, project: str, spool_dir: Path
) -> None:
    # CI kills at the same moments every time; a developer's machine tries new ones each run.
    rng = random.Random(0 if os.environ.get("CI") else None)
    moments = sorted(rng.sample(range(6, 3000), 3))
    procs = [start(shared_server, project, f"killed-{m}", "sigkill", 10**6) for m in moments]
    ends = []
    for moment, proc in zip(moments, procs, strict=True):
        ends.append((last_printed(proc, kill_at=moment), time.monotonic()))
    for moment, (last, died) in zip(moments, ends, strict=True):
        run = f"killed-{moment}"
        assert_delivered_and_marked(shared_server, project, run, last, died, "killed or crashed")
        assert shared_server.values(project, run, "sample"), "the image was not delivered"
        config = shared_server.configs(project)
        assert {"lr": 0.1, "status": "crashed"}.items() <= next(
            c for c in config.values() if c.get("status")
        ).items()
    wait_until(lambda: not watchers(spool_dir), 10.0)
    assert not list(spool_dir.glob("*/meta.json")), "the spool was not emptied"


@pytest.mark.parametrize("how", ["os_exit", "segfault"])
def test_a_process_that_exits_hard_or_segfaults_has_its_run_delivered_and_marked(
    shared_server: TrackioServer, project: str, spool_dir: Path, how: str
) -> None:
    proc = start(shared_server, project, how, how, 400)
    last = last_printed(proc)
    died = time.monotonic()
    assert proc.returncode != 0
    assert last == 399
    assert_delivered_and_marked(shared_server, project, how, last, died, "killed or crashed")
    wait_until(lambda: not watchers(spool_dir), 10.0)


@pytest.mark.parametrize("how", ["finish", "sys_exit", "caught"])
def test_a_clean_end_raises_no_alarm_and_leaves_no_process(
    shared_server: TrackioServer, project: str, spool_dir: Path, how: str
) -> None:
    proc = start(shared_server, project, how, how, 50)
    last_printed(proc)
    wait_until(lambda: len(shared_server.values(project, how, "loss")) == 50, 15.0)
    wait_until(lambda: not watchers(spool_dir), 5.0)  # told at finish(), it ends by itself
    time.sleep(1.0)  # a watcher that wrongly thought the run died would have spoken by now
    assert [a["title"] for a in alerts(shared_server, project, how)] == ["warm-up done"]


NO_THREADS_AT_EXIT = textwrap.dedent(
    """
    import atexit, sys, threading
    from trackio_integrations import TrackioClient

    run = TrackioClient(sys.argv[1], name=sys.argv[2], provenance=False, system_metrics=False)
    for step in range(20):
        run.log({"loss": 1 / (step + 1)}, step=step)

    def no_threads(self):  # Python 3.12.0 and 3.12.1 during their atexit hooks
        raise RuntimeError("can't create new thread at interpreter shutdown")

    # Registered after the client: runs before its exit hook, as that Python behaves there.
    atexit.register(setattr, threading.Thread, "start", no_threads)
    """
)


IDLE = AWAIT_WATCHERS + textwrap.dedent(
    """
    import sys
    from trackio_integrations import TrackioClient

    run = TrackioClient(sys.argv[1], name="idle")
    run.log({"loss": 1.0}, step=0)
    assert run.flush(30)
    await_watchers(1)  # what `status` shows of it is written by then
    print("READY", flush=True)
    sys.stdin.read()  # alive, with nothing left to send, until the test closes stdin
    run.finish()
    """
)


def test_the_exit_hook_finishes_the_run_where_python_starts_no_thread_at_exit(
    shared_server: TrackioServer, project: str, spool_dir: Path
) -> None:
    # The exit hook's finish() told the watcher to end, then raised starting the thread that
    # reaps it: the spool stayed behind (for the next run, with a traceback on stderr).
    done = subprocess.run(
        [sys.executable, "-c", NO_THREADS_AT_EXIT, project, "at-exit"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=shared_server.job_env(),
        timeout=60,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert shared_server.wait_for_steps(project, "at-exit", "loss", 20, 15.0) == list(range(20))
    assert not list(spool_dir.glob("*/meta.json")), "the run's spool was not closed"
    wait_until(lambda: not watchers(spool_dir), 5.0)
    time.sleep(1.0)  # a watcher that wrongly thought the run died would have spoken by now
    assert alerts(shared_server, project, "at-exit") == []


def test_status_shows_the_watcher_of_a_live_run_that_has_nothing_waiting(
    shared_server: TrackioServer, project: str, spool_dir: Path
) -> None:
    proc = launch([sys.executable, "-c", IDLE, project], shared_server.job_env(), stdin=True)
    assert proc.stdin is not None
    try:
        (watcher,) = wait_until(lambda: watchers(spool_dir), 10.0)
        status = cli_process(["status"])  # said "No points waiting." and nothing of the run
        assert f"{project} idle: live (pid {proc.pid} on" in status.stdout, status.stdout
        assert f"watcher pid {watcher})" in status.stdout, status.stdout
    finally:
        proc.stdin.close()
        proc.wait(30)
    wait_until(lambda: not watchers(spool_dir), 10.0)


def test_a_run_killed_while_the_server_is_down_is_delivered_when_it_returns(
    server: TrackioServer, project: str, spool_dir: Path
) -> None:
    proc = start(server, project, "outage", "sigkill", 10**6, wait=120)
    server.kill()
    (watcher,) = watchers(spool_dir)
    live = cli_process(["status"])  # points wait: the run's row says who watches it
    assert f"watcher pid {watcher})" in live.stdout, live.stdout
    last = last_printed(proc, kill_at=300)
    wait_until(lambda: "delivering" in watcher_states(spool_dir), 30.0)  # it saw the death
    time.sleep(2.0)  # the watcher finds no server and keeps trying
    assert len(watchers(spool_dir)) == 1
    status = cli_process(["status"])
    assert "delivering (the writer was killed or crashed)" in status.stdout, status.stdout
    server.start()
    died = time.monotonic()
    assert_delivered_and_marked(server, project, "outage", last, died, "killed or crashed")
    assert server.values(project, "outage", "sample"), "the image was not delivered"
    # the checkpoint logged while the server was down was a queued upload when the process died
    wait_until(lambda: server.api("get_artifacts", project), 15.0 - (time.monotonic() - died))
    assert [a["name"] for a in server.api("get_artifacts", project)] == ["weights"]
    wait_until(lambda: not watchers(spool_dir), 10.0)


def test_a_watcher_gives_up_after_its_wait_and_leaves_the_spool_to_sync(
    tmp_path: Path, project: str, spool_dir: Path
) -> None:
    nowhere = TrackioServer(tmp_path / "never-started", port=free_port())
    last_printed(start(nowhere, project, "stranded", "os_exit", 20, wait=1))
    wait_until(lambda: not watchers(spool_dir), 15.0)
    status = cli_process(["status"])
    assert "the watcher gave up after 1 s" in status.stdout, status.stdout
    assert "stranded" in status.stdout


def memory_cgroup(limit: int) -> Path:
    """A new memory cgroup of ``limit`` bytes (v2, else v1's memory hierarchy); skips where this
    process may not make one (not root, no memory controller, a read-only cgroup tree)."""
    import uuid

    name = f"trackio-test-oom-{uuid.uuid4().hex[:8]}"
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        if Path("/sys/fs/cgroup/cgroup.controllers").exists():  # cgroup v2
            if "memory" not in Path("/sys/fs/cgroup/cgroup.controllers").read_text().split():
                pytest.skip("cgroup v2 has no memory controller here")
            root = Path("/sys/fs/cgroup")
            if "memory" not in (root / "cgroup.subtree_control").read_text().split():
                (root / "cgroup.subtree_control").write_text("+memory")
            folder = root / name
            limits = {"memory.max": str(limit), "memory.swap.max": "0"}
        else:
            mine = next(line.split(":", 2)[2] for line in lines if ":memory:" in line)
            folder = Path("/sys/fs/cgroup/memory") / mine.lstrip("/") / name
            limits = {"memory.limit_in_bytes": str(limit)}
        folder.mkdir()
    except (OSError, StopIteration) as exc:
        pytest.skip(f"cannot make a memory-limited cgroup here (root and cgroups needed): {exc}")
    try:
        for file, value in limits.items():
            if file != "memory.swap.max" or (folder / file).exists():  # no swap: nothing to bar
                (folder / file).write_text(value)
    except OSError as exc:
        folder.rmdir()
        pytest.skip(f"cannot limit the memory of a cgroup here: {exc}")
    return folder


def test_a_run_ended_by_the_oom_killer_says_so(
    shared_server: TrackioServer, project: str, spool_dir: Path
) -> None:
    cgroup = memory_cgroup(400 << 20)
    try:
        proc = start(shared_server, project, "oom", "oom", 300, cgroup=cgroup)
        last = last_printed(proc)
        died = time.monotonic()
        assert proc.returncode == -signal.SIGKILL, proc.returncode
        assert_delivered_and_marked(
            shared_server, project, "oom", last, died, "was killed by the OOM killer"
        )
        config = next(iter(shared_server.configs(project).values()))
        assert config["status"] == "killed (out of memory)"
        wait_until(lambda: not watchers(spool_dir), 10.0)
    finally:
        wait_until(lambda: not (cgroup / "cgroup.procs").read_text().strip(), 10.0)
        cgroup.rmdir()


def test_a_job_killed_as_a_whole_leaves_its_spool_for_sync(
    shared_server: TrackioServer, project: str, spool_dir: Path
) -> None:
    proc = start(shared_server, project, "whole-job", "sigkill", 10**6)
    wait_until(lambda: watchers(spool_dir), 10.0)
    (watcher,) = watchers(spool_dir)
    assert proc.stdout is not None
    for _ in range(200):
        proc.stdout.readline()
    os.kill(watcher, signal.SIGKILL)  # as SLURM ends a job: every process of its cgroup at once
    last = last_printed(proc, kill_at=0)
    time.sleep(1.0)
    assert not alerts(shared_server, project, "whole-job")[1:], "nobody was left to say it"
    result = cli_process(["sync"], env={"TRACKIO_WRITE_TOKEN": shared_server.token})
    assert result.returncode == 0, result.stdout + result.stderr
    assert each_acknowledged_once(shared_server.steps(project, "whole-job", "loss"), last)


class RaiseAt(TrainerCallback):
    """Raises ``exc`` as step ``at`` ends: a bug, or a Ctrl-C (KeyboardInterrupt) in a notebook."""

    def __init__(self, at: int, exc: BaseException) -> None:
        self.at, self.exc = at, exc

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.at:
            raise self.exc


def trackio_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("trackio-integrations")}


@pytest.mark.parametrize(
    ("exc", "title", "status"),
    [
        (KeyboardInterrupt(), "Training interrupted", "interrupted"),
        (RuntimeError("a corrupt batch"), "Training failed", "failed"),
    ],
)
def test_a_trainer_that_raises_in_a_process_that_lives_on_ends_its_run_and_the_next_is_clean(
    shared_server: TrackioServer,
    project: str,
    tmp_path: Path,
    exc: BaseException,
    title: str,
    status: str,
) -> None:
    before = trackio_threads()
    callback = TrackioCallback(
        project,
        server_url=shared_server.write_url,
        system_interval=0.1,
        health=HealthChecks(stall_after=1.5),
    )
    args = TrainingArguments(str(tmp_path / "out"), max_steps=30, logging_steps=1, report_to=[])
    trainer = Trainer(
        model=tiny_model(),
        args=args,
        train_dataset=TokenData(64),
        callbacks=[callback, RaiseAt(3, exc)],
    )
    with pytest.raises(type(exc)):
        trainer.train()  # the script (or the notebook) catches it and lives on
    raised = time.time()
    first = callback._run["name"] if callback._run else None
    assert first is not None
    wait_until(lambda: trackio_threads() <= before, 5.0)  # the run's threads have stopped
    samples = len(shared_server.api("get_system_logs", project, first))
    time.sleep(2.5)  # past stall_after: a stall alert would be raised by now

    args = TrainingArguments(str(tmp_path / "out"), max_steps=2, logging_steps=1, report_to=[])
    trainer = Trainer(
        model=tiny_model(), args=args, train_dataset=TokenData(16), callbacks=[callback]
    )
    trainer.train()  # the next cell trains again
    second = callback._run["name"] if callback._run else None
    assert second is not None and second != first
    found = alerts(shared_server, project, first)
    ended = [(a["title"], a["level"], a["step"]) for a in found if "stalled" not in str(a["title"])]
    assert ended == [(title, "error", 3)], found
    stalled = [a["timestamp"] for a in found if a["title"] == "Training stalled"]  # a slow CI
    assert all(datetime.fromisoformat(str(t)).timestamp() < raised for t in stalled), found
    config = shared_server.configs(project)
    assert [c.get("status") for c in config.values()].count(status) == 1
    assert not [a for a in alerts(shared_server, project, second) if "stalled" not in a["title"]]
    assert len(shared_server.api("get_system_logs", project, first)) == samples
    assert shared_server.steps(project, first, "train/loss") == [1, 2]  # 3 raised before its log


def test_lightning_fit_raising_under_ddp_spawn_ends_as_under_ddp(
    shared_server: TrackioServer, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What ddp (and a single process) shows, through Lightning's finalize("failed"): the alert
    # and status asserted here (see test_health's Lightning test). ddp_spawn writes the run in a
    # spawned process, which Lightning does not tell.
    for name in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    import lightning as L

    from tests.test_lightning import QUIET, Regressor, loaders
    from trackio_integrations import TrackioLogger

    logger = TrackioLogger(project, server_url=shared_server.write_url)
    trainer = L.Trainer(
        max_epochs=3, logger=logger, default_root_dir=tmp_path, strategy="ddp_spawn", **QUIET
    )
    with pytest.raises(Exception, match="corrupt shard"):
        trainer.fit(Regressor(fail_at=6), *loaders())
    found = wait_until(lambda: alerts(shared_server, project, logger.version), 15.0)
    assert [(a["title"], a["text"]) for a in found] == [
        ("Training failed", "RuntimeError: the data loader hit a corrupt shard")
    ]
    config = shared_server.wait_for_config(project, logger.run_id, status="failed")
    assert config["hidden"] == 8  # the hyperparameters stay: a status is added, nothing replaced
    assert shared_server.steps(project, logger.version, "train_loss") == list(range(6))


NOTEBOOK_CELLS = [
    """
import json, os, signal, threading
from transformers import Trainer, TrainerCallback, TrainingArguments
from examples.transformers_trainer import TokenData, tiny_model
from trackio_integrations import TrackioCallback
from trackio_integrations.monitoring.health import HealthChecks

class CtrlC(TrainerCallback):  # the notebook's interrupt button: SIGINT to the kernel
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            os.kill(os.getpid(), signal.SIGINT)

callback = TrackioCallback(system_interval=0.2, health=HealthChecks(stall_after=1.5))
def train(steps, *extra):
    args = TrainingArguments(OUT, max_steps=steps, logging_steps=1, report_to=[])
    data = TokenData(64)
    Trainer(model=tiny_model(), args=args, train_dataset=data, callbacks=[callback, *extra]).train()
""",
    "train(30, CtrlC())",
    """
first = callback._run["name"]
import trackio_integrations.api as trackio
trackio.log({"late": 1.0})  # the next cell's log: no run is open, it lands nowhere
import time; time.sleep(2.5)  # past stall_after
print(sorted(t.name for t in threading.enumerate() if t.name.startswith("trackio-integrations")))
""",
    "train(2)",
    'print(json.dumps({"first": first, "second": callback._run["name"]}))',
]


def test_a_notebook_interrupted_with_ctrl_c_then_training_again(
    shared_server: TrackioServer, project: str, tmp_path: Path, spool_dir: Path
) -> None:
    import json

    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")

    cells = [nbformat.v4.new_code_cell(f"OUT = {str(tmp_path / 'out')!r}\n" + NOTEBOOK_CELLS[0])]
    cells += [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS[1:]]
    cells[1].metadata["tags"] = ["raises-exception"]  # the interrupted cell shows its error
    notebook = nbformat.v4.new_notebook(cells=cells)
    env = shared_server.job_env(project)
    client = nbclient.NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}
    )
    with pytest.MonkeyPatch.context() as patch:
        for name in ("TRACKIO_SERVER_URL", "TRACKIO_WRITE_TOKEN", "TRACKIO_PROJECT", "PYTHONPATH"):
            patch.setenv(name, env[name])
        client.execute()
    assert "KeyboardInterrupt" in str(notebook.cells[1].outputs)
    assert "trackio-integrations" not in str(notebook.cells[2].outputs), "the run's threads live"
    runs = json.loads(notebook.cells[4].outputs[0]["text"])
    first, second = runs["first"], runs["second"]
    assert first != second
    found = alerts(shared_server, project, first)
    raised = [(a["title"], a["step"]) for a in found if "stalled" not in str(a["title"])]
    assert raised == [("Training interrupted", 3)], found
    config = shared_server.configs(project)
    assert [c.get("status") for c in config.values()].count("interrupted") == 1
    assert not [a for a in alerts(shared_server, project, second) if "stalled" not in a["title"]]
    assert shared_server.steps(project, second, "train/loss") == [1, 2]
    assert not shared_server.values(project, first, "late")
    wait_until(lambda: not watchers(spool_dir), 10.0)  # the kernel has shut down: none left


TWO_RUNS_AND_A_FORK = AWAIT_WATCHERS + textwrap.dedent(
    """
    import os, sys, time
    from trackio_integrations import TrackioClient
    runs = [TrackioClient(sys.argv[1], name=name) for name in ("run-a", "run-b")]
    for step in range(50):
        for run in runs:
            run.log({"loss": 1 / (step + 1)}, step=step)
    await_watchers(2)  # the watchers have started
    pid = os.fork()
    if pid == 0:  # a DataLoader worker that logs too, then ends as workers do
        for step in range(10):
            runs[0].log({"worker": float(step)}, step=1000 + step)
        runs[0].finish(timeout=30)
        os._exit(0)
    os.waitpid(pid, 0)
    print("READY", flush=True)
    for step in range(50, 100_000):
        for run in runs:
            run.log({"loss": 1 / (step + 1)}, step=step)
        print(step, flush=True)
        time.sleep(0.001)
    """
)


def test_two_runs_in_a_process_that_forks_keep_their_own_watchers_and_both_are_delivered(
    shared_server: TrackioServer, project: str, spool_dir: Path
) -> None:
    proc = launch([sys.executable, "-c", TWO_RUNS_AND_A_FORK, project], shared_server.job_env())
    assert len(watchers(spool_dir)) == 2, (
        "one watcher per run; the worker neither adds nor ends one"
    )
    last = last_printed(proc, kill_at=300)
    died = time.monotonic()
    for run in ("run-a", "run-b"):
        assert_delivered_and_marked(
            shared_server, project, run, last, died, "killed or crashed", warmed=False
        )
    assert shared_server.steps(project, "run-a", "worker") == list(range(1000, 1010))
    wait_until(lambda: not watchers(spool_dir), 10.0)


def test_the_alert_for_a_killed_run_reaches_the_webhook_like_every_alert(
    shared_server: TrackioServer, project: str, capture: CaptureServer
) -> None:
    proc = start(
        shared_server, project, "hooked", "os_exit", 8, TRACKIO_WEBHOOK_URL=f"{capture.url}/hook"
    )
    last = last_printed(proc)
    died = time.monotonic()
    assert_delivered_and_marked(shared_server, project, "hooked", last, died, "killed or crashed")
    posted = wait_until(
        lambda: [r for r in capture.requests if r.path == "/hook" and ENDED in str(r.json())], 10.0
    )
    assert len(posted) == 1 and "at step 7" in str(posted[0].json())
