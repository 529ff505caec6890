"""Run the system sampler once on a machine with an NVIDIA GPU, while a matmul loop loads it.

    pip install nvidia-ml-py   # plus a CUDA build of torch and this package (PYTHONPATH=.)
    python scripts/gpu_sampler_check.py [--seconds 20]

A ``TrackioClient`` logs to the embedded default in a temporary TRACKIO_DIR (no server needed),
samples every second while the GPU multiplies matrices, and finishes; the script then reads the
``system_metric`` records back from the inbox files ``trackio show`` would import and prints them
as one JSON object, with the sampler's CPU time per sample and a verdict. Exit status 0 when the
GPU rows are there and show the load; it ends within about a minute (an alarm makes sure).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--dry-run", action="store_true", help="CPU and the tests' NVML stand-in: checks the script"
    )
    options = parser.parse_args()
    signal.alarm(int(options.seconds) + 40)  # never more than a minute in all

    if options.dry_run:
        from tests import fake_nvml

        sys.modules["pynvml"] = fake_nvml.make(gpus=1)
        sys.modules["pynvml"].nvmlSystemGetDriverVersion = lambda: "stand-in"  # type: ignore[attr-defined]
    import pynvml
    import torch

    from trackio_integrations import TrackioClient

    device = "cpu" if options.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"ok": False, "why": "torch sees no CUDA device"}))
        return 1
    folder = Path(tempfile.mkdtemp(prefix="gpu-sampler-check-"))
    os.environ.update(TRACKIO_DIR=str(folder / "trackio"), TRACKIO_SPOOL_DIR=str(folder / "spool"))
    os.environ.pop("TRACKIO_SERVER_URL", None)
    os.environ.pop("TRACKIO_SPACE_ID", None)

    run = TrackioClient("gpu-sampler-check", system_interval=1.0)
    size = 256 if options.dry_run else 8192
    a = torch.randn(size, size, device=device)
    loop_started = time.monotonic()
    steps = 0
    while time.monotonic() - loop_started < options.seconds:
        for _ in range(20):
            a = torch.tanh(a @ a)
        if device == "cuda":
            torch.cuda.synchronize()
        steps += 20
        run.log({"train/steps": steps}, step=steps)
    sampler = run._sampler
    assert sampler is not None
    run.finish(timeout=30)

    rows = []
    for fragment in sorted((folder / "trackio" / "inbox").rglob("*.jsonl")):
        for line in fragment.read_text().splitlines():
            record = json.loads(line)
            if record.get("kind") == "system_metric":
                metrics = record["metrics"]
                rows.append(
                    {"timestamp": record["timestamp"]}
                    | {
                        k: v
                        for k, v in metrics.items()
                        if not k.startswith("cpu/") or k == "cpu/utilization"
                    }
                )
    utilization = [row.get("gpu/0/utilization") for row in rows]
    checks = {
        "rows": len(rows) >= options.seconds / 2,
        "gpu_names": all(
            "gpu/0/utilization" in row and "gpu/0/allocated_memory" in row for row in rows
        ),
        "busy_seen": max((u or 0) for u in utilization) >= 50 if rows else False,
        "memory_seen": max((row.get("gpu/0/allocated_memory") or 0) for row in rows) > 0.3
        if rows
        else False,
        "power_and_temp": any(row.get("gpu/0/power") and row.get("gpu/0/temp") for row in rows),
        "host_too": all("cpu/utilization" in row and "memory/used" in row for row in rows),
    }
    report = {
        "ok": all(checks.values()),
        "checks": checks,
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (dry run)",
        "driver": pynvml.nvmlSystemGetDriverVersion(),
        "gpus": torch.cuda.device_count() if device == "cuda" else 0,
        "matmul_steps": steps,
        "samples": sampler.samples,
        "sampler_cpu_ms_per_sample_with_setup": round(
            sampler.cpu_seconds / max(sampler.samples, 1) * 1e3, 3
        ),
        "metrics_per_sample": max((len(row) - 1 for row in rows), default=0),
        "rows": len(rows),
        # every metric over the run: [min, median, max]
        "summary": {
            name: [round(v, 3) for v in (values[0], statistics.median(values), values[-1])]
            for name in sorted({k for row in rows for k in row if k != "timestamp"})
            if (
                values := sorted(
                    row[name] for row in rows if isinstance(row.get(name), (int, float))
                )
            )
        },
        "first_and_last_rows": [rows[0], rows[-1]] if rows else [],
    }
    print(json.dumps(report, default=str))
    if os.environ.get("OUT"):  # the device machine's folder that comes back: every row
        Path(os.environ["OUT"], "gpu_sampler_rows.json").write_text(json.dumps(rows, indent=1))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
