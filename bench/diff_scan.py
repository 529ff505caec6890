"""What scanning the uncommitted diff for credentials costs: ``mask_diff`` on a 10 MB diff.

    python bench/diff_scan.py             # 10 MB, 5 rounds
    python bench/diff_scan.py --mb 1      # a smoke test

The diff is made of real source: the ``.py`` files of the installed torch (else this package),
each as an added file's hunk, until the size is reached, with a few credential lines mixed in
and one 1 MB line of base64 (a minified or embedded asset, the slow case for a regex scan).
Twenty known secrets are masked too, as a run with a gateway and a webhook has. Prints the
median time, the throughput and the lines masked. Runs in the provenance thread, never in the
training thread.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from trackio_integrations.provenance.diff import mask_diff  # noqa: E402


def sources() -> list[Path]:
    try:
        import torch

        root = Path(torch.__file__).parent
    except ImportError:
        root = REPO / "trackio_integrations"
    return sorted(root.rglob("*.py"))


def make_diff(size: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    blob = base64.b64encode(bytes(range(256)) * 3000)[: 1 << 20]
    parts.append(b"diff --git a/asset.js b/asset.js\n--- a/asset.js\n+++ b/asset.js\n")
    parts.append(b"@@ -0,0 +1,1 @@\n+var data = '" + blob + b"';\n")
    for number, path in enumerate(sources()):
        lines = path.read_bytes().splitlines(keepends=True)
        if not lines:
            continue
        if number % 50 == 0:
            lines.append(b'API_KEY = "sk-live-0a9b8c7d6e5f4a3b2c1d0e9f"\n')
        name = f"src/{number}.py".encode()
        head = b"diff --git a/%s b/%s\nnew file mode 100644\n--- /dev/null\n+++ b/%s\n" % (
            name,
            name,
            name,
        )
        body = b"@@ -0,0 +1,%d @@\n" % len(lines) + b"".join(b"+" + line for line in lines)
        parts.append(head + body)
        total += len(head) + len(body)
        if total >= size:
            break
    return b"".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    diff = make_diff(int(options.mb * 1024 * 1024))
    secrets = {f"known-secret-{i:02d}-5d7c1e9a" for i in range(20)}
    times = []
    masked = 0
    for _ in range(options.rounds):
        start = time.perf_counter()
        _, masked = mask_diff(diff, secrets)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    lines = diff.count(b"\n")
    print(
        f"diff {len(diff) / 1e6:.1f} MB, {lines} lines: median {median:.2f} s "
        f"({len(diff) / 1e6 / median:.1f} MB/s) over {options.rounds} rounds, "
        f"{masked} lines masked"
    )


if __name__ == "__main__":
    main()
