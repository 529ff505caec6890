"""Training-health alerts that no tracker raises for you: non-finite values, loss spikes, stalls,
failures, each raised once, in real training runs read back from a real server."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from unittest.mock import ANY  # a matcher for texts with measured numbers

import lightning as L
import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from transformers import Trainer, TrainerCallback, TrainingArguments

from examples.transformers_trainer import TokenData, tiny_model
from tests.harness import REPO, TOKEN, TrackioServer, run_python, wait_until
from tests.test_lightning import QUIET, Regressor, loaders
from trackio_integrations import TrackioCallback, TrackioLogger, TrackioTracker
from trackio_integrations.monitoring.health import Health, HealthChecks

SCRIPT = REPO / "tests" / "scripts" / "transformers_train.py"


class Recorder:
    """Stands where a TrackioClient would: keeps each alert and the thread that raised it."""

    def __init__(self) -> None:
        self.alerts: list[tuple[str, str | None, str, int | None]] = []
        self.threads: list[str] = []

    def alert(
        self, title: str, text: str | None = None, level: str = "warn", step: int | None = None
    ) -> None:
        self.alerts.append((title, text, level, step))
        self.threads.append(threading.current_thread().name)


def alerts_of(server: TrackioServer, project: str, run: str) -> list[tuple[Any, ...]]:
    found = server.api("get_alerts", project, run)
    return sorted((a["step"], a["level"], a["title"], a["text"]) for a in found)


def test_a_non_finite_value_alerts_once_until_it_is_finite_again() -> None:
    run = Recorder()
    health = Health(run, HealthChecks(stall_after=None, failure=False))
    for step, (loss, grad) in enumerate(
        [(1.0, 2.0), (math.nan, 2.0), (math.nan, math.inf), (0.5, math.inf), (0.4, 1.0)]
    ):
        health.observe({"train/loss": loss, "train/grad_norm": grad, "train/lr": math.nan}, step)
    health.observe({"train/loss": math.nan}, 5)  # finite at step 3 and 4: a new alert
    assert run.alerts == [
        ("Non-finite train/loss", "train/loss = nan at step 1", "error", 1),
        ("Non-finite train/grad_norm", "train/grad_norm = inf at step 2", "error", 2),
        ("Non-finite train/loss", "train/loss = nan at step 5", "error", 5),
    ]  # train/lr is neither a loss nor a gradient norm


def test_a_loss_spike_warns_once_per_spike_and_batch_noise_does_not() -> None:
    run = Recorder()
    health = Health(run, HealthChecks(stall_after=None, failure=False, loss_spike=3.0))
    calm = [1.0, 0.9, 0.8, 0.85, 0.8, 0.75]
    # a spike, its aftermath, a window of calm values, a second spike
    losses = [*calm, 9.0, 12.0, 0.7, 3.0, *[0.7] * 20, 8.0]
    for step, loss in enumerate(losses):
        health.observe({"train": {"loss": torch.tensor(loss)}}, step)  # nested, a tensor
    assert [(a[0], a[2], a[3]) for a in run.alerts] == [
        ("Loss spike in train/loss", "warn", 6),
        ("Loss spike in train/loss", "warn", 30),
    ]
    assert (
        run.alerts[0][1]
        == "train/loss = 9 at step 6, 10.9x its median 0.825 over the last 6 values"
    )
    # A noisy per-batch loss (Lightning's example, measured): jumps of 3-5x are its noise.
    noisy = [0.8, 0.33, 2.79, 0.96, 1.94, 1.0, 0.93, 0.7, 0.62, 2.16, 0.8, 0.72, 0.58, 0.53]
    noisy += [0.76, 0.52, 0.29, 0.22, 0.82, 0.22, 2.36, 0.45, 0.66, 0.2, 0.44, 0.19, 0.25]
    noisy += [0.34, 0.33, 0.18, 0.4, 0.35, 0.27, 0.28, 0.38, 0.3, 0.23, 0.26, 1.35, 0.15]
    quiet = Recorder()
    health = Health(quiet, HealthChecks(stall_after=None, failure=False))
    for step, loss in enumerate(noisy):
        health.observe({"train_loss": loss}, step)
    assert quiet.alerts == []


def test_the_stall_watchdog_fires_from_its_own_thread_and_rearms() -> None:
    # only this Health's watchdog: a run another test left open in this process has its own
    others = {t for t in threading.enumerate() if t.name == "trackio-integrations-watchdog"}
    run = Recorder()
    health = Health(run, HealthChecks(stall_after=0.5, failure=False))
    health.observe({"loss": 1.0}, 7)
    wait_until(lambda: run.alerts, 30)
    title, text, level, step = run.alerts[0]
    assert (title, level, step) == ("Training stalled", "error", 7)
    assert text is not None and text.startswith("Nothing was logged for")
    assert run.threads == ["trackio-integrations-watchdog"]
    time.sleep(1.0)
    assert len(run.alerts) == 1  # once per stall
    health.beat(8)
    wait_until(lambda: len(run.alerts) == 2, 30)  # a new stall after progress: a new alert
    health.close()

    def ours() -> set[threading.Thread]:
        watchdogs = {t for t in threading.enumerate() if t.name == "trackio-integrations-watchdog"}
        return watchdogs - others

    # close() waits for the thread only briefly (0.2 s): a loaded machine may end it a bit later
    wait_until(lambda: not ours(), 30)


def test_each_check_can_be_switched_off() -> None:
    run = Recorder()
    health = Health(
        run, HealthChecks(nonfinite=False, loss_spike=None, stall_after=None, failure=False)
    )
    for step, loss in enumerate([1.0] * 6 + [100.0, math.nan]):
        health.observe({"loss": loss}, step)
    health.failed(RuntimeError, RuntimeError("boom"))
    assert run.alerts == []
    assert HealthChecks.of(False) is None and HealthChecks.of(True) == HealthChecks()
    assert HealthChecks.of({"stall_after": 60}) == HealthChecks(stall_after=60)
    assert TrackioCallback(health=False).monitoring.health is None


class PoisonWeights(TrainerCallback):
    """Sets one weight to NaN just before step ``at`` runs, as a diverging update would."""

    def __init__(self, at: int, tracker: TrackioCallback) -> None:
        self.at = at
        self.tracker = tracker

    def on_step_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **_: Any
    ) -> None:
        if state.global_step == 1:
            self.tracker.alert("Warm-up done", "lr schedule from here", level="info")
        if state.global_step == self.at - 1:
            with torch.no_grad():  # the final layer norm: every logit becomes NaN
                model.transformer.ln_f.bias[0] = math.nan


def test_a_trainer_whose_weights_become_nan_raises_one_error_at_that_step(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    callback = TrackioCallback(project, server_url=shared_server.write_url)
    trainer = Trainer(
        model=tiny_model(),
        # transformers' defaults (logging_nan_inf_filter=True among them); one log per step
        args=TrainingArguments(str(tmp_path / "out"), max_steps=10, logging_steps=1),
        train_dataset=TokenData(64),
        callbacks=[callback, PoisonWeights(6, callback)],
    )
    trainer.train()
    run = callback.run_name
    assert run is not None
    assert alerts_of(shared_server, project, run) == [
        (1, "info", "Warm-up done", "lr schedule from here"),
        (6, "error", "Non-finite train/grad_norm", "train/grad_norm = nan at step 6"),
    ]
    # The NaN filter kept the loss finite in the logs; the gradient norm showed the divergence.
    losses = shared_server.values(project, run, "train/loss")
    assert all(v["value"] is not None for v in losses)
    norms = {v["step"]: v["value"] for v in shared_server.values(project, run, "train/grad_norm")}
    assert norms[5] is not None and all(norms[s] is None for s in range(6, 11))


def test_an_exception_out_of_trainer_train_raises_a_failure_alert(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    env = shared_server.job_env(project)
    command = [sys.executable, str(SCRIPT), "--output-dir", str(tmp_path), "--fail-at-step", "3"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 1 and "a corrupt batch at step 3" in done.stderr  # still printed
    (run,) = shared_server.runs(project)
    assert alerts_of(shared_server, project, run["name"]) == [
        (3, "error", "Training failed", "RuntimeError: a corrupt batch at step 3")
    ]


class NanAt(Regressor):
    def training_step(self, batch: Any, index: int) -> torch.Tensor:
        loss = super().training_step(batch, index)
        if self.global_step == 2:
            self.log("train_loss", math.nan)
        return loss


def test_lightning_alerts_on_nan_on_failure_and_on_request(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    logger = TrackioLogger(project, server_url=shared_server.write_url)
    trainer = L.Trainer(max_epochs=3, logger=logger, default_root_dir=tmp_path, **QUIET)
    with pytest.raises(RuntimeError, match="corrupt shard"):
        trainer.fit(NanAt(fail_at=6), *loaders())
    logger.alert("Post-mortem", "restart from the last checkpoint", level="info", step=6)
    logger.finalize("success")
    assert alerts_of(shared_server, project, logger.version) == [
        (2, "error", "Non-finite train_loss", "train_loss = nan at step 2"),
        (5, "error", "Training failed", "RuntimeError: the data loader hit a corrupt shard"),
        (6, "info", "Post-mortem", "restart from the last checkpoint"),
    ]


@pytest.fixture
def fresh_accelerate_state() -> Any:
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def test_accelerate_alerts_on_nan_spikes_stalls_and_on_request(
    shared_server: TrackioServer, project: str, fresh_accelerate_state: None
) -> None:
    tracker = TrackioTracker(
        project, server_url=shared_server.write_url, health=HealthChecks(stall_after=3.0)
    )
    accelerator = Accelerator(cpu=True, log_with=tracker)
    accelerator.init_trackers(project)
    losses = [1.0, 0.9, 0.8, 0.85, 0.8, 0.75, 9.0, 0.7, math.nan, math.nan, 0.6, math.inf]
    for step, loss in enumerate(losses):
        accelerator.log({"train": {"loss": torch.tensor(loss)}, "grad_norm": 1.0}, step=step)
    tracker.alert("Manual", "checked by hand", level="info")
    run = accelerator.get_tracker("trackio", unwrap=True).name
    wait_until(lambda: len(shared_server.api("get_alerts", project, run)) == 5, 60)
    accelerator.end_training()
    assert alerts_of(shared_server, project, run) == [
        (6, "warn", "Loss spike in train/loss", ANY),
        (8, "error", "Non-finite train/loss", "train/loss = nan at step 8"),
        (11, "error", "Non-finite train/loss", "train/loss = inf at step 11"),
        (11, "error", "Training stalled", ANY),
        (11, "info", "Manual", "checked by hand"),
    ]


def test_an_uncaught_exception_in_an_accelerate_program_raises_a_failure_alert(
    shared_server: TrackioServer, project: str
) -> None:
    code = f"""
from accelerate import Accelerator
from trackio_integrations import TrackioTracker
accelerator = Accelerator(cpu=True, log_with=TrackioTracker({project!r}))
accelerator.init_trackers("ignored")
accelerator.log({{"loss": 1.0}}, step=4)
raise KeyError("label")
"""
    done = run_python(code, {"TRACKIO_SERVER_URL": shared_server.url, "TRACKIO_WRITE_TOKEN": TOKEN})
    assert done.returncode == 1 and "KeyError: 'label'" in done.stderr
    (run,) = shared_server.runs(project)
    assert alerts_of(shared_server, project, run["name"]) == [
        (4, "error", "Training failed", "KeyError: 'label'")
    ]
