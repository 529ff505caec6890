"""trackio's module style on this package: an agent-style loop that logs rewards and rollouts as
traces (the Traces tab), as TRL's GRPO does. Works without the trackio package installed; with it,
after ``trackio_integrations.install()``, the same code written ``import trackio`` runs here too.

python examples/trackio_api.py
"""

from __future__ import annotations

import random
from typing import Any

import trackio_integrations.api as trackio

QUESTIONS = ["2+2?", "3*3?", "10-4?", "7+5?"]
ANSWERS = {"2+2?": "4", "3*3?": "9", "10-4?": "6", "7+5?": "12"}


def main(
    project: str = "demo-trackio-api", name: str | None = None, steps: int = 20
) -> dict[str, Any]:
    rewards = []
    run = trackio.init(project=project, name=name, config={"policy": "toy", "steps": steps})
    for step in range(steps):
        question = random.choice(QUESTIONS)
        right = random.random() < 0.3 + 0.7 * step / steps  # the policy gets better
        answer = ANSWERS[question] if right else str(random.randint(0, 20))
        reward = 1.0 if answer == ANSWERS[question] else 0.0
        rewards.append(reward)
        trackio.log({"reward": reward})  # no step: the run's last step + 1
        if step % 5 == 4:  # a few rollouts, as the Traces tab shows them
            rollout = trackio.Trace(
                messages=[
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ],
                metadata={"reward": reward, "step": step},
            )
            trackio.log({"rollouts": [rollout]}, step=step)
    trackio.finish()
    return {
        "framework": "trackio API",
        "project": project,
        "run": run.name,
        "metric": "reward",
        "values": rewards,
        "traces": steps // 5,
    }


if __name__ == "__main__":
    summary = main()
    print(f"Logged {len(summary['values'])} points to run {summary['run']} of {summary['project']}")
