"""What the run's watcher costs and what it delivers: the figures of docs/architecture.md.

    TRACKIO_SERVER_URL=http://127.0.0.1:7860 TRACKIO_WRITE_TOKEN=... python bench/endings.py loop
    TRACKIO_WATCHER=0 ... python bench/endings.py loop     # the same without a watcher (before)
    ... python bench/endings.py kill                        # SIGKILL while logging flat out

``loop``: a tiny Trainer (600 steps or ``BENCH_STEPS``, a log every step, TrackioCallback) and then 20,000 plain
``log()`` calls; prints one JSON line: the Trainer's ``train_runtime``, ``log()``'s p50 in
microseconds, and the watcher's resident memory while it waits (kB, from /proc). Time the whole
command with and without ``TRACKIO_WATCHER=0``, paired, to see what the watcher adds to a run.

``kill``: a child logs 5,000 points as fast as it can and is SIGKILLed right after the last
``log()`` returned; prints the points missing on the server 15 s later (the goal is 0), points
stored twice, and the seconds from the kill to the "Run ended without finish()" alert.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def loop() -> None:
    from transformers import Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging

    sys.path[:0] = [str(REPO)]
    from examples.transformers_trainer import TokenData, tiny_model
    from trackio_integrations import TrackioCallback, TrackioClient

    hf_logging.set_verbosity_error()
    project = f"bench-endings-{uuid.uuid4().hex[:6]}"
    out = f"/tmp/bench-endings-{os.getpid()}"
    args = TrainingArguments(
        out,
        max_steps=int(os.environ.get("BENCH_STEPS", "600")),
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
    )
    callback = TrackioCallback(project, system_metrics=False)
    trainer = Trainer(
        model=tiny_model(), args=args, train_dataset=TokenData(256), callbacks=[callback]
    )
    runtime = trainer.train().metrics["train_runtime"]

    run = TrackioClient(project, system_metrics=False)
    times = []
    for step in range(20_000):
        start = time.perf_counter_ns()
        run.log({"loss": 1.0 / (step + 1), "lr": 0.001}, step=step)
        times.append(time.perf_counter_ns() - start)
    watcher = run._watcher
    rss = 0
    if watcher is not None and watcher._started.wait(5) and watcher.pid:
        rss = rss_kb(watcher.pid)
    run.finish()
    times.sort()
    print(
        json.dumps(
            {
                "watcher": os.environ.get("TRACKIO_WATCHER", "1"),
                "train_runtime_s": runtime,
                "log_p50_us": times[len(times) // 2] / 1000,
                "watcher_rss_kb": rss,
            }
        )
    )


KILLED = textwrap.dedent(
    """
    import sys
    from trackio_integrations import TrackioClient
    run = TrackioClient(sys.argv[1], name="killed", system_metrics=False)
    for step in range(5000):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    print("DONE", flush=True)
    import time; time.sleep(60)
    """
)


def kill() -> None:
    url = os.environ["TRACKIO_SERVER_URL"].split("?")[0]
    project = f"bench-kill-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TRACKIO_PROVENANCE": "0"}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, project], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "DONE"
    child.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    child.wait()

    def api(name: str, *args: object) -> list[dict[str, object]]:
        reply = httpx.post(f"{url}/api/{name}", json={"args": list(args)}, timeout=30)
        return list(reply.json()["data"] or [])

    alert_s = None
    while time.monotonic() - killed < 15.0:
        if alert_s is None and any(
            a["title"] == "Run ended without finish()" for a in api("get_alerts", project, "killed")
        ):
            alert_s = time.monotonic() - killed
        time.sleep(0.1)
    steps = [v["step"] for v in api("get_metric_values", project, "killed", "loss")]
    print(
        json.dumps(
            {
                "watcher": os.environ.get("TRACKIO_WATCHER", "1"),
                "points": 5000,
                "missing_after_15_s": len(set(range(5000)) - set(steps)),
                "stored_twice": len(steps) - len(set(steps)),
                "seconds_to_alert": alert_s,
            }
        )
    )


if __name__ == "__main__":
    {"loop": loop, "kill": kill}[sys.argv[1]]()
