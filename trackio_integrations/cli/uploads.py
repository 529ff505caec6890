"""The CLI's part for the artifact, lineage and file requests that wait in the uploaders' spools."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trackio_integrations.core.dead_letter import iter_dead_letters
from trackio_integrations.core.target import Target


def status_uploads(root: Path) -> None:
    """Artifact, lineage and file requests waiting in the uploaders' spools."""
    from trackio_integrations.artifacts.uploader import ARTIFACTS, queued

    rows = [row for row in queued(root) if row["requests"]]
    for row in rows:
        print(
            f"Uploads: {row['requests']} request(s), {row['bytes'] / 1e6:.1f} MB, for "
            f"{row['target']} (project {row['project']}, run {row['run']}), {row['state']}"
        )
    if rows:
        print("Send them with `trackio-integrations sync`.")
    for path, count in iter_dead_letters(root / ARTIFACTS):
        print(f"Set aside: {count} upload request(s) not recorded, reasons in {path}")


def sync_uploads(
    root: Path, target_of: Callable[[dict[str, Any]], Target], args: argparse.Namespace
) -> int:
    """Resume the artifact, lineage and file requests, each to the target it was made for (with
    the tokens that belong to it, as for points); 1 if some are left."""
    from trackio_integrations.artifacts.uploader import sync

    sent, left, set_aside, busy = sync(root, target_of, args.project, args.retries)
    if sent or left or set_aside:
        print(f"Uploads: {sent} request(s) delivered (blobs the target had were not sent again).")
    if set_aside:
        print(
            f"{set_aside} upload request(s) could not be recorded and were set aside: see `status`."
        )
    for where, count in left.items():
        print(f"Left {count} upload request(s) for {where}.")
    if busy:
        print(f"{busy} upload spool(s) in use by live runs were left to them.")
    return 1 if left else 0
