"""The oracle over the Trainer settings users set: whatever ``trainer.state.log_history`` says the
Trainer logged is on the server, named as docs/transformers.md says, at its step, once, with its
value; the end-of-training summary is the run's config ``"summary"``; nothing else is in the
metric rows (system metrics and alerts have their own tables)."""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from datasets import Dataset
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.utils import logging as hf_logging

from examples.transformers_trainer import TokenData, tiny_model
from tests.harness import REPO, TOKEN, TrackioServer, wait_until
from tests.oracle import (
    Point,
    assert_run_holds,
    count,
    log_history_points,
    no_extra,
    run_ids,
    server_points,
    summary_differences,
    train_end_summary,
    transformers_name,
)
from tests.test_trl import PROMPTS, WORDS, tiny_lm, tiny_tokenizer
from trackio_integrations import TrackioCallback, install, uninstall

EXAMPLES = int(os.environ.get("ORACLE_EXAMPLES", "5"))  # `make oracle-deep`: many more
SCRIPT = REPO / "tests" / "scripts" / "transformers_train.py"


def numpy_and_text_metrics(prediction: Any) -> dict[str, Any]:
    """What users' ``compute_metrics`` return: numpy scalars, a NaN, a string."""
    logits, labels = prediction.predictions, prediction.label_ids
    if isinstance(logits, tuple):
        logits = logits[0]
    accuracy = (logits[:, :-1].argmax(-1) == labels[:, 1:]).mean()
    return {
        "accuracy": np.float32(accuracy),
        "count": np.int64(labels.size),
        "undefined": np.float64("nan"),
        "verdict": "better" if accuracy > 0.1 else "worse",
    }


def check_trainer_run(
    server: TrackioServer,
    project: str,
    run_id: str | None,
    log_history: list[dict[str, Any]],
    predicted: Sequence[Point] = (),
    extra: Callable[[str], bool] = no_extra,
) -> None:
    """The run holds ``log_history`` (and ``predict()``'s metrics, which it lacks)."""
    assert run_id is not None
    expected = [*log_history_points(log_history), *predicted]
    assert_run_holds(server, project, run_id, expected, extra=extra)
    expected = train_end_summary(log_history)
    if expected is not None:

        def summary() -> Any:
            return (server.configs(project).get(run_id) or {}).get("summary")

        wait_until(summary, 30)
        assert not summary_differences(expected, summary()), summary_differences(
            expected, summary()
        )


class Diverge(TrainerCallback):
    """Sets one weight to NaN before step ``at``: from there every loss and metric is NaN, and
    the health checks raise alerts (in their own table, not in the metric rows)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **_: Any
    ) -> None:
        if state.global_step == self.at - 1:
            with torch.no_grad():
                model.transformer.ln_f.bias[0] = math.nan


SETTINGS = st.fixed_dictionaries(
    {
        "logging_strategy": st.sampled_from(["steps", "epoch"]),
        "logging_steps": st.sampled_from([1, 2, 3]),
        "logging_first_step": st.booleans(),
        "gradient_accumulation_steps": st.sampled_from([1, 2]),
        "eval": st.sampled_from(["no", "steps", "epoch"]),
        "eval_on_start": st.booleans(),
        "eval_datasets": st.sampled_from([1, 2]),
        "evaluate_first": st.booleans(),
        "include_num_input_tokens_seen": st.sampled_from(["no", True, "non_padding"]),
        "max_grad_norm": st.sampled_from([1.0, 0.0]),
        "compute_metrics": st.booleans(),
        "after": st.sampled_from([(), ("evaluate",), ("predict",), ("evaluate", "predict")]),
        "train_twice": st.booleans(),
        "diverges": st.booleans(),
    }
)


@pytest.mark.timeout(120 + 60 * EXAMPLES)  # each example is a short training run
@example(
    case={
        "logging_strategy": "steps",
        "logging_steps": 1,
        "logging_first_step": True,
        "gradient_accumulation_steps": 2,
        "eval": "steps",
        "eval_on_start": True,
        "eval_datasets": 2,
        "evaluate_first": True,
        "include_num_input_tokens_seen": True,
        "max_grad_norm": 0.0,
        "compute_metrics": True,
        "after": ("evaluate", "predict"),
        "train_twice": True,
        "diverges": True,
    }
)
@example(
    case={
        "logging_strategy": "epoch",
        "logging_steps": 3,
        "logging_first_step": False,
        "gradient_accumulation_steps": 1,
        "eval": "epoch",
        "eval_on_start": False,
        "eval_datasets": 1,
        "evaluate_first": False,
        "include_num_input_tokens_seen": "non_padding",
        "max_grad_norm": 1.0,
        "compute_metrics": True,
        "after": ("predict",),
        "train_twice": False,
        "diverges": False,
    }
)
@settings(
    max_examples=EXAMPLES,
    phases=[Phase.explicit, Phase.generate],  # a failing Trainer run is not worth shrinking
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=SETTINGS)
def test_the_server_holds_what_the_trainer_logged(
    case: dict[str, Any], shared_server: TrackioServer, tmp_path: Path
) -> None:
    hf_logging.set_verbosity_error()
    project = f"oracle-{uuid.uuid4().hex[:10]}"
    evaluating = case["eval"] != "no"
    arguments: dict[str, Any] = {
        "num_train_epochs": 2,  # 16 samples in batches of 4: 4 (or 2 accumulated) steps an epoch
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 4,
        "logging_strategy": case["logging_strategy"],
        "logging_steps": case["logging_steps"],
        "logging_first_step": case["logging_first_step"],
        "gradient_accumulation_steps": case["gradient_accumulation_steps"],
        "eval_strategy": case["eval"],
        "eval_steps": 3 if case["eval"] == "steps" else None,
        "eval_on_start": case["eval_on_start"] and evaluating,
        "include_num_input_tokens_seen": case["include_num_input_tokens_seen"],
        "max_grad_norm": case["max_grad_norm"],
        "logging_nan_inf_filter": False,  # a NaN loss is logged as NaN
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        "run_name": "oracle",
    }
    callback = TrackioCallback(project=project, server_url=shared_server.write_url)
    eval_dataset: Any = TokenData(8, seed=1)
    if case["eval_datasets"] == 2:  # eval_a_loss, eval_b_loss: eval/a_loss, eval/b_loss
        eval_dataset = {"a": eval_dataset, "b": TokenData(4, seed=3)}
    trainer = Trainer(
        model=tiny_model(),
        args=TrainingArguments(str(tmp_path / uuid.uuid4().hex), **arguments),
        train_dataset=TokenData(16),
        eval_dataset=eval_dataset,
        compute_metrics=numpy_and_text_metrics if case["compute_metrics"] else None,
        callbacks=[callback, *([Diverge(at=3)] if case["diverges"] else [])],
    )
    trainer.remove_callback(PrinterCallback)
    # A baseline evaluate() before train() opens the run that train() continues, at step 0;
    # train() starts a new log_history, so the baseline is kept from here.
    baseline: list[dict[str, Any]] = []
    if case["evaluate_first"]:
        trainer.evaluate()
        baseline = copy.deepcopy(trainer.state.log_history)
    runs: list[tuple[str | None, list[dict[str, Any]]]] = []
    for _ in range(2 if case["train_twice"] else 1):
        trainer.train()
        runs.append((callback.run_id, copy.deepcopy(trainer.state.log_history)))
    runs[0] = (runs[0][0], baseline + runs[0][1])
    # evaluate() / predict() after training log to the last run at its final step; evaluate()
    # is in log_history, predict() only in what it returns.
    predicted: list[Point] = []
    for call in case["after"]:
        if call == "evaluate":
            trainer.evaluate()
        else:
            metrics = trainer.predict(TokenData(8, seed=2)).metrics or {}
            step = trainer.state.global_step
            predicted += [Point(transformers_name(k), step, v) for k, v in metrics.items()]
    runs[-1] = (
        callback.run_id,
        (baseline if len(runs) == 1 else []) + copy.deepcopy(trainer.state.log_history),
    )
    assert len(set(run_ids(shared_server, project))) == len(runs)
    for i, (run_id, history) in enumerate(runs):
        last = i == len(runs) - 1
        check_trainer_run(shared_server, project, run_id, history, predicted if last else ())


@pytest.mark.timeout(420)  # two training processes
def test_a_run_resumed_after_sigkill_holds_the_resumed_trainers_log_history(
    shared_server: TrackioServer, tmp_path: Path
) -> None:
    project = f"oracle-{uuid.uuid4().hex[:10]}"
    out = tmp_path / "out"
    env = shared_server.job_env(project)

    def train(*arguments: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(SCRIPT), "--output-dir", str(out), *arguments]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)

    # Killed at step 6 (its points flushed); the last checkpoint is step 4.
    killed = train("--max-steps", "8", "--crash-at-step", "6", "--sigkill")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = train("--max-steps", "8", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = json.loads((out / "rank0.json").read_text())
    # The resumed Trainer's log_history: the checkpoint's (steps 1-4), then steps 5-8 again.
    assert run_ids(shared_server, project) == [report["run_id"]]
    check_trainer_run(shared_server, project, report["run_id"], report["log_history"])


def test_train_again_from_a_checkpoint_in_the_same_process_continues_the_run(
    shared_server: TrackioServer, tmp_path: Path
) -> None:
    hf_logging.set_verbosity_error()
    project = f"oracle-{uuid.uuid4().hex[:10]}"
    callback = TrackioCallback(project=project, server_url=shared_server.write_url)
    trainer = Trainer(
        model=tiny_model(),
        args=TrainingArguments(
            str(tmp_path / "out"),
            max_steps=6,
            per_device_train_batch_size=4,
            logging_steps=1,
            eval_strategy="steps",
            eval_steps=2,
            save_steps=3,
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
        ),
        train_dataset=TokenData(16),
        eval_dataset=TokenData(8, seed=1),
        callbacks=[callback],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    first, before = callback.run_id, copy.deepcopy(trainer.state.log_history)
    trainer.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-3"))
    assert callback.run_id == first and run_ids(shared_server, project) == [first]
    # Steps 4-6 ran twice: each is stored once (step ids), with the value it was first logged
    # with; a timing (eval/runtime) differs between the two, a loss does not.
    check_trainer_run(shared_server, project, first, before + trainer.state.log_history)
    logged = count(log_history_points(trainer.state.log_history))  # train/epoch: twice at 2, 4, 6
    held = count(server_points(shared_server, project, first))
    assert {key: n for key, n in held.items() if n > logged[key]} == {}


# --- TRL: each trainer's own log_history, on its smallest settings ---------------------------


def trl_arguments(tmp_path: Path, run: str, report_to: str) -> dict[str, Any]:
    return {
        "output_dir": str(tmp_path / run),
        "run_name": run,
        "per_device_train_batch_size": 4,
        "max_steps": 2,
        "logging_steps": 1,
        "report_to": report_to,
        "use_cpu": True,
        "save_strategy": "no",
        "disable_tqdm": True,
    }


def preference_data() -> Dataset:
    return Dataset.from_dict(
        {"prompt": PROMPTS, "chosen": ["sat on the mat"] * 8, "rejected": ["ran fast"] * 8}
    )


def reward_len(completions: list[str], **kwargs: Any) -> list[float]:
    return [float(len(c)) for c in completions]


def sft(tmp_path: Path, callbacks: list[Any], report_to: str = "none") -> Any:
    from trl import SFTConfig, SFTTrainer

    text = [f"{p} sat on the mat" for p in PROMPTS]
    return SFTTrainer(
        model=tiny_lm(),
        args=SFTConfig(**trl_arguments(tmp_path, "sft", report_to), max_length=16, packing=False),
        train_dataset=Dataset.from_dict({"text": text}),
        processing_class=tiny_tokenizer(),
        callbacks=callbacks,
    )


def dpo(tmp_path: Path, callbacks: list[Any], report_to: str = "none") -> Any:
    from trl import DPOConfig, DPOTrainer

    return DPOTrainer(
        model=tiny_lm(),
        ref_model=tiny_lm(),
        args=DPOConfig(**trl_arguments(tmp_path, "dpo", report_to), max_length=16),
        train_dataset=preference_data(),
        processing_class=tiny_tokenizer(),
        callbacks=callbacks,
    )


def grpo(tmp_path: Path, callbacks: list[Any], report_to: str = "none") -> Any:
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(
        **trl_arguments(tmp_path, "grpo", report_to),
        num_generations=2,
        max_completion_length=6,
        log_completions=report_to == "trackio",
        num_completions_to_print=0,
    )
    return GRPOTrainer(
        model=tiny_lm(),
        reward_funcs=reward_len,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": PROMPTS}),
        processing_class=tiny_tokenizer(),
        callbacks=callbacks,
    )


def rloo(tmp_path: Path, callbacks: list[Any], report_to: str = "none") -> Any:
    from trl import RLOOConfig, RLOOTrainer

    args = RLOOConfig(
        **trl_arguments(tmp_path, "rloo", report_to),
        beta=0.0,  # no reference model (TRL would load one by name)
        num_generations=2,
        max_completion_length=6,
    )
    return RLOOTrainer(
        model=tiny_lm(),
        reward_funcs=reward_len,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": PROMPTS}),
        processing_class=tiny_tokenizer(),
        callbacks=callbacks,
    )


def kto(tmp_path: Path, callbacks: list[Any], report_to: str = "none") -> Any:
    from trl import KTOConfig, KTOTrainer

    data = Dataset.from_dict(
        {
            "prompt": PROMPTS,
            "completion": ["sat on the mat", "ran fast"] * 4,
            "label": [True, False] * 4,
        }
    )
    return KTOTrainer(
        model=tiny_lm(),
        ref_model=tiny_lm(),
        args=KTOConfig(**trl_arguments(tmp_path, "kto", report_to), max_length=16),
        train_dataset=data,
        processing_class=tiny_tokenizer(),
        callbacks=callbacks,
    )


def reward(tmp_path: Path, callbacks: list[Any], report_to: str = "none") -> Any:
    from transformers import GPT2Config, GPT2ForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    config = GPT2Config(
        vocab_size=len(WORDS) + 3,
        n_positions=64,
        n_embd=16,
        n_layer=1,
        n_head=2,
        num_labels=1,
        pad_token_id=0,
    )
    return RewardTrainer(
        model=GPT2ForSequenceClassification(config),
        args=RewardConfig(**trl_arguments(tmp_path, "reward", report_to), max_length=16),
        train_dataset=preference_data(),
        processing_class=tiny_tokenizer(),
        callbacks=callbacks,
    )


@pytest.mark.parametrize("make", [sft, dpo, grpo, rloo, kto, reward], ids=lambda f: f.__name__)
def test_each_trl_trainers_log_history_is_on_the_server(
    make: Any, shared_server: TrackioServer, tmp_path: Path
) -> None:
    hf_logging.set_verbosity_error()
    project = f"oracle-{uuid.uuid4().hex[:10]}"
    callback = TrackioCallback(project=project, server_url=shared_server.write_url)
    trainer = make(tmp_path, [callback])
    trainer.train()
    check_trainer_run(shared_server, project, callback.run_id, trainer.state.log_history)


def test_two_trainers_in_one_script_sft_then_dpo_are_two_runs_each_from_step_1(
    shared_server: TrackioServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The script users write after ``install()``: ``report_to="trackio"``, no callback given."""
    hf_logging.set_verbosity_error()
    project = f"oracle-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("TRACKIO_SERVER_URL", shared_server.url)
    monkeypatch.setenv("TRACKIO_WRITE_TOKEN", TOKEN)
    monkeypatch.setenv("TRACKIO_PROJECT", project)
    install()
    try:
        trainers = []
        for make in (sft, dpo):
            trainer = make(tmp_path, [], report_to="trackio")
            trainer.train()
            trainers.append(trainer)
    finally:
        uninstall()
    runs = shared_server.runs(project)
    assert [r["name"] for r in runs] == ["sft", "dpo"]
    for run, trainer in zip(runs, trainers, strict=True):
        steps = shared_server.steps(project, run["name"], "train/loss")
        assert steps == [1, 2]
        check_trainer_run(shared_server, project, str(run["id"]), trainer.state.log_history)


def test_grpo_through_report_to_trackio_holds_its_log_history_beside_what_trl_logs_itself(
    shared_server: TrackioServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ``install()``, TRL also calls ``trackio.log`` (profiling timings, the completions
    table): those are in the run by design; everything in ``log_history`` is there too."""
    hf_logging.set_verbosity_error()
    project = f"oracle-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("TRACKIO_SERVER_URL", shared_server.url)
    monkeypatch.setenv("TRACKIO_WRITE_TOKEN", TOKEN)
    monkeypatch.setenv("TRACKIO_PROJECT", project)
    install()
    try:
        trainer = grpo(tmp_path, [], report_to="trackio")
        trainer.train()
    finally:
        uninstall()
    (run,) = shared_server.runs(project)

    def by_trl(name: str) -> bool:
        return "Time taken" in name or name == "completions"

    history = trainer.state.log_history
    check_trainer_run(shared_server, project, str(run["id"]), history, extra=by_trl)
