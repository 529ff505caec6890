"""What ``trackio.log`` costs after ``install()``, beside ``TrackioClient.log`` and trackio's own.

    python bench/module_api.py              # 3 rounds of 20,000 points, about 1 minute on 2 cores
    python bench/module_api.py --quick      # 1 round of 2,000 points: a smoke test

Its own ``trackio show`` (free loopback port, temporary TRACKIO_DIR, known write token); each
measurement in a fresh interpreter, the order rotated every round. Measured: the wall time of the
``log()`` calls alone (two scalars each, a step given): p50, p99 and mean per call, each the
median over rounds; then ``finish()`` is timed apart. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent)]  # tests.harness

from tests.harness import REPO, TOKEN, TrackioServer  # noqa: E402

OPEN = {
    "TrackioClient.log": (
        "from trackio_integrations import TrackioClient\n"
        "run = TrackioClient(PROJECT, NAME, server_url=URL, system_metrics=False)\n"
        "log, finish = run.log, run.finish"
    ),
    "trackio.log after install()": (
        "import trackio_integrations; trackio_integrations.install()\n"
        "import trackio\n"
        "trackio.init(project=PROJECT, name=NAME, server_url=URL, auto_log_cpu=False, "
        "auto_log_gpu=False)\n"
        "log, finish = trackio.log, trackio.finish"
    ),
    "trackio.log (trackio's own)": (
        "import trackio\n"
        "trackio.init(project=PROJECT, name=NAME, server_url=URL, auto_log_cpu=False, "
        "auto_log_gpu=False, embed=False)\n"
        "log, finish = trackio.log, trackio.finish"
    ),
}

WORKLOAD = textwrap.dedent(
    """
    import json, os, sys, time
    PROJECT, NAME, URL, N = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    {open}
    clock, took = time.perf_counter_ns, []
    for step in range(N):
        before = clock()
        log({{"train/loss": 1.0 / (step + 1), "train/lr": 0.001}}, step=step)
        took.append(clock() - before)
    took.sort()
    started = time.perf_counter()
    finish()
    print(json.dumps({{
        "mean_us": sum(took) / N / 1e3, "p50_us": took[N // 2] / 1e3,
        "p99_us": took[N * 99 // 100] / 1e3, "finish_s": time.perf_counter() - started,
    }}))
    """
)


def measure(server: TrackioServer, variant: str, points: int, round_: int) -> dict[str, float]:
    code = WORKLOAD.format(open=OPEN[variant])
    name = f"{variant.split()[0].split('.')[0]}-{round_}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TRACKIO_WRITE_TOKEN": TOKEN}
    env.pop("TRACKIO_INTEGRATIONS", None)
    result = subprocess.run(
        [sys.executable, "-c", code, "bench-module-api", name, server.url, str(points)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{result.stderr[-2000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--points", type=int, default=20_000)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    rounds, points = (1, 2_000) if args.quick else (args.rounds, args.points)
    variants = list(OPEN)
    results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRACKIO_SPOOL_DIR"] = str(Path(tmp) / "spool")
        os.environ["TRACKIO_DIR"] = str(Path(tmp) / "client-trackio")
        server = TrackioServer(Path(tmp) / "server")
        server.start()
        try:
            for r in range(rounds):
                for variant in variants[r % 3 :] + variants[: r % 3]:  # who goes first rotates
                    results[variant].append(measure(server, variant, points, r))
        finally:
            server.stop()

    def median(variant: str, key: str) -> float:
        return statistics.median(m[key] for m in results[variant])

    ours = median("TrackioClient.log", "p50_us")
    print(
        f"| {points:,} points, median of {rounds} rounds | log() p50 | p50 vs TrackioClient.log "
        "| log() p99 | log() mean | finish() |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for v in variants:
        p50 = median(v, "p50_us")
        print(
            f"| {v} | {p50:.1f} µs | {p50 / ours:.2f}x | {median(v, 'p99_us'):.1f} µs "
            f"| {median(v, 'mean_us'):.1f} µs | {median(v, 'finish_s'):.2f} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
