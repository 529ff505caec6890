"""What provenance costs at start-up: ``TrackioClient(...)`` and the first points, on and off.

    python bench/provenance.py            # 7 rounds, about a minute on 2 cores
    python bench/provenance.py --rounds 2 # a smoke test

Each measurement is a fresh process (imports warm in the page cache, not in the interpreter),
started in this checkout (a real git repository with a diff), against its own ``trackio show``;
the order of "on" and "off" is swapped every round. Per process: the wall time of the client's
constructor without its server check (what the training thread waits for; the check is the same
HTTP request either way and would hide the difference), the median and 99th percentile of the first
2,000 ``log()`` calls made right after it (while the provenance thread runs git and lists the
packages), the time from the constructor's start until the provenance thread is done (in the
background), the ``finish()`` time (with provenance: the upload of its files), and, alone, the
cost of ``Recorder(...).start()`` (what provenance adds to the constructor). Prints a Markdown table of medians over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO)]

from tests.harness import TrackioServer  # noqa: E402

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from trackio_integrations import TrackioClient
t1 = time.perf_counter()
run = TrackioClient(sys.argv[1], server_url=sys.argv[2], system_metrics=False, check=False,
                    provenance=sys.argv[3] == "on")
t2 = time.perf_counter()
lat = []
for step in range(2000):
    a = time.perf_counter_ns()
    run.log({"loss": 1.0 / (step + 1), "acc": step * 1e-4}, step=step)
    lat.append(time.perf_counter_ns() - a)
t3 = time.perf_counter()
done = run._provenance.wait(60) if run._provenance is not None else True
t4 = time.perf_counter()
run.finish()
t5 = time.perf_counter()
start_us = None
if sys.argv[3] == "on":  # what the constructor adds to the training thread, alone
    import tempfile
    from pathlib import Path
    from trackio_integrations.provenance.recorder import Recorder
    class Run:
        name, run_id = "bench", "bench"
        def update_config(self, mapping): pass
        def save(self, glob, base_path=None): return 0
        def _project_files_folder(self): return None
    folder, run = Path(tempfile.mkdtemp()), Run()
    a = time.perf_counter_ns()
    recorder = Recorder(run, folder).start()
    start_us = (time.perf_counter_ns() - a) / 1e3
    recorder.wait(60)
lat.sort()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "init_ms": (t2 - t1) * 1e3,
                  "log_p50_us": lat[len(lat) // 2] / 1e3, "log_p99_us": lat[int(len(lat) * .99)] / 1e3,
                  "provenance_done_ms": (t4 - t1) * 1e3 if done else None,
                  "finish_ms": (t5 - t4) * 1e3, "recorder_start_us": start_us}))
"""


def measure(setting: str, project: str, url: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("TRACKIO_PROVENANCE", None)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, project, url, setting],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    options = p.parse_args()
    results: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRACKIO_SPOOL_DIR"] = str(Path(tmp) / "spool")
        server = TrackioServer(Path(tmp) / "trackio")
        server.start()
        try:
            for i in range(options.rounds):
                order = ("off", "on") if i % 2 == 0 else ("on", "off")
                for setting in order:
                    results[setting].append(measure(setting, f"bench-prov-{i}", server.write_url))
        finally:
            server.stop()
    keys = ["init_ms", "recorder_start_us", "log_p50_us", "log_p99_us", "provenance_done_ms"]
    keys += ["finish_ms"]
    print(f"| provenance | {' | '.join(keys)} |")
    print("|---" * (len(keys) + 1) + "|")
    for setting, rows in results.items():
        cells = []
        for key in keys:
            values = [r[key] for r in rows if r.get(key) is not None]
            cells.append(f"{statistics.median(values):.2f}" if values else "-")
        print(f"| {setting} | {' | '.join(cells)} |")
    print(f"\nmedians of {options.rounds} rounds, one fresh process each; cwd: {REPO}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
