"""Under ``torchrun`` on a CPU machine, an ``Accelerator()`` made without ``cpu=True``.

torchrun --nproc_per_node 2 tests/scripts/accelerate_torchrun.py <project> <out>
The script joins the job's gloo group itself (accelerate then sees a job of one in each process);
each rank logs ``rank*100 + step`` and writes what it saw to ``<out>/rank<N>.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from accelerate import Accelerator
from teardown import end_process, leave_process_group, watchdog

from trackio_integrations import TrackioClient, TrackioTracker


def main(project: str, out: Path) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    accelerator = Accelerator(log_with=TrackioTracker(name="torchrun-cpu"))
    accelerator.init_trackers(project)
    for step in range(3):
        total = torch.tensor([1.0])
        dist.all_reduce(total)  # one job: both ranks take part
        accelerator.log({"rank_step": rank * 100 + step, "world": total.item()}, step=step)
    client = accelerator.get_tracker("trackio", unwrap=True)
    report = {
        "rank": rank,
        "is_main_process": accelerator.is_main_process,
        "run": client.name if isinstance(client, TrackioClient) else None,
    }
    accelerator.end_training()
    leave_process_group()
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    end_process()


if __name__ == "__main__":
    watchdog()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main(sys.argv[1], Path(sys.argv[2]))
