"""TRL's trainers with ``report_to="trackio"`` after ``install()``: TRL calls ``trackio.log`` itself
(profiling timings, the completions table), and all of it lands in the Trainer's one run on a real
``trackio show``. Tiny models from a config and a tokenizer built here: no downloads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from datasets import Dataset
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from tests.harness import TOKEN, TrackioServer, wait_until
from trackio_integrations import install, uninstall
from trackio_integrations.core import process

WORDS = "the a cat dog sat ran on mat fast slow big small red blue one two three".split()
PROMPTS = ["the cat", "a dog", "one two", "big red"] * 2


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<eos>", *WORDS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    fast.padding_side = "left"
    return fast


def tiny_lm() -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=len(WORDS) + 3,
        n_positions=64,
        n_embd=16,
        n_layer=1,
        n_head=2,
        eos_token_id=2,
        bos_token_id=2,
        pad_token_id=0,
    )
    return GPT2LMHeadModel(config)


def common(tmp_path: Path, run: str) -> dict[str, Any]:
    return {
        "output_dir": str(tmp_path / run),
        "run_name": run,
        "per_device_train_batch_size": 4,
        "max_steps": 2,
        "logging_steps": 1,
        "report_to": "trackio",
        "use_cpu": True,
        "save_strategy": "no",
        "disable_tqdm": True,
    }


@pytest.fixture
def on_server(
    shared_server: TrackioServer, project: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TrackioServer]:
    monkeypatch.setenv("TRACKIO_SERVER_URL", shared_server.url)
    monkeypatch.setenv("TRACKIO_WRITE_TOKEN", TOKEN)
    monkeypatch.setenv("TRACKIO_PROJECT", project)
    monkeypatch.setattr(process, "_open_runs", [])  # no run left open by another test
    install()
    yield shared_server
    for client in reversed(process._open_runs):
        client.finish()
    uninstall()


def metric_names(server: TrackioServer, project: str, run: str) -> set[str]:
    return {key for row in server.logs(project, run) for key in row}


def test_grpo_rewards_profiling_and_completions_land_in_one_run(
    on_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    from trl import GRPOConfig, GRPOTrainer

    def reward_len(completions: list[str], **kwargs: Any) -> list[float]:
        return [float(len(c)) for c in completions]

    args = GRPOConfig(
        **common(tmp_path, "grpo"),
        num_generations=2,
        max_completion_length=6,
        log_completions=True,
        num_completions_to_print=0,
    )
    trainer = GRPOTrainer(
        model=tiny_lm(),
        reward_funcs=reward_len,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": PROMPTS}),
        processing_class=tiny_tokenizer(),
    )
    trainer.train()
    assert [r["name"] for r in on_server.runs(project)] == ["grpo"]
    reward = "train/rewards/reward_len/mean"
    assert on_server.wait_for_steps(project, "grpo", reward, 2) == [1, 2]
    wait_until(lambda: any("Time taken" in k for k in metric_names(on_server, project, "grpo")))
    names = metric_names(on_server, project, "grpo")
    profiling = sorted(k for k in names if "Time taken" in k)
    assert any("_calculate_rewards" in k for k in profiling), profiling
    assert on_server.steps(project, "grpo", profiling[0])  # at the Trainer's steps
    rows = wait_until(
        lambda: [r for r in on_server.logs(project, "grpo") if "completions" in r], 60
    )
    # One table per log: each logging step, and the summary at the end of training.
    assert len(rows) == 3
    for row in rows:
        table = row["completions"]["_value"]
        assert {"step", "prompt", "completion", "reward_len", "advantage"} <= set(table[0])
    # Logged with no step: each follows the run's last step (never 0, never a step taken).
    steps = [(row["step"], row["completions"]["_value"][0]["step"]) for row in rows]
    assert sorted(steps) == [(2, 1), (3, 2), (4, 2)]


def test_sft_logs_into_one_run(on_server: TrackioServer, project: str, tmp_path: Path) -> None:
    from trl import SFTConfig, SFTTrainer

    text = [f"{p} sat on the mat" for p in PROMPTS]
    args = SFTConfig(**common(tmp_path, "sft"), max_length=16, packing=False)
    trainer = SFTTrainer(
        model=tiny_lm(),
        args=args,
        train_dataset=Dataset.from_dict({"text": text}),
        processing_class=tiny_tokenizer(),
    )
    trainer.train()
    assert [r["name"] for r in on_server.runs(project)] == ["sft"]
    assert on_server.wait_for_steps(project, "sft", "train/loss", 2) == [1, 2]


def test_dpo_logs_into_one_run(on_server: TrackioServer, project: str, tmp_path: Path) -> None:
    from trl import DPOConfig, DPOTrainer

    data = Dataset.from_dict(
        {"prompt": PROMPTS, "chosen": ["sat on the mat"] * 8, "rejected": ["ran fast"] * 8}
    )
    args = DPOConfig(**common(tmp_path, "dpo"), max_length=16)
    trainer = DPOTrainer(
        model=tiny_lm(),
        ref_model=tiny_lm(),
        args=args,
        train_dataset=data,
        processing_class=tiny_tokenizer(),
    )
    trainer.train()
    assert [r["name"] for r in on_server.runs(project)] == ["dpo"]
    assert on_server.wait_for_steps(project, "dpo", "train/loss", 2) == [1, 2]
    wait_until(lambda: "train/rewards/chosen" in metric_names(on_server, project, "dpo"))
