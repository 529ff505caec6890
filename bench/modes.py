"""What one ``log()`` of 10 scalars costs in each mode: ``online``, ``offline``, ``disabled``.

    .venv/bin/python bench/modes.py [--points 20000] [--rounds 5] [--json out.json]

Each mode runs in a fresh interpreter (``--one``), so a sender thread, the spool's page cache and
garbage never leak from one mode into the next; ``online`` logs to a real ``trackio show`` on
loopback (started here), ``offline`` writes the spool only, ``disabled`` returns at once. The
number is the median over rounds of (time of ``points`` calls) / ``points``, in microseconds.
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

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
MODES = ("online", "offline", "disabled")
METRICS = [f"m{i}" for i in range(10)]


def one(mode: str, points: int, url: str | None, token: str | None) -> float:
    """Microseconds per ``log()`` in this interpreter (the child's side)."""
    from trackio_integrations import TrackioClient

    run = TrackioClient(
        "bench-modes",
        f"modes-{mode}",
        server_url=url,
        write_token=token,
        mode=mode,
        system_metrics=False,
    )
    for step in range(200):  # warm up: first calls fill caches
        run.log(dict.fromkeys(METRICS, 0.5), step=step)
    batch = [{name: step * 0.001 for name in METRICS} for step in range(points)]
    start = time.perf_counter()  # the calls only: the dicts are the caller's in every mode
    for step, metrics in enumerate(batch, 200):
        run.log(metrics, step=step)
    elapsed = time.perf_counter() - start
    run.finish(timeout=60)
    return elapsed / points * 1e6


def measure(points: int, rounds: int, url: str, token: str) -> dict[str, float]:
    """The median microseconds per ``log()`` of each mode, each round in a fresh interpreter."""
    found: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode in MODES:
            with tempfile.TemporaryDirectory() as spool:
                env = {**os.environ, "TRACKIO_SPOOL_DIR": spool, "PYTHONPATH": str(REPO)}
                env.pop("TRACKIO_MODE", None)
                command = [sys.executable, __file__, "--one", mode, "--points", str(points)]
                out = subprocess.run(
                    [*command, "--url", url, "--token", token],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=True,
                )
                found[mode].append(float(out.stdout.strip().splitlines()[-1]))
    return {mode: statistics.median(values) for mode, values in found.items()}


def table(result: dict[str, float], points: int, rounds: int) -> str:
    lines = [
        f"| mode | us per log() (10 scalars; median of {rounds}, {points} calls) |",
        "|---|---:|",
    ]
    lines += [f"| {mode} | {result[mode]:.2f} |" for mode in MODES]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--points", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", type=Path)
    p.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--token", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(one(args.one, args.points, args.url, args.token))
        return 0
    sys.path[:0] = [str(REPO)]
    from tests.harness import TrackioServer

    with tempfile.TemporaryDirectory() as data:
        server = TrackioServer(Path(data))
        server.start()
        try:
            result = measure(args.points, args.rounds, server.url, server.token)
        finally:
            server.stop()
    print(table(result, args.points, args.rounds))
    if args.json:
        args.json.write_text(json.dumps({"points": args.points, "rounds": args.rounds, **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
