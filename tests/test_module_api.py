"""trackio's module API after ``install()``: ``import trackio`` runs on our client, one run per
process, against a real ``trackio show``."""

from __future__ import annotations

import contextvars
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import (
    REPO,
    TOKEN,
    TrackioServer,
    assert_each_step_once,
    cli_process,
    free_port,
    wait_until,
)
from trackio_integrations import TrackioClient, install, uninstall
from trackio_integrations.adopt import module_api
from trackio_integrations.core.process import current


@pytest.fixture
def trackio(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """trackio's module, with its API on our client; everything put back afterwards. No run is
    current at the start (a client another test left open is not this test's run)."""
    import trackio as module

    from trackio_integrations.core import process

    monkeypatch.setattr(process, "_open_runs", [])
    own_log = module.log
    install()
    yield module
    for client in reversed(process._open_runs):
        client.finish()
    uninstall()
    assert module.log is own_log


def test_trackio_s_functions_are_ours_after_install_and_theirs_after_uninstall() -> None:
    import trackio

    own = {name: getattr(trackio, name) for name in ("init", "log", "finish", "config")}
    install()
    try:
        assert trackio.init is module_api.init and trackio.log is module_api.log
        assert trackio.config is module_api.config
        assert trackio.context_vars is module_api.context_vars
    finally:
        uninstall()
    assert {name: getattr(trackio, name) for name in own} == own


def test_init_log_config_alert_finish_reach_the_server(
    trackio, shared_server: TrackioServer, project: str
) -> None:
    run = trackio.init(
        project=project,
        name="plain",
        server_url=shared_server.write_url,
        config={"lr": 0.1},
        private=None,
        embed=True,
    )
    trackio.config.update({"epochs": 3}, allow_val_change=True)
    trackio.config["model/num_parameters"] = 1234
    assert trackio.config["lr"] == 0.1 and run.config["epochs"] == 3
    for step in (0, 1, 10):
        trackio.log({"loss": float(step)}, step=step)
    trackio.log({"loss": 11.0})
    trackio.log({"loss": 12.0})
    trackio.alert("spike", "loss went up", level=trackio.AlertLevel.ERROR)
    assert trackio.context_vars.current_run.get().name == "plain"
    assert trackio.context_vars.current_run.get()._space_id is None  # TRL's model-card link
    assert trackio.context_vars.current_server_write_token.get() is None
    trackio.finish()
    assert trackio.context_vars.current_run.get() is None
    assert shared_server.wait_for_steps(project, "plain", "loss", 5) == [0, 1, 10, 11, 12]
    config = shared_server.wait_for_config(project, run.id, epochs=3)
    assert config["lr"] == 0.1 and config["model/num_parameters"] == 1234
    alerts = wait_until(lambda: shared_server.api("get_alerts", project, "plain"))
    assert [(a["title"], a["level"]) for a in alerts] == [("spike", "error")]


def test_init_arguments_we_cannot_honour_warn_once(
    trackio, shared_server: TrackioServer, project: str
) -> None:
    with pytest.warns(UserWarning, match="private"):
        trackio.init(project=project, name="g", server_url=shared_server.write_url, private=True)
    trackio.log({"a": 1.0})
    trackio.finish()
    assert shared_server.wait_for_steps(project, "g", "a", 1) == [0]


def test_log_with_no_run_warns_and_does_not_raise(trackio) -> None:
    module_api._warned.discard("no-run:log")
    with pytest.warns(UserWarning, match="no run open"):
        trackio.log({"loss": 1.0})
    trackio.finish()  # nothing to finish: no error either


def test_one_run_per_process_other_threads_and_copied_contexts_included(
    trackio, shared_server: TrackioServer, project: str
) -> None:
    # The run an integration opened (TrackioCallback / TrackioLogger / TrackioTracker each open
    # a TrackioClient): trackio.log writes to it, and trackio.init returns it.
    client = TrackioClient(project, "shared", server_url=shared_server.write_url)
    assert trackio.init(project=project).client is client
    client.log({"loss": 1.0}, step=4)
    trackio.log({"profiling/step": 0.5}, step=4)

    def from_a_thread() -> None:
        trackio.log({"thread": 1.0}, step=5)

    worker = threading.Thread(target=from_a_thread)
    worker.start()
    worker.join()
    copied = threading.Thread(
        target=contextvars.copy_context().run, args=(trackio.log, {"ctx": 2.0})
    )
    copied.start()
    copied.join()  # no step: 6
    client.finish()
    assert shared_server.wait_for_steps(project, "shared", "ctx", 1) == [6]
    assert [r["name"] for r in shared_server.runs(project)] == ["shared"]
    assert shared_server.steps(project, "shared", "profiling/step") == [4]
    assert shared_server.steps(project, "shared", "thread") == [5]


def test_a_user_s_run_is_current_again_when_the_trainer_s_run_finishes(
    trackio,
    shared_server: TrackioServer,
    project: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from transformers import Trainer, TrainingArguments

    from examples.transformers_trainer import TokenData, tiny_model

    monkeypatch.setenv("TRACKIO_SERVER_URL", shared_server.url)
    monkeypatch.setenv("TRACKIO_WRITE_TOKEN", TOKEN)
    monkeypatch.setenv("TRACKIO_PROJECT", project)
    user = trackio.init(project=project, name="user-run")
    trackio.log({"user/pre": 1.0})
    arguments = TrainingArguments(
        str(tmp_path / "out"),
        max_steps=2,
        logging_steps=1,
        report_to="trackio",
        run_name="trainer-run",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    Trainer(model=tiny_model(), args=arguments, train_dataset=TokenData(16)).train()
    trackio.log({"user/post": 2.0})

    # Any nesting: the run opened last and not finished is current, in every thread and context.
    inner = trackio.init(project=project, name="inner-run")
    trackio.log({"inner/x": 3.0})
    inner.finish()
    copied = threading.Thread(
        target=contextvars.copy_context().run, args=(trackio.log, {"user/ctx": 4.0})
    )
    copied.start()
    copied.join()
    trackio.finish()
    assert current() is None

    assert shared_server.wait_for_steps(project, "user-run", "user/ctx", 1) == [2]
    assert shared_server.steps(project, "user-run", "user/pre") == [0]
    assert shared_server.steps(project, "user-run", "user/post") == [1]
    assert shared_server.wait_for_steps(project, "inner-run", "inner/x", 1) == [0]
    assert shared_server.wait_for_steps(project, "trainer-run", "train/loss", 2) == [1, 2]
    assert user.name == "user-run"


def test_our_api_module_needs_no_trackio(shared_server: TrackioServer, project: str) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["trackio"] = None  # as if trackio were not installed
        import trackio_integrations
        trackio_integrations.install()  # nothing to take over in trackio: nothing changes
        import trackio_integrations.api as trackio
        trackio.init(project={project!r}, name="no-trackio")
        trackio.log({{"loss": 0.5}})
        trackio.log({{"rollout": trackio.Trace(messages=[{{"role": "user", "content": "hi"}}])}})
        trackio.finish()
        """
    )
    env = shared_server.job_env(project)
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert shared_server.wait_for_steps(project, "no-trackio", "loss", 1) == [0]
    traces = wait_until(lambda: shared_server.api("get_traces", project, "no-trackio"))
    assert traces[0]["step"] == 1
    assert TOKEN not in result.stdout + result.stderr


KILLED_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    import trackio  # TRACKIO_INTEGRATIONS=1: trackio's API runs on trackio_integrations
    trackio.init(project=os.environ["TRACKIO_PROJECT"], name="killed",
                 server_url=os.environ["TRACKIO_SERVER_URL"])
    for i in range(1500):
        trackio.log({"loss": 1 / (i + 1)})
    print("half", flush=True)
    while not os.path.exists(sys.argv[1]):  # the server starts meanwhile
        time.sleep(0.05)
    for i in range(1500):
        trackio.log({"loss": 1 / (i + 1501)})
    print("acknowledged", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_plain_trackio_script_killed_loses_nothing_after_sync(
    tmp_path: Path, project: str
) -> None:
    server = TrackioServer(tmp_path / "late", port=free_port())  # down when the script starts
    go = tmp_path / "go"
    env = server.job_env(
        project, TRACKIO_INTEGRATIONS="1", TRACKIO_WATCHER="0"
    )  # a whole job killed: its watcher too
    job = subprocess.Popen(
        [sys.executable, "-c", KILLED_SCRIPT, str(go)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert job.stdout is not None
        assert job.stdout.readline().strip() == "half"
        server.start()
        go.touch()
        out, err = job.communicate(timeout=120)
        assert job.returncode == -9, err
        assert out.strip() == "acknowledged"
        assert "trackio.init/log/finish" in err  # install() said what it took over
        result = cli_process(["sync"], env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        wait_until(lambda: len(server.values(project, "killed", "loss")) >= 3000, 60, 0.5)
        assert_each_step_once(server, project, "killed", "loss", 3000)
        assert TOKEN not in out + err + result.stdout + result.stderr
    finally:
        if job.poll() is None:
            job.kill()
        server.stop()


def test_a_resumed_run_continues_after_the_server_s_last_step(
    trackio, shared_server: TrackioServer, project: str
) -> None:
    first = trackio.init(project=project, name="resumed", server_url=shared_server.write_url)
    for _ in range(3):
        trackio.log({"loss": 1.0})  # 0, 1, 2
    trackio.finish()
    assert shared_server.wait_for_steps(project, "resumed", "loss", 3) == [0, 1, 2]
    again = trackio.init(
        project=project, name="resumed", server_url=shared_server.write_url, resume="allow"
    )
    assert again.id == first.id
    trackio.log({"loss": 0.5})
    trackio.finish()
    assert shared_server.wait_for_steps(project, "resumed", "loss", 4) == [0, 1, 2, 3]


def test_log_artifact_use_artifact_and_save(
    trackio,
    shared_server: TrackioServer,
    project: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "weights.bin").write_bytes(b"w" * 1000)
    (tmp_path / "notes.txt").write_text("lr 0.1")
    trackio.init(project=project, name="producer", server_url=shared_server.write_url)
    art = trackio.log_artifact(tmp_path / "ckpt", name="model", type="model", aliases=["best"])
    assert art is not None and art.wait(60), art.error
    assert trackio.save("notes.txt") == 1
    trackio.finish()
    trackio.init(project=project, name="consumer", server_url=shared_server.write_url)
    used = trackio.use_artifact("model:best")
    assert used is not None and used.version == "v0"
    trackio.finish()
    [listed] = shared_server.api("get_artifacts", project)
    assert (listed["name"], listed["type"]) == ("model", "model")
    lineage = shared_server.api("get_run_artifacts", project, "consumer")
    assert [(a["name"], a["version"]) for a in lineage["input"]] == [("model", 0)]
    files = wait_until(lambda: shared_server.api("get_project_files", project))
    assert [f["name"].split("/")[0] for f in files] == ["notes.txt"]  # as the Files tab lists it
