"""Our client against trackio's own, side by side, on the same local ``trackio show`` server.

    python bench/bench.py                 # 5 rounds, about 6 minutes on 2 cores
    python bench/bench.py --quick         # 1 small round, < 1 minute: a smoke test
    python bench/bench.py --json out.json # also write every raw measurement, and the machine

The benchmark starts its own server (free loopback port, temporary TRACKIO_DIR, known write
token). Every measurement runs in a fresh interpreter per client per round (``workload.py``), and
the two clients take turns going first from one round to the next. Printed: medians over rounds
and our/trackio ratios, as a Markdown table. docs/performance.md says what each row
means; ``make bench`` saves the run in bench/results.json and renders that section from it
(``report.py``). Exit status 1 when a measurement failed or our client lost, duplicated or could
not finish delivering a point.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent)]  # tests.harness

from measure import CLIENTS, DEFAULT, MEASUREMENTS, REPO, TOKEN, Bench, Child, Server  # noqa: E402
from report import notes, problems, table  # noqa: E402

from tests.harness import TrackioServer  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=5, help="rounds of every measurement (5)")
    p.add_argument("--quick", action="store_true", help="1 small round: a smoke test, < 1 min")
    p.add_argument("--json", type=Path, help="write the raw results here")
    p.add_argument(
        "--only",
        help=f"comma-separated subset of: {','.join(MEASUREMENTS)} (default: all but outage_start)",
    )
    p.add_argument("--points", type=int, default=20_000, help="points for cost and delivery")
    p.add_argument("--slow-points", type=int, default=5_000, help="points behind the slow proxy")
    p.add_argument("--slow-rate", type=float, default=1_000, help="points/s behind the proxy")
    p.add_argument("--delay", type=float, default=0.3, help="proxy latency per request, s")
    p.add_argument(
        "--outage-points", type=int, default=600_000, help="10 min at 1,000 points/s (600,000)"
    )
    p.add_argument("--outage-rounds", type=int, help="rounds of the outages (default: --rounds)")
    p.add_argument("--rate-seconds", type=float, default=5.0, help="seconds per rate in rates")
    p.add_argument("--trainer-steps", type=int, default=600, help="steps of the Trainer runs")
    p.add_argument("--poll", type=float, default=0.05, help="server poll period in delivery, s")
    p.add_argument("--max-minutes", type=float, default=15, help="start no round after this")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds = 1
        args.points = min(args.points, 2_000)
        args.slow_points = min(args.slow_points, 1_000)
        args.outage_points = min(args.outage_points, 60_000)
        args.rate_seconds = min(args.rate_seconds, 0.5)
        args.trainer_steps = min(args.trainer_steps, 30)
    if args.outage_rounds is None:
        args.outage_rounds = args.rounds
    args.only = args.only.split(",") if args.only else DEFAULT
    unknown = set(args.only) - set(MEASUREMENTS)
    if unknown:
        p.error(f"unknown measurement(s): {', '.join(sorted(unknown))}")
    return args


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """Ctrl+C, SIGTERM and SIGHUP end the run through every ``finally`` (even when SIGINT was
    inherited as ignored, as it is for a background job of a script)."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, stop) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def environment() -> dict[str, Any]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return run.stdout.strip() if run.returncode == 0 else ""

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "?",
        "memory_gib": round(
            int((_proc_field("/proc/meminfo", "MemTotal") or "0 kB").split()[0]) / 2**20, 1
        ),
        "filesystem": _filesystem(Path(tempfile.gettempdir())),
        "trackio": version("trackio"),
        "trackio_integrations": version("trackio-integrations"),
        "commit": git("rev-parse", "--short", "HEAD") or "?",
        # code changed since that commit (not the results and the page this run rewrites)
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", *_RENDERED)),
    }


_RENDERED = (":!bench/results.json", ":!docs/performance.md")


def _proc_field(path: str, name: str) -> str | None:
    """``name: value`` from a /proc file (Linux); None elsewhere."""
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        pass
    return None


def _filesystem(path: Path) -> str:
    """The file system type the spools and buffers were written to (from /proc/mounts)."""
    best, kind = "", "?"
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                point = fields[1]
                if str(path.resolve()).startswith(point) and len(point) > len(best):
                    best, kind = point, fields[2]
    except (OSError, IndexError):
        pass
    return kind


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="trackio-bench-"))
    started, load_at_start = time.monotonic(), os.getloadavg()
    deadline = started + args.max_minutes * 60
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        m: {c: [] for c in CLIENTS} for m in args.only
    }
    trackio_server = TrackioServer(root / "server", token=TOKEN)
    server = Server(trackio_server)
    try:
        print(f"Starting trackio show on {trackio_server.url} ...", file=sys.stderr)
        trackio_server.start()
        bench = Bench(args, server, root)
        for round_no in range(args.rounds):
            if time.monotonic() > deadline:
                print(f"--max-minutes reached: stopping after {round_no} rounds", file=sys.stderr)
                break
            order = CLIENTS if round_no % 2 == 0 else CLIENTS[::-1]
            for measurement in args.only:
                if measurement.startswith("outage") and round_no >= args.outage_rounds:
                    continue
                for client in order:
                    t = time.monotonic()
                    try:
                        result = MEASUREMENTS[measurement](bench, client)
                    except Exception as exc:  # one failed measurement must not lose the rest
                        result = {"error": f"{type(exc).__name__}: {exc}"}
                        for child in list(Child.live):
                            child.kill()
                    result["order"] = order.index(client)
                    raw[measurement][client].append(result)
                    print(
                        f"round {round_no + 1}/{args.rounds} {measurement:<10} {client:<8} "
                        f"{time.monotonic() - t:5.1f} s  {_brief(measurement, result)}",
                        file=sys.stderr,
                    )
    finally:
        for child in list(Child.live):
            child.kill()
        trackio_server.stop()
        server.http.close()
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    env = environment()
    env["loadavg_start"], env["loadavg_end"] = load_at_start, os.getloadavg()
    env["duration_s"] = round(time.monotonic() - started, 1)
    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    return {"environment": env, "parameters": params, "raw": raw}


def _brief(measurement: str, r: dict[str, Any]) -> str:
    if "error" in r:
        return "FAILED: " + r["error"][:200]
    keys = {
        "cost": ("p50_us", "p99_us", "max_us"),
        "slow": ("p50_us", "p99_us", "max_us"),
        "deliver": ("logged_s", "delivered_s", "finish_returned_s"),
        "paced": ("p50_us", "p99_us", "max_us"),
        "outage": ("log_s", "rss_growth_mib", "peak_growth_mib", "kept_points"),
        "outage_start": ("log_s", "rss_growth_mib", "peak_growth_mib", "kept_points"),
        "cold": ("wall_s",),
        "cold_local": ("wall_s",),
        "rates": (),
        "trainer": ("none_s", "runtime_s", "over_none"),
    }[measurement]
    parts = [f"{k}={r[k]:.2f}" if isinstance(r.get(k), float) else f"{k}={r.get(k)}" for k in keys]
    if isinstance(r.get("server"), dict):
        s = r["server"]
        parts.append(f"server={s['distinct_steps']}/{s['expected']}")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with interrupts_as_exceptions():
        try:
            results = run(args)
        except KeyboardInterrupt:
            print("interrupted: server and clients stopped", file=sys.stderr)
            return 130
    env = results["environment"]
    results["table"] = table(results["raw"], args)
    results["problems"] = failed = problems(results["raw"])
    results["notes"] = remarks = notes(results["raw"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(
        f"\ntrackio-integrations {env['trackio_integrations']} ({env['commit']}) vs trackio "
        f"{env['trackio']}; Python {env['python']}, {env['cpus']} CPUs, {args.rounds} round(s) "
        f"({args.outage_rounds} of the outage), {env['duration_s']:.0f} s; load average "
        f"{env['loadavg_start'][0]:.2f} at start, {env['loadavg_end'][0]:.2f} at end\n"
    )
    print(results["table"])
    if remarks:
        print("\nNotes:\n" + "\n".join(f"- {p}" for p in remarks))
    if failed:
        print("\nPROBLEMS (the run fails):\n" + "\n".join(f"- {p}" for p in failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
