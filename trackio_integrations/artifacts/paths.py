"""Where trackio's local storage keeps a project's blobs and Files: its path rules, copied.

Alone in a module of no imports: a run on local storage writes its provenance files straight
into the Files folder (``client.py``), without loading the stores and the uploader.
"""

from __future__ import annotations

from pathlib import Path


def layout(trackio_dir: Path, project: str) -> dict[str, str]:
    """A project's blob folder and Files folder as trackio 0.43 names them (``cas.blob_path``,
    ``utils.project_media_dir``): the project name keeps ``[A-Za-z0-9_-]`` (any alphanumeric),
    else ``default``. The helper's ``layout`` operation gives trackio's own answer."""
    safe = "".join(c for c in project if c.isalnum() or c in ("-", "_")).rstrip() or "default"
    return {
        "blobs": str(trackio_dir / "artifacts" / safe / "blobs" / "sha256"),
        "files": str(trackio_dir / "media" / safe / "files"),
    }
