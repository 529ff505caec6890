"""What logging checkpoints costs a training loop, and what a 1 GB upload costs in memory.

    python bench/artifacts.py            # 3 interleaved rounds of 3 modes, ~2 minutes on 2 cores
    python bench/artifacts.py --quick    # 1 short round: a smoke test

Step time: a loop of cheap training steps (a few small matmuls on one thread and one ``log()``
each) runs for ``--seconds`` in a fresh interpreter per mode and round, against a local ``trackio
show``. Modes: ``none`` (no checkpoints), ``checkpoints`` (a 200 MB checkpoint logged with
``log_artifact`` every ``--every`` steps, each with new content), ``capped`` (the same with
``TRACKIO_UPLOAD_MBPS``). The step that writes a checkpoint file is not timed (that is the
training script's own I/O); the ``log_artifact`` call is. The modes take turns going first.

Memory: a fresh interpreter logs one 1 GB file (sparse: no disk used on this side) and samples
its ``VmRSS`` every 20 ms until the version is recorded; ``VmHWM`` gives the peak.

Everything runs in a temporary folder that is deleted at the end (``--keep`` to keep it).
"""

from __future__ import annotations

import argparse
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


# --- the child: one measurement in a fresh interpreter ---------------------------------------------


def steps_child(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    from trackio_integrations import TrackioClient

    torch.set_num_threads(1)
    files = [Path(p) for p in spec["files"]]
    x = torch.randn(256, 256)
    run = TrackioClient(spec["project"], spec["run"], server_url=spec["url"])
    times: list[float] = []
    logged = []
    step = 0
    end = time.monotonic() + spec["seconds"]
    while time.monotonic() < end:
        if spec["checkpoints"] and step and step % spec["every"] == 0:
            path = files[(step // spec["every"]) % len(files)]
            with open(path, "r+b") as f:  # the training script writes its checkpoint: not timed
                f.write(step.to_bytes(8, "little") * 512)
            started = time.perf_counter()
            logged.append(run.log_artifact(path, name="model", type="model"))
        else:
            started = time.perf_counter()
        y = x
        for _ in range(12):
            y = torch.tanh(y @ x)
        run.log({"train/loss": float(y[0, 0]), "train/step": step}, step=step)
        times.append(time.perf_counter() - started)
        step += 1
    run.finish(timeout=10, artifact_timeout=120)
    recorded = sum(1 for a in logged if a is not None and a.record is not None)
    return {"times": times, "logged": len(logged), "recorded": recorded}


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
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=7.0, help="training loop per mode and round")
    p.add_argument("--every", type=int, default=500, help="steps between checkpoints")
    p.add_argument("--checkpoint-mb", type=int, default=200)
    p.add_argument("--cap", type=float, default=50.0, help="TRACKIO_UPLOAD_MBPS of 'capped'")
    p.add_argument("--big-mb", type=int, default=1000, help="the file of the memory test")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.checkpoint_mb, args.big_mb = 1, 3.0, 20, 100

    home = Path(tempfile.mkdtemp(prefix="trackio-artifact-bench-"))
    server = TrackioServer(home / "trackio")
    server.start()
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    try:
        files = []
        for i in range(4):  # checkpoints take turns, so a file is not rewritten while queued
            path = home / f"ckpt{i}.bin"
            path.write_bytes(os.urandom(args.checkpoint_mb * MB))
            files.append(str(path))
        modes = {"none": {}, "checkpoints": {}, "capped": {"TRACKIO_UPLOAD_MBPS": str(args.cap)}}
        rounds: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
        load = [os.getloadavg()[0]]
        for r in range(args.rounds):
            order = list(modes)[r % 3 :] + list(modes)[: r % 3]
            for mode in order:
                spec = {
                    "project": "artifact-bench",
                    "run": f"{mode}-{r}",
                    "url": server.write_url,
                    "files": files,
                    "seconds": args.seconds,
                    "every": args.every,
                    "checkpoints": mode != "none",
                }
                out = child("steps", spec, modes[mode], timeout=args.seconds + 300)
                times = out.pop("times")
                out.update(
                    steps=len(times), p50=percentile(times, 0.5), p99=percentile(times, 0.99)
                )
                rounds[mode].append(out)
                print(f"round {r} {mode}: {out}", file=sys.stderr)
                shutil.rmtree(home / "trackio" / "artifacts", ignore_errors=True)  # disk
        load.append(os.getloadavg()[0])
        big = home / "big.bin"
        with open(big, "wb") as f:
            f.truncate(args.big_mb * MB)
        rss = child(
            "rss",
            {"project": "artifact-bench", "url": server.write_url, "file": str(big)},
            {},
            timeout=900,
        )
        results.update(rounds=rounds, rss=rss, load=load)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    print(report(results, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    rounds = results["rounds"]

    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in rounds[mode])

    lines = [
        f"{args.rounds} round(s) of {args.seconds:g} s per mode; a {args.checkpoint_mb} MB "
        f"checkpoint every {args.every} steps; load average {results['load'][0]:.2f} at start, "
        f"{results['load'][1]:.2f} at end.",
        "",
        "| Measurement (median of rounds) | no checkpoints | checkpoints | ratio | "
        f"checkpoints, {args.cap:g} MB/s cap | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in (("p50", "step time p50"), ("p99", "step time p99")):
        base = med("none", key)
        lines.append(
            f"| {label} | {base * 1e3:.2f} ms | {med('checkpoints', key) * 1e3:.2f} ms | "
            f"{med('checkpoints', key) / base:.2f} | {med('capped', key) * 1e3:.2f} ms | "
            f"{med('capped', key) / base:.2f} |"
        )
    logged = {m: sum(r["logged"] for r in rounds[m]) for m in rounds}
    recorded = {m: sum(r["recorded"] for r in rounds[m]) for m in rounds}
    lines.append(
        f"| checkpoints logged / recorded on the server | | {logged['checkpoints']} / "
        f"{recorded['checkpoints']} | | {logged['capped']} / {recorded['capped']} | |"
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
