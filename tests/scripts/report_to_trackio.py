"""A training script as teams have hundreds of: ``report_to="trackio"``, no callbacks, nothing of
trackio_integrations imported. ``--install`` adds the one line ``trackio_integrations.install()``;
without it, only ``TRACKIO_INTEGRATIONS=1`` (the ``.pth``) can make it use our callback.

Target and project come from the environment. Prints one JSON line: the Trackio callbacks the
Trainer ended up with, the run, and which trackio / gradio modules this process imported.
"""

from __future__ import annotations

import argparse
import json
import sys

from transformers import Trainer, TrainingArguments
from transformers.utils import logging as hf_logging

from examples.transformers_trainer import TokenData, tiny_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--install", action="store_true")
    options = parser.parse_args()
    hf_logging.set_verbosity_error()
    if options.install:
        import trackio_integrations

        trackio_integrations.install()

    trainer = Trainer(
        model=tiny_model(),
        args=TrainingArguments(
            options.output_dir,
            run_name="no-code-change",
            max_steps=4,
            per_device_train_batch_size=4,
            logging_steps=1,
            save_strategy="no",
            report_to="trackio",
            use_cpu=True,
            disable_tqdm=True,
        ),
        train_dataset=TokenData(32),
    )
    trainer.train()
    trackers = [cb for cb in trainer.callback_handler.callbacks if "Trackio" in type(cb).__name__]
    print(
        json.dumps(
            {
                "callbacks": [f"{type(cb).__module__}.{type(cb).__name__}" for cb in trackers],
                "run_id": getattr(trackers[0], "run_id", None) if trackers else None,
                "imported": sorted(
                    m for m in sys.modules if m.split(".")[0] in ("trackio", "gradio")
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
