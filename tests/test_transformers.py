"""TrackioCallback in real Trainer runs: what the Trainer logs is what the dashboard reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from examples.transformers_trainer import TokenData, tiny_model
from tests.harness import BIN, REPO, TOKEN, TrackioServer, free_port, wait_until
from trackio_integrations import TrackioAuthError, TrackioCallback, TrackioConfigError
from trackio_integrations.integrations.transformers.args import metric_names as named

SCRIPT = REPO / "tests" / "scripts" / "transformers_train.py"
TRAIN_KEYS = {"train/loss", "train/grad_norm", "train/learning_rate", "train/epoch"}
EVAL_KEYS = {"eval/loss", "eval/runtime", "eval/samples_per_second", "eval/steps_per_second"}


def make_trainer(
    tmp_path: Path, callback: TrackioCallback, model: Any = None, **arguments: Any
) -> Trainer:
    """6 steps, a log every 2, an evaluation every 3: about a second on CPU."""
    settings: dict[str, Any] = {
        "max_steps": 6,
        "per_device_train_batch_size": 4,
        "logging_steps": 2,
        "eval_strategy": "steps",
        "eval_steps": 3,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        **arguments,
    }
    trainer = Trainer(
        model=model or tiny_model(),
        args=TrainingArguments(str(tmp_path / "out"), **settings),
        train_dataset=TokenData(64),
        eval_dataset=TokenData(8, seed=1),
        callbacks=[callback],
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def metric_names(server: TrackioServer, project: str, run: str) -> set[str]:
    return set(server.api("get_metrics_for_run", project, run) or [])


def test_metrics_arrive_named_like_transformers_at_the_global_step(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    callback = TrackioCallback(server_url=shared_server.write_url)
    trainer = make_trainer(tmp_path, callback, project=project, run_name="story")
    trainer.evaluate()  # a baseline, before training: the run starts here
    result = trainer.train()
    trainer.predict(TokenData(8, seed=2))  # after training: still the same run, test/<key>

    assert callback.run_name == "story"
    shared_server.wait_for_steps(project, "story", "test/loss", 1)
    assert [r["name"] for r in shared_server.runs(project)] == ["story"]
    assert shared_server.steps(project, "story", "train/loss") == [2, 4, 6]
    assert shared_server.steps(project, "story", "eval/loss") == [0, 3, 6]
    assert shared_server.steps(project, "story", "test/loss") == [6]
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    stored = [v["value"] for v in shared_server.values(project, "story", "train/loss")]
    assert stored == pytest.approx(losses)
    test_keys = {"test/loss", "test/runtime", "test/samples_per_second", "test/steps_per_second"}
    # evaluate() and predict() outside train() also time the model's set-up
    set_up = {"eval/model_preparation_time", "test/model_preparation_time"}
    assert metric_names(shared_server, project, "story") == (
        TRAIN_KEYS | EVAL_KEYS | test_keys | set_up
    )

    # The end-of-training aggregates are the run's summary, not a lone point on a chart.
    config = wait_until(lambda: shared_server.configs(project).get(callback.run_id))
    summary = wait_until(lambda: shared_server.configs(project)[callback.run_id].get("summary"))
    assert summary["train_loss"] == pytest.approx(result.training_loss)
    assert {"train_runtime", "train_samples_per_second", "total_flos"} <= summary.keys()
    # Config: the TrainingArguments (tokens masked), the model config, the parameter count.
    assert config["learning_rate"] == trainer.args.learning_rate and config["max_steps"] == 6
    assert config["project"] == project and config["hub_token"] == "<HUB_TOKEN>"
    assert config["n_embd"] == 16 and config["model_type"] == "gpt2"
    assert config["model/num_parameters"] == trainer.model.num_parameters()


class LogsItsOwn(TrainerCallback):
    """A user's ``trainer.log({"train_loss": x})`` in the middle of training."""

    def __init__(self) -> None:
        self.trainer: Trainer | None = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == 3 and self.trainer is not None:
            self.trainer.log({"train_loss": 0.5, "tokens_so_far": 12.0})


@pytest.mark.parametrize("tokens_seen", [True, "non_padding"])
def test_every_key_the_trainer_logs_arrives_at_its_step_with_tokens_seen(
    shared_server: TrackioServer, project: str, tmp_path: Path, tokens_seen: Any
) -> None:
    # With include_num_input_tokens_seen, transformers 5.x adds train_runtime and
    # train_tokens_per_second to every step's log: still points, not the summary.
    callback = TrackioCallback(server_url=shared_server.write_url)
    own = LogsItsOwn()
    trainer = make_trainer(
        tmp_path, callback, project=project, include_num_input_tokens_seen=tokens_seen
    )
    trainer.add_callback(own)
    own.trainer = trainer
    trainer.train()

    run = callback.run_name
    assert run is not None
    *during, summary = trainer.state.log_history
    assert {"train_loss", "total_flos"} <= summary.keys()
    expected: dict[int, set[str]] = {}
    for entry in during:
        logged = {k: v for k, v in entry.items() if k != "step"}
        expected.setdefault(entry["step"], set()).update(named(logged))
    assert "train/num_input_tokens_seen" in expected[2]
    assert "train/train_loss" in expected[3]  # the user's own log

    def stored() -> dict[int, set[str]]:
        rows: dict[int, set[str]] = {}
        for row in shared_server.logs(project, run):
            metrics = {
                k for k, v in row.items() if k not in ("step", "timestamp") and v is not None
            }
            rows.setdefault(row["step"], set()).update(metrics)
        return rows

    wait_until(lambda: all(expected[s] <= stored().get(s, set()) for s in expected))
    configs = lambda: shared_server.configs(project).get(callback.run_id) or {}  # noqa: E731
    assert wait_until(lambda: configs().get("summary"))["total_flos"] == summary["total_flos"]
    assert "train/total_flos" not in metric_names(shared_server, project, run)
    # The summary rode on the last point's id: no row without a metric.
    assert all(row.keys() - {"step", "timestamp"} for row in shared_server.logs(project, run))


def test_settings_come_from_the_callback_then_training_arguments_then_environment(
    shared_server: TrackioServer, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKIO_SERVER_URL", shared_server.url)
    monkeypatch.setenv("TRACKIO_WRITE_TOKEN", TOKEN)
    monkeypatch.setenv("TRACKIO_PROJECT", f"{project}-env")

    # TrainingArguments (project, run_name) beat the environment...
    make_trainer(tmp_path, TrackioCallback(), project=project, run_name="from-args").train()
    shared_server.wait_for_steps(project, "from-args", "train/loss", 3)

    # ... the callback's own arguments beat TrainingArguments, and TRACKIO_PROJECT beats the
    # project TrainingArguments has when nobody set one ("huggingface").
    callback = TrackioCallback(name="explicit")
    make_trainer(tmp_path, callback, run_name="ignored").train()
    shared_server.wait_for_steps(f"{project}-env", "explicit", "train/loss", 3)
    assert [r["name"] for r in shared_server.runs(f"{project}-env")] == ["explicit"]


def test_transformers_4x_without_the_trackio_fields_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # transformers < 4.55 has no TrainingArguments.project / trackio_space_id, and 4.x sets
    # run_name to output_dir when it is not given: that is no run name.
    old_arguments: Any = SimpleNamespace(output_dir="out", run_name="out", report_to=[])
    callback = TrackioCallback()
    with pytest.raises(TrackioConfigError, match="TRACKIO_PROJECT"):
        callback._settings(old_arguments)
    monkeypatch.setenv("TRACKIO_PROJECT", "from-env")
    assert callback._settings(old_arguments) == ("from-env", None, None)


def test_setup_errors_stop_training_at_the_start(
    shared_server: TrackioServer, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(TrackioConfigError, match="Invalid Trackio server URL"):
        TrackioCallback(server_url="htp//127.0.0.1:7860")

    monkeypatch.setenv("TRACKIO_SERVER_URL", "http://127.0.0.1:notaport")
    with pytest.raises(TrackioConfigError, match="Invalid Trackio server URL"):
        make_trainer(tmp_path, TrackioCallback(project))  # at Trainer(...), before any step
    monkeypatch.delenv("TRACKIO_SERVER_URL")

    with pytest.raises(TrackioConfigError, match="No Trackio project"):
        make_trainer(tmp_path, TrackioCallback(), project="")

    with pytest.raises(TrackioConfigError, match="'owner/name'"):
        make_trainer(tmp_path, TrackioCallback(project), trackio_space_id="board")

    trainer = make_trainer(
        tmp_path, TrackioCallback(project, server_url=shared_server.url, write_token="WRONG")
    )
    with pytest.raises(TrackioAuthError):
        trainer.train()
    assert trainer.state.global_step == 0
    assert shared_server.runs(project) == []


@pytest.mark.parametrize("report_to", ["trackio", "all"])
def test_report_to_trackio_too_still_logs_each_point_once(
    shared_server: TrackioServer, project: str, tmp_path: Path, report_to: str
) -> None:
    callback = TrackioCallback(server_url=shared_server.write_url)
    with pytest.warns(UserWarning, match="report_to includes 'trackio'"):
        trainer = make_trainer(tmp_path, callback, project=project, report_to=report_to)
    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        trainer.train()
    assert not [w for w in later if "report_to" in str(w.message)]  # warned once

    run = callback.run_name
    assert run is not None
    assert shared_server.wait_for_steps(project, run, "train/loss", 3) == [2, 4, 6]
    assert shared_server.steps(project, run, "eval/loss") == [3, 6]
    assert "train/global_step" not in metric_names(shared_server, project, run)
    # transformers' own TrackioCallback, left in place, writes its copy under TRACKIO_DIR.
    local = Path(os.environ["TRACKIO_DIR"])
    assert not list(local.glob("*.db")), sorted(p.name for p in local.iterdir())


def train_in_a_new_process(
    output_dir: Path, project: str, server: TrackioServer, *arguments: str
) -> subprocess.CompletedProcess[str]:
    env = server.job_env(project)
    command = [sys.executable, str(SCRIPT), "--output-dir", str(output_dir), *arguments]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)


def reported_runs(output_dir: Path) -> dict[int, dict[str, Any]]:
    """The run each process of the script had, by rank (each writes its own file: two processes
    printing to one pipe can interleave their lines)."""
    reports = [json.loads(path.read_text()) for path in output_dir.glob("rank*.json")]
    return {report["rank"]: report for report in reports}


@pytest.mark.timeout(420)  # two training processes of up to 180 s each
def test_resuming_from_a_checkpoint_in_a_new_process_continues_the_same_run(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    # Preempted at step 6: steps 1-6 reached the server, the last checkpoint is step 4.
    first = train_in_a_new_process(out, project, shared_server, "--crash-at-step", "6")
    assert first.returncode == 3, first.stderr[-3000:]
    (before,) = shared_server.runs(project)
    assert shared_server.wait_for_steps(project, before["name"], "train/loss", 6) == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]

    second = train_in_a_new_process(out, project, shared_server, "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    resumed = reported_runs(out)[0]

    assert resumed["run_name"] == before["name"]
    assert [r["name"] for r in shared_server.runs(project)] == [before["name"]]
    assert list(shared_server.configs(project)) == [resumed["run_id"]]
    # Steps 5 and 6 were trained and logged again after the resume: each is stored once.
    steps = shared_server.wait_for_steps(project, before["name"], "train/loss", 8)
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8]
    assert shared_server.steps(project, before["name"], "eval/loss") == [4, 8]
    summary = wait_until(lambda: shared_server.configs(project)[resumed["run_id"]].get("summary"))
    assert summary["train_loss"] > 0


def test_torchrun_with_two_processes_makes_one_run_with_each_point_once(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    env = shared_server.job_env(project, OMP_NUM_THREADS="1")
    command = [
        str(BIN / "torchrun"),
        "--nproc_per_node=2",
        "--standalone",
        str(SCRIPT),
        "--output-dir",
        str(tmp_path / "out"),
        "--max-steps",
        "8",  # a multiple of eval_steps: 4.x and 5.x both evaluate at 4 and 8
        "--save-steps",
        "100",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = reported_runs(tmp_path / "out")
    assert runs[1]["run_name"] is None  # rank 1 never opened a run, so never waits on one
    run = runs[0]

    assert [r["name"] for r in shared_server.runs(project)] == [run["run_name"]]
    assert shared_server.steps(project, run["run_name"], "train/loss") == list(range(1, 9))
    assert shared_server.steps(project, run["run_name"], "eval/loss") == [4, 8]


def test_a_server_that_is_down_does_not_stop_training_and_gets_the_points_later(
    project: str, tmp_path: Path
) -> None:
    late = TrackioServer(tmp_path / "late-server", port=free_port())
    callback = TrackioCallback(project, server_url=late.write_url, finish_timeout=1.0)
    trainer = make_trainer(tmp_path, callback)
    with pytest.warns(UserWarning, match="not reachable"):
        trainer.train()
    assert trainer.state.global_step == 6  # training went on, nothing was lost:

    late.start()
    try:
        assert late.runs(project) == []
        sync = subprocess.run(
            [str(BIN / "trackio-integrations"), "sync"],
            env={**os.environ, "TRACKIO_WRITE_TOKEN": TOKEN},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sync.returncode == 0, sync.stdout + sync.stderr
        run = callback.run_name
        assert run is not None
        assert late.steps(project, run, "train/loss") == [2, 4, 6]
        assert late.steps(project, run, "eval/loss") == [3, 6]
        assert "summary" in late.configs(project)[callback.run_id]
    finally:
        late.stop()


def test_restoring_callback_states_from_a_checkpoint_keeps_the_run_and_the_token(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    # With restore_callback_states_from_checkpoint, transformers rebuilds the callback from the
    # checkpoint's trainer_state.json, which holds no token: the one given here must still work.
    def callback() -> TrackioCallback:
        return TrackioCallback(project, server_url=shared_server.url, write_token=TOKEN)

    first = callback()
    make_trainer(tmp_path, first, max_steps=4, save_strategy="steps", save_steps=2).train()
    saved = (tmp_path / "out" / "checkpoint-2" / "trainer_state.json").read_text()
    assert first.run_id in saved and TOKEN not in saved

    given = callback()
    trainer = make_trainer(
        tmp_path,
        given,
        save_strategy="steps",
        save_steps=2,
        restore_callback_states_from_checkpoint=True,
    )
    trainer.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-2"))
    (rebuilt,) = [
        cb for cb in trainer.callback_handler.callbacks if isinstance(cb, TrackioCallback)
    ]
    assert rebuilt is not given and rebuilt.run_id == first.run_id
    assert [r["name"] for r in shared_server.runs(project)] == [first.run_name]
    assert shared_server.wait_for_steps(project, first.run_name, "train/loss", 3) == [2, 4, 6]
    assert list(shared_server.configs(project)) == [first.run_id]


def test_a_lora_fine_tune_records_its_peft_config(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True, task_type="CAUSAL_LM")
    model = get_peft_model(tiny_model(), lora)
    callback = TrackioCallback(project, server_url=shared_server.write_url)
    make_trainer(tmp_path, callback, model).train()

    config = wait_until(lambda: shared_server.configs(project).get(callback.run_id))
    adapter = config["peft_config"]["default"]
    assert adapter["r"] == 2 and adapter["target_modules"] == ["c_attn"]
    assert adapter["peft_type"] == "LORA"
    assert config["model/num_parameters"] == model.num_parameters()
