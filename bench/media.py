"""``log()`` of media values: our client against trackio's own, on the same local ``trackio show``.

    python bench/media.py              # 4 rounds, about a minute and a half on 2 busy cores
    python bench/media.py --rounds 1   # a smoke test

What one ``log()`` costs the training thread, value construction included (trackio computes a
histogram in its constructor, we in ``log()``), for the three values of issue #11:

- a 256x256 RGB image (uint8 NumPy array: a smooth picture with noise, a new one each call),
- a table of 100 rows (a pandas DataFrame: int, str, float and int columns),
- a histogram of a 1M-element float32 torch tensor (CPU).

Each client runs in a fresh interpreter per round (imports and allocator state never leak), the
two take turns going first, and each child's rows are counted on the server afterwards, so every
measured ``log()`` is one that arrived. Printed: the median over rounds of each round's median, and
our/trackio ratios, as a Markdown table.
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
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TOKEN = "bench-media-token-91d2"
CALLS = {"image": 40, "table": 100, "histogram": 20}  # timed log() calls per child
RESULT = "MEDIA-RESULT "


def child(spec: dict[str, Any]) -> None:
    """One client: open a run, time each log(), deliver everything, print the medians."""
    import numpy as np
    import pandas as pd
    import torch

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:256, 0:256]
    base = np.stack([x, y, (x + y) // 2], axis=-1).astype(np.int16)
    images = [
        np.clip(base + rng.integers(-12, 12, base.shape), 0, 255).astype(np.uint8) for _ in range(8)
    ]
    frame = pd.DataFrame(
        {
            "id": np.arange(100),
            "text": [f"sample {i}: the quick brown fox" for i in range(100)],
            "prediction": rng.random(100),
            "label": rng.integers(0, 10, 100),
        }
    )
    tensor = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0))

    if spec["client"] == "ours":
        from trackio_integrations import Histogram, Image, Table, TrackioClient

        run: Any = TrackioClient(spec["project"], spec["name"], server_url=spec["url"])
        log = run.log
    else:
        import trackio
        from trackio import Histogram, Image, Table  # type: ignore[assignment]

        url = f"{spec['url']}?write_token={TOKEN}"
        run = trackio.init(
            project=spec["project"],
            name=spec["name"],
            server_url=url,
            auto_log_cpu=False,
            auto_log_gpu=False,
        )
        log = trackio.log
    make = {
        "image": lambda i: Image(images[i % len(images)]),
        "table": lambda i: Table(dataframe=frame),
        "histogram": lambda i: Histogram(tensor),
    }
    step = 0
    medians = {}
    for kind, calls in CALLS.items():
        times = []
        for i in range(calls + 3):  # 3 warm-up calls
            start = time.perf_counter()
            log({kind: make[kind](i)}, step=step)  # the value is made inside: trackio works there
            elapsed = time.perf_counter() - start
            if i >= 3:
                times.append(elapsed)
            step += 1
        medians[kind] = statistics.median(times) * 1e6
    if spec["client"] == "ours":
        run.finish(timeout=120)
    else:
        trackio.finish()
    print(RESULT + json.dumps({"us": medians, "run": spec["name"]}), flush=True)


def rows_stored(url: str, project: str, run: str) -> dict[str, int]:
    import httpx

    response = httpx.post(f"{url}/api/get_logs", json={"args": [project, run]}, timeout=60)
    rows = response.json()["data"] or []
    return {kind: sum(kind in row for row in rows) for kind in CALLS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0

    sys.path.insert(0, str(REPO))
    from tests.harness import TrackioServer

    home = Path(tempfile.mkdtemp(prefix="trackio-media-bench-"))
    server = TrackioServer(home / "server", token=TOKEN)
    server.start()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TRACKIO_DIR": str(home / "client-trackio"),  # trackio's own copies, not the server's
        "TRACKIO_SPOOL_DIR": str(home / "spool"),
        "TRACKIO_WRITE_TOKEN": TOKEN,
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("TRACKIO_SERVER_URL", None)
    results: dict[str, list[dict[str, float]]] = {"ours": [], "trackio": []}
    project = f"media-bench-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    try:
        for round_ in range(args.rounds):
            order = ("ours", "trackio") if round_ % 2 == 0 else ("trackio", "ours")
            for client in order:
                spec = {"client": client, "url": server.url, "project": project}
                spec["name"] = f"{client}-{round_}"
                done = subprocess.run(
                    [sys.executable, __file__, "--child", json.dumps(spec)],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                line = [x for x in done.stdout.splitlines() if x.startswith(RESULT)]
                if done.returncode != 0 or not line:
                    print(done.stdout[-2000:], done.stderr[-3000:], file=sys.stderr)
                    return 1
                stored = rows_stored(server.url, project, spec["name"])
                wanted = {kind: calls + 3 for kind, calls in CALLS.items()}
                if stored != wanted:
                    print(
                        f"{client} round {round_}: stored {stored}, logged {wanted}",
                        file=sys.stderr,
                    )
                    return 1
                results[client].append(json.loads(line[0][len(RESULT) :])["us"])
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        server.stop()
    print(
        f"\n{args.rounds} rounds in {time.monotonic() - started:.0f} s; every logged row arrived.\n"
    )
    print("| log() of (median of rounds) | trackio-integrations | trackio | ours/trackio |")
    print("|---|---:|---:|---:|")
    labels = {
        "image": "a 256x256 RGB image",
        "table": "a table of 100 rows",
        "histogram": "a histogram of a 1M-element tensor",
    }
    for kind, label in labels.items():
        ours = statistics.median(r[kind] for r in results["ours"])
        theirs = statistics.median(r[kind] for r in results["trackio"])
        print(f"| {label} | {_us(ours)} | {_us(theirs)} | {ours / theirs:.2f} |")
    return 0


def _us(value: float) -> str:
    return f"{value / 1000:.2f} ms" if value >= 1000 else f"{value:.0f} µs"


if __name__ == "__main__":
    sys.exit(main())
