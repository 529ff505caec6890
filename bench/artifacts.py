"""What logging checkpoints costs a training loop, and what a 1 GB upload costs in memory.

    python bench/artifacts.py            # 2 x 8 checkpoints of 200 MB and a 1 GB upload, ~3 min
    python bench/artifacts.py --quick    # small and short: a smoke test

Step time: a loop of cheap training steps (a few small matmuls on one thread and one ``log()``
each) against a local ``trackio show``, in a fresh interpreter. It alternates two windows, so
that both see the same machine (other processes come and go; the two cores are shared):
``quiet``, ``--steps`` steps with nothing in flight; ``upload``, a new 200 MB checkpoint logged
with ``log_artifact`` (that call is part of the first step's time) and steps until the version is
recorded on the server: hashed, uploaded, committed. Each window pair is one round; the table
shows medians over rounds of each window's p50 and p99. Writing the checkpoint file is the
training script's own I/O and is not timed. A second interpreter does the same with
``TRACKIO_UPLOAD_MBPS`` set. The ratios are medians over rounds of (upload window / quiet window
of the same round). The server shares this machine's cores and parses every upload (a
Python multipart parser, then a copy and a hash): ``--server-nice 10`` stands it in for a
server on another machine; the default (0) charges its work to the training loop too.

Memory: a fresh interpreter logs one 1 GB file (sparse: no disk used on this side) and samples
its ``VmRSS`` every 20 ms until the version is recorded; ``VmHWM`` gives the peak.

Everything runs in a temporary folder that is deleted at the end (``--keep`` to keep it).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO)]

from tests.harness import TrackioServer  # noqa: E402

MB = 1_000_000
PYTHONPATH = os.environ.get("PYTHONPATH", "")


# --- the child: one measurement in a fresh interpreter ---------------------------------------------


def steps_child(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    from trackio_integrations import TrackioClient

    torch.set_num_threads(1)
    path = Path(spec["file"])
    device = spec.get("device", "cpu")  # on a GPU the step waits for its kernels (float(...))
    x = torch.randn(256 if device == "cpu" else 2048, 256 if device == "cpu" else 2048)
    x = (x / x.shape[0] ** 0.5).to(device)
    run = TrackioClient(spec["project"], spec["run"], server_url=spec["url"])
    step = 0

    def train_step(extra: Any = None) -> float:
        nonlocal step
        started = time.perf_counter()
        if extra is not None:
            extra()
        y = x
        for _ in range(12):
            y = torch.tanh(y @ x)
        run.log({"train/loss": float(y[0, 0]), "train/step": step}, step=step)
        step += 1
        return time.perf_counter() - started

    def log_checkpoint(out: list[Any]) -> None:
        started = time.perf_counter()
        out.append(run.log_artifact(path, name="model"))
        out.append(time.perf_counter() - started)

    for _ in range(200):  # warm up: imports, allocator, the sender's first cycle
        train_step()
    rounds = []
    for r in range(spec["rounds"]):
        quiet = [train_step() for _ in range(spec["steps"])]
        with open(path, "r+b") as f:  # a new checkpoint: the script's own write, not timed
            f.write(r.to_bytes(8, "little") * 512)
        logged: list[Any] = []
        cpu, main_cpu, started = time.process_time(), time.thread_time(), time.monotonic()
        upload = [train_step(functools.partial(log_checkpoint, logged))]
        art = logged[0]
        while not art.done:
            upload.append(train_step())
        rounds.append(
            {
                "quiet": quiet,
                "upload": upload,
                "seconds": time.monotonic() - started,
                "recorded": art.record is not None,
                "call": logged[1],  # log_artifact itself, on the training thread
                # CPU of this process's other threads (uploader, sender) during the window
                "background_cpu": (time.process_time() - cpu) - (time.thread_time() - main_cpu),
            }
        )
    run.finish()
    return {"rounds": rounds}


def rss_child(spec: dict[str, Any]) -> dict[str, Any]:
    from trackio_integrations import TrackioClient

    def status(key: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        return 0

    run = TrackioClient(spec["project"], "one-gigabyte", server_url=spec["url"])
    run.log({"x": 1}, step=0)
    run.flush(10)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = status("VmRSS")
    started = time.monotonic()
    art = run.log_artifact(spec["file"], name="big", type="model")
    samples = []
    while art is not None and not art.done:
        samples.append(status("VmRSS") - base)
        time.sleep(0.02)
    took = time.monotonic() - started
    peak = status("VmHWM") - base
    run.finish()
    return {
        "ok": art is not None and art.record is not None,
        "seconds": took,
        "rss_growth_max": max(samples or [0]),
        "rss_growth_median": statistics.median(samples or [0]),
        "hwm_growth": peak,
        "samples": len(samples),
    }


# --- the parent ----------------------------------------------------------------------------------


def child(kind: str, spec: dict[str, Any], env: dict[str, str], timeout: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, json.dumps(spec)],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), PYTHONPATH))),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def cpus(spec: str) -> set[int]:
    """``"0"``, ``"0,1"`` or ``"8-15"``."""
    out: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


def pin(where: set[int]) -> None:
    try:
        os.sched_setaffinity(0, where)
    except OSError as exc:  # a sandbox may refuse: the table then says what it asked for
        print(f"cannot pin to CPUs {sorted(where)}: {exc}", file=sys.stderr)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=8, help="window pairs (checkpoints) per mode")
    p.add_argument("--steps", type=int, default=400, help="steps of a quiet window")
    p.add_argument("--checkpoint-mb", type=int, default=200)
    p.add_argument("--cap", type=float, default=50.0, help="TRACKIO_UPLOAD_MBPS of 'capped'")
    p.add_argument("--big-mb", type=int, default=1000, help="the file of the memory test")
    p.add_argument("--server-nice", type=int, default=0, help="nice value of trackio show")
    p.add_argument("--server-cpus", help="CPUs of trackio show, e.g. 1 (default: all)")
    p.add_argument("--client-cpus", help="CPUs of the training process, e.g. 0 (default: all)")
    p.add_argument("--device", default="cpu", help="where a step's matmuls run: cpu or cuda")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.steps, args.checkpoint_mb, args.big_mb = 2, 100, 20, 100

    home = Path(tempfile.mkdtemp(prefix="trackio-artifact-bench-"))
    server = TrackioServer(home / "trackio")
    everywhere = os.sched_getaffinity(0)
    if args.server_cpus:  # the server and its threads inherit this process's CPUs
        pin(cpus(args.server_cpus))
    server.start()
    pin(cpus(args.client_cpus) if args.client_cpus else everywhere)
    if args.server_nice and server.proc is not None:  # its own session: the group is the server
        os.setpriority(os.PRIO_PGRP, server.proc.pid, args.server_nice)
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    try:
        checkpoint = home / "checkpoint.bin"
        checkpoint.write_bytes(os.urandom(args.checkpoint_mb * MB))
        load = [os.getloadavg()[0]]
        modes = {"uncapped": {}, "capped": {"TRACKIO_UPLOAD_MBPS": str(args.cap)}}
        for mode, env in modes.items():
            spec = {
                "project": "artifact-bench",
                "run": mode,
                "url": server.write_url,
                "file": str(checkpoint),
                "rounds": args.rounds,
                "steps": args.steps,
                "device": args.device,
            }
            results[mode] = child("steps", spec, env, timeout=900)["rounds"]
            shutil.rmtree(home / "trackio" / "artifacts", ignore_errors=True)  # disk
        load.append(os.getloadavg()[0])
        big = home / "big.bin"
        with open(big, "wb") as f:
            f.truncate(args.big_mb * MB)
        spec = {"project": "artifact-bench", "url": server.write_url, "file": str(big)}
        results.update(rss=child("rss", spec, {}, timeout=900), load=load)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    print(report(results, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    def med(mode: str, window: str, q: float) -> float:
        return statistics.median(percentile(r[window], q) for r in results[mode])

    def ratio(mode: str, q: float) -> float:
        return statistics.median(
            percentile(r["upload"], q) / percentile(r["quiet"], q) for r in results[mode]
        )

    lines = [
        f"{args.rounds} rounds per mode, a {args.checkpoint_mb} MB checkpoint each, steps on "
        f"{args.device}; server at "
        f"nice {args.server_nice}; CPUs: server {args.server_cpus or 'all'}, training process "
        f"{args.client_cpus or 'all'}; load average "
        f"{results['load'][0]:.2f} at start, {results['load'][1]:.2f} at end.",
        "",
        "| Step time (median of rounds) | nothing in flight | while a checkpoint uploads | "
        "ratio | same, capped at " + f"{args.cap:g} MB/s | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for q, label in ((0.5, "p50"), (0.99, "p99")):
        quiet = med("uncapped", "quiet", q)
        upload = med("uncapped", "upload", q)
        quiet_c = med("capped", "quiet", q)
        upload_c = med("capped", "upload", q)
        lines.append(
            f"| {label} | {quiet * 1e3:.2f} ms | {upload * 1e3:.2f} ms | "
            f"{ratio('uncapped', q):.2f} | {upload_c * 1e3:.2f} ms (quiet {quiet_c * 1e3:.2f}) | "
            f"{ratio('capped', q):.2f} |"
        )
    for mode in ("uncapped", "capped"):
        rounds = results[mode]
        lines.append(
            f"| {mode}: upload window (log_artifact to recorded), median | | "
            f"{statistics.median(r['seconds'] for r in rounds):.1f} s, "
            f"{statistics.median(len(r['upload']) for r in rounds):.0f} steps | | "
            f"{sum(r['recorded'] for r in rounds)}/{len(rounds)} recorded | |"
        )
    calls = [r["call"] for mode in ("uncapped", "capped") for r in results[mode]]
    cpu = [r["background_cpu"] for mode in ("uncapped", "capped") for r in results[mode]]
    lines.append(
        f"| the `log_artifact` call on the training thread, median / max | | "
        f"{statistics.median(calls) * 1e6:.0f} / {max(calls) * 1e6:.0f} µs | | | |"
    )
    lines.append(
        f"| CPU of the client's background threads per {args.checkpoint_mb} MB checkpoint "
        f"(hash, send), median | | {statistics.median(cpu):.2f} s | | | |"
    )
    rss = results["rss"]
    lines += [
        "",
        f"One {args.big_mb / 1000:g} GB file logged and uploaded in {rss['seconds']:.1f} s "
        f"({args.big_mb / rss['seconds']:.0f} MB/s, recorded: {rss['ok']}): RSS growth while it "
        f"went up: median {rss['rss_growth_median'] / 2**20:.1f} MiB, largest sample "
        f"{rss['rss_growth_max'] / 2**20:.1f} MiB, peak (VmHWM) {rss['hwm_growth'] / 2**20:.1f} "
        f"MiB ({rss['samples']} samples).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        spec = json.loads(sys.argv[3])
        result = steps_child(spec) if sys.argv[2] == "steps" else rss_child(spec)
        print(json.dumps(result))
    else:
        main()
