"""A tiny Trainer run with TrackioCallback, for tests that need a process of its own.

Launched plainly (resume in a new process), with ``torchrun --nproc_per_node=2`` (CPU, gloo), or
as two torchrun "nodes" on this machine (``--nnodes=2 --node_rank=0/1``).
Target and project come from the environment (TRACKIO_SERVER_URL, TRACKIO_WRITE_TOKEN,
TRACKIO_PROJECT). Each process writes ``<output dir>/rank<N>.json``: {"rank", "run_name",
"run_id"}; only world rank 0 has a run (the others write nulls).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from teardown import end_process, leave_process_group, watchdog
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.utils import logging as hf_logging

from examples.transformers_trainer import TokenData, tiny_model
from trackio_integrations import TrackioCallback


class CrashAt(TrainerCallback):
    """Dies like a preempted job at step ``step``, once what was logged has reached the server."""

    def __init__(self, step: int, tracker: TrackioCallback, sigkill: bool = False) -> None:
        self.step = step
        self.tracker = tracker
        self.sigkill = sigkill

    def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step >= self.step:
            assert self.tracker.client is not None
            self.tracker.client.flush(timeout=30)
            if self.sigkill:  # as the OOM killer would
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(3)


class Pace(TrainerCallback):
    """Slows each step down (a real step takes time) and can fail at a step, as a bug would."""

    def __init__(self, sleep: float, fail_at: int | None) -> None:
        self.sleep = sleep
        self.fail_at = fail_at

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        time.sleep(self.sleep)
        if state.global_step == self.fail_at:
            raise RuntimeError(f"a corrupt batch at step {state.global_step}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--save-steps", type=int, default=4)
    parser.add_argument("--crash-at-step", type=int)
    parser.add_argument("--sigkill", action="store_true", help="die by SIGKILL at that step")
    parser.add_argument("--resume", action="store_true", help="from the last checkpoint")
    parser.add_argument("--step-sleep", type=float, default=0.0, help="seconds added to a step")
    parser.add_argument("--fail-at-step", type=int, help="raise out of train() at this step")
    parser.add_argument("--system-interval", type=float, default=10.0)
    options = parser.parse_args()
    hf_logging.set_verbosity_error()

    tracker = TrackioCallback(system_interval=options.system_interval)
    callbacks: list[TrainerCallback] = [tracker]
    if options.crash_at_step:
        callbacks.append(CrashAt(options.crash_at_step, tracker, options.sigkill))
    if options.step_sleep or options.fail_at_step:
        callbacks.append(Pace(options.step_sleep, options.fail_at_step))
    trainer = Trainer(
        model=tiny_model(),
        args=TrainingArguments(
            options.output_dir,
            max_steps=options.max_steps,
            per_device_train_batch_size=4,
            logging_steps=1,
            eval_strategy="steps",
            eval_steps=4,
            save_steps=options.save_steps,
            report_to="none",
            use_cpu=True,
            disable_tqdm=True,
        ),
        train_dataset=TokenData(64),
        eval_dataset=TokenData(8, seed=1),
        callbacks=callbacks,
    )
    trainer.train(resume_from_checkpoint=True if options.resume else None)
    rank = trainer.args.process_index
    report = {
        "rank": rank,
        "run_name": tracker.run_name,
        "run_id": tracker.run_id,
        "log_history": trainer.state.log_history,
    }
    Path(options.output_dir).mkdir(parents=True, exist_ok=True)
    (Path(options.output_dir) / f"rank{rank}.json").write_text(json.dumps(report))
    leave_process_group()  # under torchrun: every rank, once rank 0's run has finished
    end_process()  # before this frame's objects (the DDP model) are torn down


if __name__ == "__main__":
    watchdog()
    main()
