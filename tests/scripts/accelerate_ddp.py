"""Train with ``accelerate launch``; each rank writes what it saw to ``<out>/rank<N>.json``.

accelerate launch --cpu --num_processes 2 tests/scripts/accelerate_ddp.py <project> <out> [steps]
The target comes from TRACKIO_SERVER_URL / TRACKIO_WRITE_TOKEN; the project from init_trackers.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path

import torch
from accelerate import Accelerator
from teardown import end_process, leave_process_group, watchdog
from torch.utils.data import DataLoader, TensorDataset

from trackio_integrations import TrackioClient, TrackioTracker


def main(project: str, out: Path, batches: int) -> None:
    accelerator = Accelerator(cpu=True, log_with=TrackioTracker())
    accelerator.init_trackers(project, config={"world_size": accelerator.num_processes})
    torch.manual_seed(0)
    x = torch.randn(batches * 8 * accelerator.num_processes, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    logged = []
    for step, (xb, yb) in enumerate(loader):
        loss = torch.nn.functional.mse_loss(model(xb), yb)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        mean = accelerator.gather(loss.detach()).mean()  # a collective: every rank takes part
        accelerator.log({"train": {"loss": mean}}, step=step)
        logged.append(mean.item())
    client = accelerator.get_tracker("trackio", unwrap=True)
    report = {
        "rank": accelerator.process_index,
        "pid": os.getpid(),
        "world": [accelerator.num_processes, str(accelerator.distributed_type)],
        "run": client.name if isinstance(client, TrackioClient) else None,
        "clients": sum(type(o) is TrackioClient for o in gc.get_objects()),
        "losses": logged,
    }
    # end_training() finishes the tracker on rank 0 and then destroys the group on each rank,
    # whenever that rank gets there; leave the group together first (see teardown.py).
    leave_process_group()
    accelerator.end_training()
    (out / f"rank{report['rank']}.json").write_text(json.dumps(report))
    end_process()


if __name__ == "__main__":
    watchdog()
    main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 10)
