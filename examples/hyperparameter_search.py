"""Two Optuna searches over the learning rate with the Hugging Face Trainer: one run per trial.

Each trial of the search with batch size 8 is the run ``lr-search-bs8-trial-<n>`` in the group
``lr-search-bs8`` (likewise ``bs16``), with its learning rate in the config, the evaluation the
search runs after each trial in that trial's run, and ``status: pruned`` for the trials Optuna
stopped early. Open the project in the dashboard and choose *Group by: Group* (the dashboard
offers it once the project holds runs of more than one group).

    python examples/hyperparameter_search.py    # the target comes from the environment
"""

from __future__ import annotations

import tempfile
from typing import Any

import optuna
from transformers import PrinterCallback, Trainer, TrainingArguments
from transformers.utils import logging as hf_logging

from examples.transformers_trainer import TokenData, tiny_model
from trackio_integrations import TrackioCallback


def main(
    project: str = "demo-search", run_name: str = "lr-search", trials: int = 3, batch_size: int = 8
) -> dict[str, Any]:
    hf_logging.set_verbosity_error()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = Trainer(
            model_init=lambda trial: tiny_model(),
            args=TrainingArguments(
                output_dir,
                run_name=run_name,  # the trials' group, and their names' stem
                project=project,
                max_steps=8,
                per_device_train_batch_size=batch_size,
                logging_steps=2,
                eval_strategy="steps",  # each evaluation is reported to Optuna, which may prune
                eval_steps=4,
                save_strategy="no",
                report_to="none",
                use_cpu=True,
                disable_tqdm=True,
            ),
            train_dataset=TokenData(128),
            eval_dataset=TokenData(16, seed=1),
            callbacks=[TrackioCallback()],
        )
        trainer.remove_callback(PrinterCallback)
        best = trainer.hyperparameter_search(
            hp_space=lambda trial: {
                "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
            },
            backend="optuna",
            direction="minimize",
            n_trials=trials,
            sampler=optuna.samplers.RandomSampler(seed=3),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=4),
        )
    return {"project": project, "group": run_name, "trials": trials, "best": best}


if __name__ == "__main__":
    for batch_size in (8, 16):
        summary = main(run_name=f"lr-search-bs{batch_size}", batch_size=batch_size)
        best = summary["best"]
        print(
            f"Searched {summary['trials']} trials: runs {summary['group']}-trial-0 .. "
            f"{summary['group']}-trial-{summary['trials'] - 1} in group {summary['group']} of "
            f"{summary['project']}; best: trial {best.run_id}, eval loss {best.objective:.3f}"
        )
