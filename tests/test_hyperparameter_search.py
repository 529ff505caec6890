"""An Optuna search against a real ``trackio show``: one run per trial, named after the search and
the trial, all in one group, each with its parameters, its final evaluation and how it ended."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import optuna
import pytest
from optuna_integration import PyTorchLightningPruningCallback
from transformers import PrinterCallback, Trainer, TrainingArguments

from examples.transformers_trainer import TokenData, tiny_model
from tests.harness import TrackioServer, wait_until
from tests.test_lightning import QUIET, Regressor, loaders
from trackio_integrations import TrackioCallback, TrackioClient, TrackioLogger

optuna.logging.set_verbosity(optuna.logging.WARNING)


class PruneTrials(optuna.pruners.BasePruner):
    """Prunes the trials named, at their first report: a pruned trial on demand."""

    def __init__(self, *numbers: int) -> None:
        self.numbers = set(numbers)

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number in self.numbers


def space(trial: optuna.Trial) -> dict[str, Any]:
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)}


def search(
    tmp_path: Path, callback: TrackioCallback, pruner: Any = None, **arguments: Any
) -> Trainer:
    settings: dict[str, Any] = {
        "max_steps": 4,
        "per_device_train_batch_size": 8,
        "logging_steps": 2,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        **arguments,
    }
    trainer = Trainer(
        model_init=lambda trial: tiny_model(),
        args=TrainingArguments(str(tmp_path / "out"), **settings),
        train_dataset=TokenData(32),
        eval_dataset=TokenData(8, seed=1),
        callbacks=[callback],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.hyperparameter_search(
        hp_space=space,
        backend="optuna",
        n_trials=3,
        direction="minimize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=pruner,
    )
    return trainer


def runs_by_name(server: TrackioServer, project: str) -> dict[str, dict[str, Any]]:
    """Each run's config, by the run's name."""
    configs = server.configs(project)
    return {run["name"]: configs.get(run["id"], {}) for run in server.runs(project)}


def ended_runs(server: TrackioServer, project: str, n: int) -> dict[str, dict[str, Any]] | None:
    """The project's runs by name, once there are ``n`` and each has ended; else None."""
    runs = runs_by_name(server, project)
    done = len(runs) == n and all(c.get("status") not in (None, "running") for c in runs.values())
    return runs if done else None


def test_each_trial_is_its_own_run_in_the_searchs_group_with_its_final_evaluation(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    callback = TrackioCallback(server_url=shared_server.write_url)
    # No evaluation while training: the search evaluates each trial after its train().
    search(tmp_path, callback, project=project, run_name="sweep", eval_strategy="no")
    names = [f"sweep-trial-{n}" for n in range(3)]

    for name in names:  # the final evaluation is in the trial's own run, at its last step
        assert shared_server.wait_for_steps(project, name, "eval/loss", 1) == [4]
        assert shared_server.steps(project, name, "train/loss") == [2, 4]
    runs = wait_until(
        lambda: (r := runs_by_name(shared_server, project)).keys() == set(names) and r
    )
    rates = set()
    for number, name in enumerate(names):
        config = wait_until(
            lambda name=name: (
                runs_by_name(shared_server, project)[name].get("status") == "success"
                and runs_by_name(shared_server, project)[name]
            )
        )
        assert config["_Group"] == "sweep"
        assert config["trial_number"] == number
        assert config["learning_rate"] == config["trial_params"]["learning_rate"]
        assert config["_Username"] and config["_Created"]
        rates.add(config["learning_rate"])
    assert len(runs) == 3 and len(rates) == 3


def test_a_pruned_trial_ends_as_pruned_and_the_group_can_be_given(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    callback = TrackioCallback(server_url=shared_server.write_url, group="lr-search")
    # No run name: the trials are named after the study, which is new for each search.
    search(tmp_path, callback, PruneTrials(1), project=project, eval_strategy="steps", eval_steps=2)

    runs = wait_until(lambda: ended_runs(shared_server, project, 3))
    assert {c["_Group"] for c in runs.values()} == {"lr-search"}
    statuses = {c["trial_number"]: c["status"] for c in runs.values()}
    assert statuses == {0: "success", 1: "pruned", 2: "success"}
    stem = {name.rsplit("-trial-", 1)[0] for name in runs}
    assert len(stem) == 1 and stem.pop().startswith("search-")
    pruned = next(name for name, c in runs.items() if c["status"] == "pruned")
    assert shared_server.wait_for_steps(project, pruned, "eval/loss", 1) == [2]  # it stopped there


def test_lightning_trials_with_optunas_pruning_callback(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 0.01, 0.1)
        logger = TrackioLogger(
            project, "lit-sweep", trial=trial, server_url=shared_server.write_url
        )
        trainer = L.Trainer(
            max_epochs=2,
            logger=logger,
            default_root_dir=tmp_path,
            callbacks=[PyTorchLightningPruningCallback(trial, monitor="val_loss")],
            enable_checkpointing=False,
            **QUIET,
        )
        trainer.fit(Regressor(lr=lr), *loaders())
        return float(trainer.callback_metrics["val_loss"])

    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=0), pruner=PruneTrials(1)
    )
    study.optimize(objective, n_trials=3)

    runs = wait_until(lambda: ended_runs(shared_server, project, 3))
    assert set(runs) == {f"lit-sweep-trial-{n}" for n in range(3)}
    assert {c["_Group"] for c in runs.values()} == {"lit-sweep"}
    assert {c["trial_number"]: c["status"] for c in runs.values()} == {
        0: "success",
        1: "pruned",
        2: "success",
    }
    for trial in study.trials:
        config = runs[f"lit-sweep-trial-{trial.number}"]
        assert config["trial_params"] == pytest.approx(trial.params)
        assert config["lr"] == pytest.approx(trial.params["lr"])  # the model's hyperparameters
    # a pruned trial raises no failure alert
    assert not shared_server.api("get_alerts", project, "lit-sweep-trial-1")


def test_on_the_embedded_default_a_config_update_wins_over_the_config_before_it(
    server: TrackioServer, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial's ``status`` is a config update written after its points: the inbox must be
    imported in the order it was written, whatever the points' ids (a Trainer's are derived
    from the run id and the step, the update's from the writer)."""
    server.stop()
    monkeypatch.setenv("TRACKIO_DIR", str(server.data_dir))  # the embedded default
    # A run id that sorts after any writer id: the order the names alone would give is wrong.
    run = TrackioClient(
        project, "trial", run_id="z" * 32, step_ids=True, config={"status": "running"}
    )
    for step in (2, 10):  # "s10" sorts before "s2" too
        run.log({"loss": 1.0 / step}, step=step)
        assert run.flush(timeout=30)
    run.update_config({"status": "success"})
    assert run.finish(timeout=30)
    assert len(list((server.data_dir / "inbox").glob("*/*.jsonl"))) >= 3  # not imported yet
    server.start()  # imports the fragments at once
    assert server.wait_for_steps(project, "trial", "loss", 2) == [2, 10]
    assert server.wait_for_config(project, run.run_id)["status"] == "success"
