"""What system metrics cost: ``log()`` with the sampler on and off, and the CPU time of a sample.

    python bench/system.py            # 3 rounds, about 3 minutes on 2 cores
    python bench/system.py --quick    # 1 small round: a smoke test

The same machinery as ``bench.py`` (its own ``trackio show``, one fresh ``workload.py`` process
per measurement, orders swapped every round): ``log()`` flat out and at 1,000/s with our sampler
off and on (sampling every ``--interval`` s, far more often than the default 10 s, so that samples
fall inside the measured loop), the cold start with each setting, and the CPU time one sample
takes, ours beside trackio's own CPU/GPU monitors. Prints a Markdown table of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent)]  # tests.harness

from measure import TOKEN, Bench, Child, Server  # noqa: E402
from workload import RESULT  # noqa: E402

from tests.harness import TrackioServer  # noqa: E402

SETTINGS = {"off": {"system_metrics": False}, "on": {"system_metrics": True}}


@dataclass
class SamplerBench(Bench):
    """``Bench`` whose workloads get ``extra`` spec keys (the sampler on or off)."""

    extra: dict[str, Any] = field(default_factory=dict)

    def spec(self, client: str, scenario: str, url: str | None, **extra: Any) -> dict[str, Any]:
        return super().spec(client, scenario, url, **{**self.extra, **extra})

    def sampler(self, client: str, samples: int) -> dict[str, Any]:
        spec = self.spec(client, "sampler", None, samples=samples, gap=0.2)
        with self.child(spec) as child:
            deadline = time.monotonic() + 60 + samples * 0.5
            result = child.expect(RESULT, deadline)
            child.wait(deadline)
        return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--interval", type=float, default=0.5, help="seconds between samples (0.5)")
    p.add_argument("--samples", type=int, default=50, help="samples timed per client (50)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path, help="write every raw measurement here")
    args = p.parse_args()
    bench_args = argparse.Namespace(
        points=20_000, slow_points=5_000, slow_rate=1_000.0, delay=0.0, poll=0.05
    )
    if args.quick:
        args.rounds, args.samples = 1, 10
        bench_args.points, bench_args.slow_points = 2_000, 1_000
    root = Path(tempfile.mkdtemp(prefix="trackio-bench-system-"))
    server = TrackioServer(root / "server", token=TOKEN)
    raw: dict[str, list[dict[str, Any]]] = {}
    try:
        server.start()
        bench = SamplerBench(bench_args, Server(server), root)
        for round_no in range(args.rounds):
            order = ["off", "on"] if round_no % 2 == 0 else ["on", "off"]
            for setting in order:
                bench.extra = {**SETTINGS[setting], "system_interval": args.interval}
                for name, measure in (("flat", bench.cost), ("paced", bench.paced)):
                    raw.setdefault(f"{name}-{setting}", []).append(measure("ours"))
                bench.extra = SETTINGS[setting]  # the default interval
                raw.setdefault(f"cold-{setting}", []).append(bench.cold("ours"))
            bench.extra = {}
            for client in ("ours", "trackio"):
                raw.setdefault(f"sample-{client}", []).append(bench.sampler(client, args.samples))
            brief = {
                k: round(v[-1].get("p50_us", v[-1].get("wall_s", 0)), 2) for k, v in raw.items()
            }
            print(f"round {round_no + 1}/{args.rounds}: {brief}", file=sys.stderr)
    finally:
        for child in list(Child.live):
            child.kill()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} at the end; {os.cpu_count()} CPUs", file=sys.stderr)
    print(table(raw, args))
    return 0


def table(raw: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> str:
    def median(key: str, field_name: str) -> float:
        return statistics.median(r[field_name] for r in raw[key])

    lines = [
        f"{args.rounds} round(s); sampler every {args.interval} s in the log() rows",
        "",
        "| Measurement (median of rounds) | sampler off | sampler on | on/off |",
        "|---|---:|---:|---:|",
    ]
    for name, label in (("flat", "flat out"), ("paced", "1,000/s")):
        for stat in ("p50_us", "p99_us", "max_us"):
            off, on = median(f"{name}-off", stat), median(f"{name}-on", stat)
            lines.append(
                f"| log() {stat[:-3]}, {label} | {off:,.1f} µs | {on:,.1f} µs | {on / off:.2f} |"
            )
    off, on = median("cold-off", "wall_s"), median("cold-on", "wall_s")
    lines.append(
        f"| cold start (import, init, 1 point, finish) | {off:.2f} s | {on:.2f} s "
        f"| {on / off:.2f} |"
    )
    lines += [
        "",
        "| One system sample (median of rounds) | trackio-integrations | trackio | ours/trackio |",
        "|---|---:|---:|---:|",
    ]
    for stat, label, unit in (
        ("cpu_ms_p50", "CPU time, median", "ms"),
        ("cpu_ms_mean", "CPU time, mean", "ms"),
        ("wall_ms_p50", "wall time, median", "ms"),
        ("metrics", "metrics per sample", ""),
    ):
        ours, theirs = median("sample-ours", stat), median("sample-trackio", stat)
        lines.append(
            f"| {label} | {ours:,.2f} {unit} | {theirs:,.2f} {unit} | {ours / theirs:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
