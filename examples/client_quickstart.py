"""Log a short run with the plain client: to TRACKIO_SERVER_URL if set, else to local storage.

python examples/client_quickstart.py
"""

from __future__ import annotations

import math
import random
from typing import Any

from trackio_integrations import TrackioClient


def main(project: str = "demo-client", name: str | None = None, steps: int = 60) -> dict[str, Any]:
    losses = []
    with TrackioClient(project, name, config={"lr": 0.1, "steps": steps}) as run:
        for step in range(steps):
            loss = 2.0 * math.exp(-step / 20) + random.uniform(0, 0.05)
            losses.append(loss)
            run.log({"train/loss": loss, "train/lr": 0.1 * (1 - step / steps)}, step=step)
    return {
        "framework": "TrackioClient",
        "project": project,
        "run": run.name,
        "metric": "train/loss",
        "values": losses,
    }


if __name__ == "__main__":
    summary = main()
    print(f"Logged {len(summary['values'])} points to run {summary['run']} of {summary['project']}")
