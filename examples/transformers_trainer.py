"""Train a tiny GPT-2 with the Hugging Face Trainer and TrackioCallback, on CPU, in seconds.

python examples/transformers_trainer.py

Logs to TRACKIO_SERVER_URL when set, else to the embedded default (local storage in TRACKIO_DIR).
The model is built from a config: nothing is downloaded.
"""

from __future__ import annotations

import tempfile
from typing import Any

import torch
from transformers import GPT2Config, GPT2LMHeadModel, PrinterCallback, Trainer, TrainingArguments
from transformers.utils import logging as hf_logging

from trackio_integrations import TrackioCallback


class TokenData(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """``n`` random sequences of ``length`` token ids; the model learns their unigram statistics."""

    def __init__(self, n: int, length: int = 8, vocab: int = 32, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        # A skewed distribution, so that the loss visibly falls.
        weights = torch.arange(vocab, 0, -1, dtype=torch.float) ** 2
        self.ids = torch.multinomial(weights, n * length, True, generator=generator).view(n, -1)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def tiny_model(seed: int = 0) -> GPT2LMHeadModel:
    """A GPT-2 with a few thousand parameters, built from a config (no download)."""
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=32, n_positions=8, n_embd=16, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0
    )
    return GPT2LMHeadModel(config)


def main(
    project: str = "demo-transformers", name: str | None = None, steps: int = 40
) -> dict[str, Any]:
    hf_logging.set_verbosity_error()
    callback = TrackioCallback(project, name)
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = Trainer(
            model=tiny_model(),
            args=TrainingArguments(
                output_dir,
                max_steps=steps,
                per_device_train_batch_size=8,
                learning_rate=1e-2,
                logging_steps=2,
                eval_strategy="steps",
                eval_steps=10,
                save_strategy="no",
                report_to="none",
                use_cpu=True,
                disable_tqdm=True,
            ),
            train_dataset=TokenData(256),
            eval_dataset=TokenData(32, seed=1),
            callbacks=[callback],
        )
        trainer.remove_callback(PrinterCallback)  # keep the demo's output short
        trainer.train()
    losses = [float(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]
    assert callback.run_name is not None
    return {
        "framework": "transformers",
        "project": project,
        "run": callback.run_name,
        "metric": "train/loss",
        "values": losses,
    }


if __name__ == "__main__":
    summary = main()
    print(
        f"Logged {len(summary['values'])} train/loss points to run {summary['run']} "
        f"of {summary['project']}"
    )
