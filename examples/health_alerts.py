"""System metrics and training-health alerts, on a tiny Accelerate loop that goes wrong twice.

python examples/health_alerts.py
Logs to TRACKIO_SERVER_URL (with TRACKIO_WRITE_TOKEN) if set, else to local storage.

The machine is sampled every half second (the System Metrics tab); a mislabelled batch at step 40
makes the loss spike (a ``warn``), a corrupt batch at step 60 makes it NaN (an ``error``; the loop
skips that update, as a gradient scaler would), and the script raises an ``info`` alert at the end
(the Alerts & Reports tab). Set TRACKIO_WEBHOOK_URL to get the three in Slack or Discord too.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from accelerate import Accelerator

from trackio_integrations import TrackioTracker

CONFIG = {"inputs": 8, "hidden": 16, "lr": 0.02, "batch_size": 32}
SPIKE_AT, NAN_AT = 40, 60


def main(project: str = "demo-health", name: str | None = None, steps: int = 80) -> dict[str, Any]:
    tracker = TrackioTracker(name=name, system_interval=0.5)
    accelerator = Accelerator(cpu=True, log_with=tracker)
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
        y = torch.tanh(x @ weights.to(x.device))
        if step == SPIKE_AT:
            y = y * 40  # a mislabelled batch
        if step == NAN_AT:
            x[0, 0] = float("nan")  # a corrupt sample
        loss = torch.nn.functional.mse_loss(model(x), y)
        if torch.isfinite(loss):
            accelerator.backward(loss)
            optimizer.step()
        optimizer.zero_grad()
        accelerator.log({"train": {"loss": loss}}, step=step)
        losses.append(loss.item())
        time.sleep(0.1)  # a step of a real model takes a while: the sampler runs meanwhile

    tracker.alert("Training finished", f"final train/loss {losses[-1]:.4f}", level="info")
    run = accelerator.get_tracker("trackio", unwrap=True)
    accelerator.end_training()
    return {
        "framework": "Accelerate",
        "project": project,
        "run": run.name,
        "metric": "train/loss",
        "values": losses,
        "alerts": ["Loss spike in train/loss", "Non-finite train/loss", "Training finished"],
        "system": True,
    }


if __name__ == "__main__":
    summary = main()
    print(f"Logged {len(summary['values'])} points to run {summary['run']} of {summary['project']}")
