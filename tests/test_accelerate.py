"""TrackioTracker in real Accelerate training loops: what ``accelerator.log`` sends is what arrives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState

from tests.harness import BIN, REPO, TOKEN, CaptureServer, TrackioServer, free_port, own
from trackio_integrations import TrackioAuthError, TrackioClient, TrackioConfigError, TrackioTracker

MODEL = {"inputs": 4, "hidden": 8, "lr": 0.05}


@pytest.fixture(autouse=True)
def fresh_accelerate_state() -> Iterator[None]:
    """Accelerate's state is a process-wide singleton: reset it, as accelerate's own tests do."""
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def train(accelerator: Accelerator, steps: int) -> list[float]:
    """A tiny MLP built from MODEL, trained on CPU; logs nested tensors and returns the losses."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(MODEL["inputs"], MODEL["hidden"]),
        torch.nn.ReLU(),
        torch.nn.Linear(MODEL["hidden"], 1),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=MODEL["lr"])
    model, optimizer = accelerator.prepare(model, optimizer)
    x = torch.randn(16, MODEL["inputs"])
    y = x.sum(dim=1, keepdim=True)
    losses = []
    for step in range(steps):
        loss = torch.nn.functional.mse_loss(model(x), y)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        # the loss still carries its graph: users log it like that
        accelerator.log({"train": {"loss": loss, "lr": torch.tensor(MODEL["lr"])}}, step=step)
        losses.append(loss.item())
    return losses


def test_a_training_loop_arrives_with_config_steps_and_values(
    shared_server: TrackioServer, project: str
) -> None:
    tracker = TrackioTracker(project, server_url=shared_server.write_url, config={"model": "mlp"})
    accelerator = Accelerator(cpu=True, log_with=tracker)
    accelerator.init_trackers("the-constructor-project-wins", config=MODEL)

    assert accelerator.get_tracker("trackio") is tracker
    run = accelerator.get_tracker("trackio", unwrap=True)
    assert isinstance(run, TrackioClient) and run.project == project
    losses = train(accelerator, steps=20)
    accelerator.end_training()

    assert run.pending == 0  # end_training() had every point delivered
    assert shared_server.wait_for_steps(project, run.name, "train/loss", 20) == list(range(20))
    assert [r["name"] for r in shared_server.runs(project)] == [run.name]
    assert shared_server.runs("the-constructor-project-wins") == []
    stored = shared_server.values(project, run.name, "train/loss")
    assert [v["value"] for v in stored] == pytest.approx(losses)
    assert shared_server.steps(project, run.name, "train/lr") == list(range(20))
    assert own(shared_server.configs(project)[run.run_id]) == {
        "model": "mlp",
        **MODEL,
        "_Group": None,
    }


def test_the_project_comes_from_init_trackers_and_the_target_from_the_environment(
    shared_server: TrackioServer, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = f"env-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TRACKIO_SERVER_URL", shared_server.url)
    monkeypatch.setenv("TRACKIO_WRITE_TOKEN", TOKEN)
    monkeypatch.setenv("TRACKIO_PROJECT", other)  # the project named in code comes first
    accelerator = Accelerator(cpu=True, log_with=TrackioTracker())
    # the same call as for accelerate's built-in log_with="trackio"
    accelerator.init_trackers(project, config=MODEL, init_kwargs={"trackio": {"name": "run-7"}})
    losses = train(accelerator, steps=5)
    accelerator.end_training()

    assert accelerator.get_tracker("trackio", unwrap=True).pending == 0
    assert shared_server.wait_for_steps(project, "run-7", "train/loss", 5) == list(range(5))
    assert [r["name"] for r in shared_server.runs(project)] == ["run-7"]
    assert shared_server.runs(other) == []
    stored = shared_server.values(project, "run-7", "train/loss")
    assert [v["value"] for v in stored] == pytest.approx(losses)
    assert [own(c) for c in shared_server.configs(project).values()] == [{**MODEL, "_Group": None}]


def test_started_by_hand_the_project_is_trackio_project_or_a_clear_error(
    capture: CaptureServer, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Accelerator(cpu=True)
    tracker = TrackioTracker(server_url=capture.url)
    with pytest.raises(TrackioConfigError, match="init_trackers"):
        tracker.start()
    assert tracker.tracker is None

    monkeypatch.setenv("TRACKIO_PROJECT", project)
    tracker.start()
    assert tracker.tracker is not None and tracker.tracker.project == project
    tracker.finish()


def test_other_init_kwargs_and_log_kwargs_are_ignored_with_one_warning(
    shared_server: TrackioServer, project: str
) -> None:
    tracker = TrackioTracker(server_url=shared_server.write_url)
    accelerator = Accelerator(cpu=True, log_with=tracker)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        accelerator.init_trackers(project, init_kwargs={"trackio": {"space_id": "me/space"}})
        for step in range(3):  # accelerate's built-in tracker raises TypeError here
            accelerator.log({"a": step}, step=step, log_kwargs={"trackio": {"commit": True}})
        accelerator.end_training()
    messages = [str(w.message) for w in caught]
    assert sum("['space_id']" in m for m in messages) == 1
    assert sum("['commit']" in m for m in messages) == 1
    run = accelerator.get_tracker("trackio", unwrap=True)
    assert run.pending == 0
    assert shared_server.wait_for_steps(project, run.name, "a", 3) == [0, 1, 2]
    assert [v["value"] for v in shared_server.values(project, run.name, "a")] == [0, 1, 2]
    assert [r["name"] for r in shared_server.runs(project)] == [run.name]  # not the Space


def test_one_tracker_reused_by_a_second_accelerator_opens_a_second_run(
    shared_server: TrackioServer, project: str
) -> None:
    tracker = TrackioTracker(project, server_url=shared_server.write_url)
    runs = []
    for trial in range(2):  # e.g. a sweep in one process
        accelerator = Accelerator(cpu=True, log_with=tracker)
        accelerator.init_trackers(project, config={"trial": trial})
        accelerator.log({"a": trial}, step=0)
        runs.append(accelerator.get_tracker("trackio", unwrap=True))
        accelerator.end_training()
    assert runs[0] is not runs[1] and runs[0].name != runs[1].name
    for trial, run in enumerate(runs):
        assert run.pending == 0
        assert shared_server.wait_for_steps(project, run.name, "a", 1) == [0]
        assert shared_server.values(project, run.name, "a")[0]["value"] == trial
    assert {run_id: own(c) for run_id, c in shared_server.configs(project).items()} == {
        runs[0].run_id: {"trial": 0, "_Group": None},
        runs[1].run_id: {"trial": 1, "_Group": None},
    }
    assert sorted(r["name"] for r in shared_server.runs(project)) == sorted(r.name for r in runs)


def test_constructing_the_tracker_connects_nowhere_and_writes_nothing(
    capture: CaptureServer, project: str, spool_dir: Path
) -> None:
    tracker = TrackioTracker(project, server_url=capture.url)
    assert tracker.tracker is None
    Accelerator(cpu=True, log_with=tracker)
    with pytest.warns(UserWarning, match="before init_trackers"):
        tracker.log({"a": 1}, step=0)
    assert capture.requests == []
    assert not spool_dir.exists() or not any(spool_dir.iterdir())


def test_a_wrong_token_stops_init_trackers_before_training(
    shared_server: TrackioServer, project: str
) -> None:
    tracker = TrackioTracker(project, server_url=shared_server.url, write_token="WRONG")
    accelerator = Accelerator(cpu=True, log_with=tracker)
    with pytest.raises(TrackioAuthError):
        accelerator.init_trackers(project)
    assert shared_server.runs(project) == []


def test_end_training_returns_within_finish_timeout_when_the_server_is_gone(
    project: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    accelerator = Accelerator(
        cpu=True,
        log_with=TrackioTracker(
            project, server_url=url, finish_timeout=1.0, system_metrics=False
        ),  # the 3 points only
    )
    with pytest.warns(UserWarning, match="not reachable"):
        accelerator.init_trackers(project)
    train(accelerator, steps=3)
    started = time.monotonic()
    accelerator.end_training()
    waited = time.monotonic() - started
    # finish_timeout (1 s) was honoured, not the 10 s default: it waited 1 s, plus at most 0.2 s
    # to stop the sender, and whatever a loaded machine adds, but nowhere near 10 s.
    assert 1.0 <= waited < 9, waited
    run = accelerator.get_tracker("trackio", unwrap=True)
    assert run.pending == 3
    assert "not yet delivered" in caplog.text


@pytest.mark.timeout(180)
def test_two_processes_make_one_run_with_each_point_once(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    # `--cpu --num_processes 2` starts ONE process in accelerate 1.x; `--multi_gpu` goes through
    # torchrun, and on a machine without GPUs the script's Accelerator(cpu=True) uses gloo.
    result = subprocess.run(
        [
            str(BIN / "accelerate"),
            "launch",
            "--multi_gpu",
            "--num_processes=2",
            "--num_machines=1",
            "--mixed_precision=no",
            "--dynamo_backend=no",
            f"--main_process_port={free_port()}",
            str(REPO / "tests" / "scripts" / "accelerate_ddp.py"),
            project,
            str(out),
            "12",
        ],
        env={**os.environ, "TRACKIO_SERVER_URL": shared_server.url, "TRACKIO_WRITE_TOKEN": TOKEN},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["world"] == rank1["world"] == [2, "DistributedType.MULTI_CPU"]
    assert rank0["clients"] == 1 and rank1["clients"] == 0  # rank 1 never had a connection

    assert shared_server.wait_for_steps(project, rank0["run"], "train/loss", 12) == list(range(12))
    assert [r["name"] for r in shared_server.runs(project)] == [rank0["run"]]
    stored = shared_server.values(project, rank0["run"], "train/loss")
    assert [v["step"] for v in stored] == list(range(12))
    assert [v["value"] for v in stored] == pytest.approx(rank0["losses"])
    assert [own(c) for c in shared_server.configs(project).values()] == [
        {"world_size": 2, "_Group": None}
    ]
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(180)
def test_torchrun_on_cpu_without_cpu_true_makes_one_run_with_rank_zeros_points(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    result = subprocess.run(
        [
            str(BIN / "torchrun"),
            "--nproc_per_node=2",
            "--standalone",
            str(REPO / "tests" / "scripts" / "accelerate_torchrun.py"),
            project,
            str(out),
        ],
        env=shared_server.job_env(project, OMP_NUM_THREADS="1"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    # accelerate takes each process for a main process; the launcher's RANK says which one is
    assert rank0["is_main_process"] and rank1["is_main_process"]
    assert (rank0["run"], rank1["run"]) == ("torchrun-cpu", None)

    stored = shared_server.wait_for_steps(project, "torchrun-cpu", "rank_step", 3)
    assert stored == [0, 1, 2]
    assert [r["name"] for r in shared_server.runs(project)] == ["torchrun-cpu"]
    values = shared_server.values(project, "torchrun-cpu", "rank_step")
    assert [v["value"] for v in values] == [0, 1, 2]  # rank 0's, each once
    assert "Traceback" not in result.stderr


def test_importing_the_adapter_module_does_not_import_trackio() -> None:
    # accelerate's built-in tracker needs `trackio` (and gradio) in the training process; ours not
    code = (
        "import sys, trackio_integrations.integrations.accelerate; print('trackio' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
