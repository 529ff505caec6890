"""What provenance (on by default) costs at the end of a run: the cold start, and a Trainer's finish.

    python bench/finish.py              # 7 rounds of the cold start, 3 of the Trainer (minutes)
    python bench/finish.py --rounds 2 --trainer-rounds 1   # a smoke test

1. Cold start, local storage: a fresh ``python`` process imports the library, opens a run, logs one
   point and finishes (``COLD``); its wall time from outside, start to exit. Three commands side by
   side in every round, their order rotated each round: ours with provenance (the default), ours
   without (``TRACKIO_PROVENANCE=0``) and trackio's own client (``trackio.init`` / ``log`` /
   ``finish``, its defaults). Each process has its own ``TRACKIO_DIR`` and spool and runs in this
   checkout (a git repository, as a training script's is), so provenance reads a real checkout.
   The table gives the medians and ours/trackio's, round by round then the median of the ratios.
   Python writes bytecode caches as usual (``PYTHONDONTWRITEBYTECODE`` is dropped for the
   children), as for an installed package: compiling this checkout's sources on every start
   would be measured otherwise, where trackio's installed modules are already compiled.
2. A Trainer's ``finish()``: the tiny GPT-2 of ``examples/transformers_trainer.py`` for 20 steps
   with ``TrackioCallback`` to local storage, provenance on and off in turn; the time the
   callback's ``TrackioClient.finish()`` takes at the end of training (the provenance thread is
   long done by then, and on local storage its files are already in the project's Files).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

COLD = {
    "ours": (
        "from trackio_integrations import TrackioClient\n"
        "run = TrackioClient('cold')\n"
        "run.log({'train/loss': 1.0}, step=0)\n"
        "run.finish()\n"
    ),
    "trackio": (
        "import trackio\n"
        "trackio.init(project='cold')\n"
        "trackio.log({'train/loss': 1.0}, step=0)\n"
        "trackio.finish()\n"
    ),
}

TRAINER = r"""
import json, sys, time, tempfile
import torch
torch.set_num_threads(1)
from transformers import PrinterCallback, Trainer, TrainingArguments
from transformers.utils import logging as hf_logging
from examples.transformers_trainer import TokenData, tiny_model
from trackio_integrations import TrackioCallback, TrackioClient
hf_logging.set_verbosity_error()
took = []
finish = TrackioClient.finish
def timed(self, *args, **kwargs):
    start = time.perf_counter()
    try:
        return finish(self, *args, **kwargs)
    finally:
        took.append(time.perf_counter() - start)
TrackioClient.finish = timed
with tempfile.TemporaryDirectory() as out:
    trainer = Trainer(
        model=tiny_model(),
        args=TrainingArguments(out, max_steps=20, per_device_train_batch_size=8, logging_steps=1,
                               save_strategy="no", report_to="none", use_cpu=True,
                               disable_tqdm=True),
        train_dataset=TokenData(160),
        callbacks=[TrackioCallback("bench-finish", system_metrics=False)],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
print(json.dumps({"finish_s": took[0]}))
"""


def child_env(home: Path, provenance: bool) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TRACKIO_DIR": str(home / "trackio")}
    env["TRACKIO_SPOOL_DIR"] = str(home / "spool")
    env["TRACKIO_PROVENANCE"] = "1" if provenance else "0"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def cold(client: str, provenance: bool, tmp: Path) -> float:
    """The wall time of one fresh process, start to exit."""
    env = child_env(Path(tempfile.mkdtemp(dir=tmp)), provenance)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", COLD[client]],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=300,
        check=True,
    )
    return time.perf_counter() - start


def trainer_finish(provenance: bool, tmp: Path) -> float:
    env = child_env(Path(tempfile.mkdtemp(dir=tmp)), provenance)
    done = subprocess.run(
        [sys.executable, "-c", TRAINER],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["finish_s"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--trainer-rounds", type=int, default=3)
    options = p.parse_args()
    commands = [("ours", True), ("ours", False), ("trackio", False)]
    walls: dict[tuple[str, bool], list[float]] = {c: [] for c in commands}
    finishes: dict[bool, list[float]] = {True: [], False: []}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for c in commands:  # warm the page cache, not counted
            cold(*c, tmp)
        for i in range(options.rounds):
            for c in commands[i % 3 :] + commands[: i % 3]:
                walls[c].append(cold(*c, tmp))
        for i in range(options.trainer_rounds):
            for setting in (True, False) if i % 2 == 0 else (False, True):
                finishes[setting].append(trainer_finish(setting, tmp))
    theirs = walls[("trackio", False)]
    print("| cold start, local storage (import, open, 1 point, finish) | median | / trackio's |")
    print("|---|---:|---:|")
    for (client, provenance), values in walls.items():
        label = f"{client}, provenance {'on' if provenance else 'off'}"
        if client == "trackio":
            label = "trackio 0.43 (its defaults)"
        ratio = statistics.median(a / b for a, b in zip(values, theirs, strict=True))
        print(f"| {label} | {statistics.median(values) * 1e3:.0f} ms | {ratio:.2f} |")
    if options.trainer_rounds:
        on, off = (statistics.median(finishes[s]) * 1e3 for s in (True, False))
        print("\n| Trainer, 20 steps: TrackioClient.finish() | provenance on | off | on - off |")
        print("|---|---:|---:|---:|")
        print(
            f"| median of {options.trainer_rounds} rounds | {on:.0f} ms | {off:.0f} ms |"
            f" {on - off:+.0f} ms |"
        )
    print(
        f"\n{options.rounds} rounds (order rotated), one fresh process each; cwd {REPO} (a git "
        f"checkout); load average {load:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
