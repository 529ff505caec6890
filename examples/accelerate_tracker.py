"""Train a tiny model with Accelerate and log it with TrackioTracker.

python examples/accelerate_tracker.py
Logs to TRACKIO_SERVER_URL (with TRACKIO_WRITE_TOKEN) if set, else to local storage.
"""

from __future__ import annotations

from typing import Any

import torch
from accelerate import Accelerator

from trackio_integrations import TrackioTracker

CONFIG = {"inputs": 8, "hidden": 16, "lr": 0.02, "batch_size": 32}


def main(
    project: str = "demo-accelerate", name: str | None = None, steps: int = 60
) -> dict[str, Any]:
    # No project here: TrackioTracker takes the one given to init_trackers, like the built-ins.
    accelerator = Accelerator(cpu=True, log_with=TrackioTracker(name=name))
    accelerator.init_trackers(project, config={**CONFIG, "steps": steps})

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(CONFIG["inputs"], CONFIG["hidden"]),
        torch.nn.Tanh(),
        torch.nn.Linear(CONFIG["hidden"], 1),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=CONFIG["lr"])
    model, optimizer = accelerator.prepare(model, optimizer)
    weights = torch.randn(CONFIG["inputs"], 1) / 2

    losses = []
    for step in range(steps):
        x = torch.randn(CONFIG["batch_size"], CONFIG["inputs"], device=accelerator.device)
        loss = torch.nn.functional.mse_loss(model(x), torch.tanh(x @ weights.to(x.device)))
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        # tensors are fine; the nested dict is stored as train/loss and train/weight_norm
        weight_norm = sum(p.detach().norm() for p in model.parameters())
        accelerator.log({"train": {"loss": loss, "weight_norm": weight_norm}}, step=step)
        losses.append(loss.item())

    run = accelerator.get_tracker("trackio", unwrap=True)
    accelerator.end_training()
    return {
        "framework": "Accelerate",
        "project": project,
        "run": run.name,
        "metric": "train/loss",
        "values": losses,
    }


if __name__ == "__main__":
    summary = main()
    print(f"Logged {len(summary['values'])} points to run {summary['run']} of {summary['project']}")
