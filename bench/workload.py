"""One benchmark measurement in a fresh interpreter: ``python bench/workload.py '<json spec>'``.

The parent (``bench.py``) starts one of these per client, per measurement, per round, so imports,
threads, allocator state and garbage never leak from one measurement into the next. The result is
one line ``BENCH-RESULT {json}`` on stdout (both libraries print their own chatter around it).

Spec keys: ``client`` ("ours" | "trackio"), ``scenario`` ("cost" | "deliver" | "outage" |
"cold" | "sampler"), ``url`` (server or proxy, ``None`` for local storage), ``token``,
``project``, ``name``, ``points``, ``rate`` (points/s, 0 = as fast as possible), ``warmup``,
``settle``, ``system_metrics`` / ``system_interval`` (ours; off unless ``default_monitors``),
``samples`` and ``gap`` (the sampler scenario).

Only the standard library is imported at the top: the cold start measures the library's import.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from array import array
from collections.abc import Callable
from typing import Any

T_START = time.perf_counter()  # before any library import: the cold start's zero

METRIC_NAMES = (
    "train/loss",
    "train/accuracy",
    "train/learning_rate",
    "train/grad_norm",
    "train/epoch",
    "train/tokens_per_second",
    "eval/loss",
    "eval/accuracy",
    "system/gpu_memory_gb",
    "system/step_time_s",
)
RESULT, READY = "BENCH-RESULT ", "BENCH-READY "

Log = Callable[..., None]


def point(i: int) -> dict[str, float]:
    """A point of 10 scalars whose values change every step, as a training loop's would."""
    x = float(i)
    return {name: x * 0.001 + k for k, name in enumerate(METRIC_NAMES)}


class Ours:
    """trackio_integrations.TrackioClient, as a user would open it."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from trackio_integrations import TrackioClient

        # Like trackio's CPU/GPU monitors, our system sampler runs only where the measurement
        # asks for it or for each library's defaults (the cold start).
        self.run = TrackioClient(
            spec["project"],
            spec.get("name"),
            server_url=spec.get("url"),
            write_token=spec.get("token"),
            system_metrics=spec.get("system_metrics", bool(spec.get("default_monitors"))),
            system_interval=spec.get("system_interval", 10.0),
        )
        self.name = self.run.name
        self.log: Log = self.run.log

    def flush(self, timeout: float) -> bool:
        return self.run.flush(timeout)

    def finish(self) -> bool:
        # The default finish timeout is 10 s; give delivery as long as trackio's finish (30 s).
        return self.run.finish(timeout=30.0)

    def pending(self) -> int | None:
        return self.run.pending


class Trackio:
    """trackio's own client (``trackio.init`` / ``trackio.log`` / ``trackio.finish``)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import trackio

        self.trackio = trackio
        kwargs: dict[str, Any] = {"project": spec["project"], "name": spec.get("name")}
        if spec.get("url"):
            # trackio takes the write token from the URL (or TRACKIO_WRITE_TOKEN).
            kwargs["server_url"] = f"{spec['url']}?write_token={spec['token']}"
        if not spec.get("default_monitors"):
            # Its CPU/GPU monitors log system metrics every 10 s; only log() traffic is measured.
            kwargs.update(auto_log_cpu=False, auto_log_gpu=False)
        self.run = trackio.init(**kwargs)
        self.name = self.run.name
        self.log = trackio.log

    def flush(self, timeout: float) -> bool:
        # trackio has no flush: wait until its queue is empty and no batch is in flight.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.run._queued_logs and self.run._sending_batch is None:
                return True
            time.sleep(0.02)
        return False

    def finish(self) -> bool:
        self.trackio.finish()
        return True

    def pending(self) -> int | None:
        return None  # not exposed


def open_client(spec: dict[str, Any]) -> Ours | Trackio:
    return Ours(spec) if spec["client"] == "ours" else Trackio(spec)


def memory() -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of this process, in KiB."""
    out = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0])
    return out


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so it gives the peak of what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


_BLOCK = bytes(16 * 1024)


def work() -> None:
    """A slice of a training step: native code that keeps the core busy with the GIL released.

    As torch ops do, so a background sender thread can run meanwhile. (time.sleep would let the
    core idle, which makes every call look slower; a pure-Python spin would hold the GIL, so
    any background thread would stall the loop for CPython's 5 ms switch interval.)
    """
    hashlib.sha256(_BLOCK)


def timed_logs(log: Log, start: int, count: int, rate: float) -> array[int]:
    """Call ``log`` ``count`` times, timing each call (ns); paced at ``rate``/s when rate > 0."""
    clock = time.perf_counter_ns
    durations = array("q", bytes(8 * count))
    period = int(1e9 / rate) if rate > 0 else 0
    t0 = clock()
    for i in range(count):
        metrics = point(start + i)
        if period:
            due = t0 + i * period
            while clock() < due:
                work()
        before = clock()
        log(metrics, step=start + i)
        durations[i] = clock() - before
    return durations


def summary(durations: array[int]) -> dict[str, float]:
    ordered = sorted(durations)
    n = len(ordered)

    def pct(p: float) -> float:
        return ordered[min(n - 1, int(p * n))] / 1000.0

    return {
        "p50_us": pct(0.50),
        "p90_us": pct(0.90),
        "p99_us": pct(0.99),
        "p999_us": pct(0.999),
        "max_us": ordered[-1] / 1000.0,
        "mean_us": sum(ordered) / n / 1000.0,
        "calls": n,
    }


def scenario_cost(spec: dict[str, Any]) -> dict[str, Any]:
    """log() cost (also used behind the 300 ms proxy, paced at spec["rate"])."""
    client = open_client(spec)
    durations = timed_logs(client.log, 0, spec["points"], spec.get("rate", 0))
    t = time.monotonic()
    finished = client.finish()
    return {
        **summary(durations),
        "run": client.name,
        "finish_s": time.monotonic() - t,
        "finish_ok": finished,
    }


def scenario_deliver(spec: dict[str, Any]) -> dict[str, Any]:
    """Log ``points`` as fast as possible; the parent polls the server for when all arrived."""
    client = open_client(spec)
    log, n = client.log, spec["points"]
    first = time.time()
    for i in range(n):
        log(point(i), step=i)
    logged = time.time()
    finished = client.finish()
    return {
        "run": client.name,
        "first_log_wall": first,
        "logged_s": logged - first,
        "finish_returned_s": time.time() - first,
        "finish_ok": finished,
    }


def scenario_outage(spec: dict[str, Any]) -> dict[str, Any]:
    """Warm up against a live server, let the parent cut it off, then log through the outage.

    With ``warmup`` 0 the server is already unreachable when the run opens.
    """
    client = open_client(spec)
    warmup = spec["warmup"]
    for i in range(warmup):
        client.log(point(i), step=i)
    flushed = client.flush(30.0) if warmup else None
    print(READY + json.dumps({"flushed": flushed, "run": client.name}), flush=True)
    sys.stdin.readline()  # the parent has cut the server off
    time.sleep(1.0)  # let the sender notice the outage before the clock starts
    peak_reset = reset_peak()
    before = memory()
    t = time.monotonic()
    log, n = client.log, spec["points"]
    sampled = before["VmRSS"]
    for i in range(warmup, warmup + n):
        log(point(i), step=i)
        if i % 10_000 == 0:
            sampled = max(sampled, memory()["VmRSS"])
    elapsed = time.monotonic() - t
    after = memory()
    time.sleep(spec.get("settle", 2.0))  # the sender's next attempts, spills, retries
    settled = memory()
    peak = max(sampled, after["VmRSS"], settled["VmRSS"])
    if peak_reset:
        peak = max(peak, settled["VmHWM"])
    return {
        "run": client.name,
        "points": n,
        "log_s": elapsed,
        "rss_before_kib": before["VmRSS"],
        "hwm_before_kib": before["VmHWM"],
        "rss_after_kib": after["VmRSS"],
        "rss_settled_kib": settled["VmRSS"],
        "hwm_kib": settled["VmHWM"],
        "rss_growth_mib": (after["VmRSS"] - before["VmRSS"]) / 1024,
        "rss_settled_growth_mib": (settled["VmRSS"] - before["VmRSS"]) / 1024,
        "peak_kib": peak,
        "peak_from_hwm": peak_reset,
        "peak_growth_mib": (peak - before["VmRSS"]) / 1024,
        "pending": client.pending(),
    }


def scenario_cold(spec: dict[str, Any]) -> dict[str, Any]:
    """Import the library, open a run, log one point, finish; phases from interpreter start."""
    t_import = time.perf_counter()
    if spec["client"] == "ours":
        from trackio_integrations import TrackioClient  # noqa: F401  (the package itself is lazy)
    else:
        import trackio  # noqa: F401
    t_init = time.perf_counter()
    client = open_client(spec)
    t_log = time.perf_counter()
    client.log(point(0), step=0)
    t_finish = time.perf_counter()
    finished = client.finish()
    t_end = time.perf_counter()
    return {
        "run": client.name,
        "before_import_s": t_import - T_START,
        "import_s": t_init - t_import,
        "init_s": t_log - t_init,
        "log_s": t_finish - t_log,
        "finish_s": t_end - t_finish,
        "in_process_s": t_end - T_START,
        "finish_ok": finished,
    }


def scenario_trainer(spec: dict[str, Any]) -> dict[str, Any]:
    """A tiny Trainer (examples/transformers_trainer.py's GPT-2), ``steps`` steps logging every step, torch on
    one thread; ``mode``: "none" (no reporting), "ours" (TrackioCallback) or "builtin"
    (``report_to="trackio"``, trackio's own client). The Trainer's own train_runtime."""
    import tempfile

    import torch

    torch.set_num_threads(1)
    from transformers import PrinterCallback, Trainer, TrainingArguments
    from transformers.utils import logging as hf_logging

    from examples.transformers_trainer import TokenData, tiny_model

    hf_logging.set_verbosity_error()
    mode, callbacks, report_to = spec["mode"], [], "none"
    if mode == "ours":
        from trackio_integrations import TrackioCallback

        callbacks = [
            TrackioCallback(
                spec["project"], spec["name"], server_url=spec["url"], write_token=spec["token"]
            )
        ]
    elif mode == "builtin":
        os.environ["TRACKIO_SERVER_URL"] = f"{spec['url']}?write_token={spec['token']}"
        report_to = "trackio"
    steps = spec["steps"]
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = Trainer(
            model=tiny_model(),
            args=TrainingArguments(
                output_dir,
                max_steps=steps,
                per_device_train_batch_size=8,
                logging_steps=1,
                save_strategy="no",
                report_to=report_to,
                project=spec["project"],
                run_name=spec["name"],
                use_cpu=True,
                disable_tqdm=True,
            ),
            train_dataset=TokenData(8 * steps),
            callbacks=callbacks,
        )
        trainer.remove_callback(PrinterCallback)
        output = trainer.train()
    return {"run": spec["name"], "mode": mode, "train_runtime": output.metrics["train_runtime"]}


def scenario_sampler(spec: dict[str, Any]) -> dict[str, Any]:
    """CPU time of one system sample: our sampler, or what trackio's CPU and GPU monitors do per
    sample (their collect functions, then the counters read for the next rates)."""
    take: Callable[[], dict[str, Any]]
    if spec["client"] == "ours":
        from trackio_integrations.monitoring.system import SystemSampler

        sampler = SystemSampler(lambda metrics: None)
        sampler.sample()  # sets the probes up
        take = sampler.sample
    else:
        import psutil
        from trackio.cpu import collect_cpu_metrics
        from trackio.gpu import collect_gpu_metrics, gpu_available

        gpus = gpu_available()
        last = [psutil.disk_io_counters(), psutil.net_io_counters(), time.monotonic()]

        def take() -> dict[str, Any]:
            now = time.monotonic()
            metrics = collect_cpu_metrics(last[0], last[1], now - last[2], include_static=False)
            last[:] = [psutil.disk_io_counters(), psutil.net_io_counters(), now]
            return {**metrics, **(collect_gpu_metrics(all_gpus=True) if gpus else {})}

    cpu, wall, sizes = [], [], []
    for _ in range(spec["samples"]):
        time.sleep(spec.get("gap", 0.2))
        t_cpu, t_wall = time.thread_time(), time.perf_counter()
        sizes.append(len(take()))
        cpu.append(time.thread_time() - t_cpu)
        wall.append(time.perf_counter() - t_wall)
    cpu.sort()
    wall.sort()
    return {
        "cpu_ms_p50": cpu[len(cpu) // 2] * 1e3,
        "cpu_ms_mean": sum(cpu) / len(cpu) * 1e3,
        "wall_ms_p50": wall[len(wall) // 2] * 1e3,
        "metrics": max(sizes),
    }


SCENARIOS = {
    "trainer": scenario_trainer,
    "sampler": scenario_sampler,
    "cost": scenario_cost,
    "deliver": scenario_deliver,
    "outage": scenario_outage,
    "cold": scenario_cold,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = SCENARIOS[spec["scenario"]](spec)
    print(RESULT + json.dumps(result), flush=True)
    if spec["scenario"] == "outage":
        # Do not wait for a dead server at exit (trackio's finish waits up to 30 s, ours 5 s).
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
