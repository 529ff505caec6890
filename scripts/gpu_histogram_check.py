"""Check the CUDA histogram path on a machine with an NVIDIA GPU: counts, speed, and end to end.

    python scripts/gpu_histogram_check.py            # a CUDA build of torch; PYTHONPATH=.
    python scripts/gpu_histogram_check.py --dry-run  # on the CPU: checks the script itself

1. ``encoding.torch_histogram`` on CUDA tensors of several dtypes and shapes (NaN and inf among
   them, a constant tensor, an empty one) against ``encoding.numpy_histogram`` of the same values
   copied to the host: the same edges, the same number of finite values, and counts that differ
   only where float rounding puts a value on the other side of an edge.
2. Time: a ``Histogram`` of a CUDA tensor encoded (what ``log()`` does on the training thread),
   median of 7 after a warm-up, beside the host path (copy to the host, then numpy), at 1M and
   100M elements; the GPU memory the encoding allocates on top of the tensor.
3. End to end: a small CUDA model trained for a few steps with ``TrackioClient`` on the embedded
   default and ``Watcher(model, "all", every=2)``; the ``gradients/...`` and ``parameters/...``
   histograms are read back from the inbox files ``trackio show`` imports.

Prints one JSON object; exit status 0 when every check holds. An alarm ends it within 3 minutes.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def compare(torch: Any, data: Any, bins: int) -> dict[str, Any]:
    from trackio_integrations.media.encode import numpy_histogram, torch_histogram

    counts, edges = torch_histogram(data, bins)
    host = data.detach().cpu()
    if host.dtype not in (torch.float32, torch.float64):
        host = host.float()
    ref_counts, ref_edges = numpy_histogram(host.numpy(), bins)
    finite = int(torch.isfinite(host).sum()) if host.is_floating_point() else host.numel()
    moved = sum(abs(a - b) for a, b in zip(counts, ref_counts, strict=False)) // 2
    ok = (
        len(counts) == len(ref_counts)
        and sum(counts) == finite
        and sum(ref_counts) == finite
        and all(abs(a - b) <= 1e-9 * max(abs(b), 1) for a, b in zip(edges, ref_edges, strict=False))
        # values within a few ulps of an edge, rounded either way: more edges, more of them
        and moved <= max(4, finite * bins * 2e-7)
    )
    return {"ok": ok, "finite": finite, "bins": len(counts), "moved_across_an_edge": moved}


def timed(fn: Any, sync: Any, rounds: int = 7) -> float:
    fn()
    sync()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dry-run", action="store_true", help="on the CPU: checks the script")
    options = parser.parse_args()
    signal.alarm(180)

    import torch

    from trackio_integrations import Histogram, TrackioClient
    from trackio_integrations.integrations.watch import Watcher
    from trackio_integrations.media.encode import encode_histogram, numpy_histogram

    device = "cpu" if options.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"ok": False, "why": "torch sees no CUDA device"}))
        return 1

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    generator = torch.Generator(device=device).manual_seed(0)
    big = 10**6 if options.dry_run else 10**8

    def randn(n: int, dtype: Any = torch.float32) -> Any:
        return torch.randn(n, generator=generator, device=device).to(dtype)

    with_bad = randn(10**6)
    with_bad[::1000] = float("nan")
    with_bad[1::1000] = float("inf")
    cases = {
        "float32 1M": (randn(10**6), 64),
        "float16 1M": (randn(10**6, torch.float16), 64),
        "bfloat16 1M": (randn(10**6, torch.bfloat16), 64),
        "float64 1M": (randn(10**6, torch.float64), 64),
        "int64 100k": (torch.randint(-50, 50, (10**5,), device=device), 100),
        "float32 2-D 1024x1024": (randn(2**20).reshape(1024, 1024), 512),
        "float32 with NaN and inf": (with_bad, 64),
        "constant": (torch.full((1000,), 3.0, device=device), 10),
        f"float32 {big // 10**6}M": (randn(big), 64),
    }
    counts = {name: compare(torch, data, bins) for name, (data, bins) in cases.items()}
    empty = encode_histogram(Histogram(torch.empty(0, device=device)))
    counts["empty"] = {"ok": empty["values"] == [] and empty["bins"] == []}
    all_nan = encode_histogram(Histogram(torch.full((10,), float("nan"), device=device)))
    counts["all NaN"] = {"ok": all_nan["values"] == []}

    speed = {}
    for n in (10**6, big):
        data = cases["float32 1M"][0] if n == 10**6 else cases[f"float32 {big // 10**6}M"][0]
        torch.cuda.reset_peak_memory_stats() if device == "cuda" else None
        before = torch.cuda.memory_allocated() if device == "cuda" else 0
        on_device = timed(lambda d=data: encode_histogram(Histogram(d)), sync)
        extra = (torch.cuda.max_memory_allocated() - before) if device == "cuda" else 0
        on_host = timed(lambda d=data: numpy_histogram(d.cpu().numpy(), 64), sync)
        speed[f"{n // 10**6}M float32"] = {
            "encode_on_device_ms": round(on_device * 1e3, 3),
            "copy_to_host_then_numpy_ms": round(on_host * 1e3, 3),
            "ratio": round(on_device / on_host, 3),
            "gpu_memory_allocated_by_encoding_mib": round(extra / 2**20, 1),
            "tensor_mib": round(data.numel() * 4 / 2**20, 1),
        }

    folder = Path(tempfile.mkdtemp(prefix="gpu-histogram-check-"))
    os.environ.update(TRACKIO_DIR=str(folder / "trackio"), TRACKIO_SPOOL_DIR=str(folder / "spool"))
    os.environ.pop("TRACKIO_SERVER_URL", None)
    os.environ.pop("TRACKIO_SPACE_ID", None)
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10)
    ).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    watcher = Watcher(model, "all", every=2)
    run = TrackioClient("gpu-histogram-check", system_metrics=False)
    log_times = []
    for step in range(10):
        x = torch.randn(64, 256, device=device)
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        started = time.perf_counter()
        run.log({"train/loss": loss.item(), **watcher.histograms(step)}, step=step)
        log_times.append(time.perf_counter() - started)
        optimizer.step()
    finished = run.finish(timeout=30)
    histograms: dict[str, int] = {}
    for fragment in sorted((folder / "trackio" / "inbox").rglob("*.jsonl")):
        for line in fragment.read_text().splitlines():
            record = json.loads(line)
            for key, value in (record.get("metrics") or {}).items():
                if isinstance(value, dict) and value.get("_type") == "trackio.histogram":
                    assert sum(value["values"]) > 0, key
                    histograms[key] = histograms.get(key, 0) + 1
    names = {
        f"{kind}/{name}"
        for kind in ("gradients", "parameters")
        for name, _ in model.named_parameters()
    }
    end_to_end = {
        "ok": bool(finished)
        and set(histograms) == names
        and set(histograms.values()) == {4},  # steps 2, 4, 6, 8
        "histograms": histograms,
        "log_ms_with_histograms_median": round(statistics.median(log_times[::2]) * 1e3, 3),
    }

    report = {
        "ok": all(c["ok"] for c in counts.values()) and end_to_end["ok"],
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (dry run)",
        "torch": torch.__version__,
        "counts": counts,
        "speed": speed,
        "end_to_end": end_to_end,
    }
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
