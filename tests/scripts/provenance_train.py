"""A tiny Trainer run with TrackioCallback whose provenance is checked (copied into a git repo).

Target and project come from the environment. Takes secrets on its command line (``--api-key``,
``--token``) as a real script would, and writes ``<output dir>/run.json``: {"run_name", "run_id"}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from transformers import Trainer, TrainingArguments
from transformers.utils import logging as hf_logging

from examples.transformers_trainer import TokenData, tiny_model
from trackio_integrations import TrackioCallback


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--api-key")
    parser.add_argument("--token")
    parser.add_argument("--lr", type=float, default=1e-3)
    options = parser.parse_args()
    hf_logging.set_verbosity_error()
    tracker = TrackioCallback(system_metrics=False)
    trainer = Trainer(
        model=tiny_model(),
        args=TrainingArguments(
            options.output_dir,
            max_steps=2,
            learning_rate=options.lr,
            per_device_train_batch_size=4,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
        ),
        train_dataset=TokenData(16),
        callbacks=[tracker],
    )
    trainer.train()
    report = {"run_name": tracker.run_name, "run_id": tracker.run_id}
    (Path(options.output_dir) / "run.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
