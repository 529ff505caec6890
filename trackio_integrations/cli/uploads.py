"""``status``'s part for the artifact, lineage and file requests waiting in the uploaders' spools
(``sync`` resumes them: see ``cli/sync.py``)."""

from __future__ import annotations

from pathlib import Path

from trackio_integrations.core.dead_letter import iter_dead_letters


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
