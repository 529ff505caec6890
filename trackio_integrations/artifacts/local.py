"""Artifacts and project files for the embedded default: local storage that ``trackio show`` lists.

trackio's local inbox takes points, system samples and alerts, not artifacts. Where ``trackio
show`` finds them instead:

- blobs in the project's content-addressed folder, ``TRACKIO_DIR/artifacts/<project>/blobs/
  sha256/<xx>/<digest>``: written here, streamed, checked against the digest, renamed into
  place (a reader never sees half a blob; an existing blob is never written again);
- versions, aliases and lineage in the project's SQLite database: written by trackio's own
  local-storage code (``_trackio_local.py``, run by an interpreter that has ``trackio``), the
  code ``trackio.log_artifact`` runs for a local project while ``trackio show`` may be reading
  the same file. Writing SQL of our own would copy trackio's schema and versioning rules and
  break silently when they change; trackio's code takes its own cross-process lock;
- project files in ``TRACKIO_DIR/media/<project>/files/<path>``, under their own names.

The two folders follow trackio's path rules (``layout()``), copied here so that saving a
project file (the provenance files at ``finish()``) starts no interpreter that imports trackio
(about 0.4 s); ``tests/test_artifacts.py`` checks the copy against trackio's own answer.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from trackio_integrations.artifacts.files import CHUNK, FileChanged, verified_write
from trackio_integrations.artifacts.paths import layout
from trackio_integrations.artifacts.server import Stopped, StoreError, Throttle
from trackio_integrations.core.transport import Outcome, Reply

HELPER = Path(__file__).with_name("_trackio_local.py")
HELPER_TIMEOUT = 120.0


def trackio_python() -> str | None:
    """An interpreter with ``trackio``: this one, else the one running the ``trackio`` command."""
    if importlib.util.find_spec("trackio") is not None:
        return sys.executable
    command = shutil.which("trackio")
    if command is None:
        return None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        first = Path(command).read_bytes()[:512].split(b"\n", 1)[0].decode()
        if first.startswith("#!"):
            interpreter = first[2:].strip().split()[0]
            if os.access(interpreter, os.X_OK):
                return interpreter
    return None


class LocalStore:
    """The ``ServerStore`` calls, against ``TRACKIO_DIR`` on this machine."""

    def __init__(
        self, trackio_dir: str | Path, throttle: Throttle, stop: threading.Event | None = None
    ) -> None:
        self.trackio_dir = Path(trackio_dir)
        self.throttle = throttle
        self.bytes_sent = 0
        self.progress: Callable[[int], None] | None = None
        self._layouts: dict[str, dict[str, str]] = {}
        self._stop = stop or threading.Event()

    def close(self) -> None:
        pass

    def present(self, project: str, digests: list[str]) -> set[str]:
        return {d for d in digests if self._blob(project, d).is_file()}

    def put_blob(self, project: str, digest: str, entry: dict[str, Any]) -> None:
        target = self._blob(project, digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        # trackio's marker for a blob being written (``<name>.partial.<id>``): never synced
        partial = target.parent / f"{digest}.partial.{os.urandom(8).hex()}"
        try:
            verified_write(self._chunks(entry), entry | {"digest": digest}, target, partial)
        except ValueError:
            raise FileChanged(f"{entry['path']} changed after it was logged (sha256)") from None

    def commit(self, rec: dict[str, Any], manifest: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(
            self._helper(
                "commit",
                project=rec["project"],
                name=rec["name"],
                type=rec["type"],
                description=rec.get("description"),
                manifest=manifest,
                metadata=rec.get("metadata"),
                aliases=rec.get("aliases") or [],
                run_name=rec["run"],
                run_id=rec["run_id"],
            )
        )

    def resolve(self, project: str, name: str, spec: str | None) -> dict[str, Any] | None:
        data = self._helper("resolve", project=project, name=name, spec=spec)
        return dict(data) if data else None

    def log_use(self, project: str, version_id: int, run: str, run_id: str) -> None:
        self._helper(
            "use",
            project=project,
            run_name=run,
            run_id=run_id,
            version_id=version_id,
            run_project=project,
        )

    def save_file(self, project: str, entry: dict[str, Any]) -> None:
        target = Path(self._layout(project)["files"]) / entry["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        with open(partial, "wb") as out:
            for chunk in self._chunks(entry):
                out.write(chunk)
        os.replace(partial, target)

    def fetch(self, project: str, entry: dict[str, Any], target: Path) -> None:
        blob = self._blob(project, entry["digest"])
        if not blob.is_file():
            raise FileNotFoundError(f"{self.trackio_dir} has no blob for {entry['path']}")
        verified_write(_read(blob), entry, target)

    # --- internals -------------------------------------------------------------------------------

    def _blob(self, project: str, digest: str) -> Path:
        return Path(self._layout(project)["blobs"]) / digest[:2] / digest

    def _layout(self, project: str) -> dict[str, str]:
        if project not in self._layouts:
            self._layouts[project] = layout(self.trackio_dir, project)
        return self._layouts[project]

    def _chunks(self, entry: dict[str, Any]) -> Any:
        left = int(entry["size"])
        with open(entry["src"], "rb") as f:
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise FileChanged(f"{entry['path']} shrank after it was logged")
                if self._stop.is_set():
                    raise Stopped
                self.throttle.take(len(chunk), self._stop.is_set)
                left -= len(chunk)
                self.bytes_sent += len(chunk)
                if self.progress is not None:
                    self.progress(len(chunk))
                yield chunk

    def _helper(self, op: str, **request: Any) -> Any:
        python = trackio_python()
        if python is None:
            raise StoreError(
                Reply(
                    Outcome.AUTH,  # nothing to retry until trackio is installed: stop and keep
                    None,
                    "Artifacts for local storage are written by trackio's own code, and no "
                    "`trackio` package was found (in this interpreter or as the `trackio` "
                    "command): pip install trackio, then `trackio-integrations sync`.",
                )
            )
        try:
            done = subprocess.run(
                [python, str(HELPER)],
                input=orjson.dumps({"op": op, **request}),
                capture_output=True,
                timeout=HELPER_TIMEOUT,
                env={**os.environ, "TRACKIO_DIR": str(self.trackio_dir)},
                check=False,
            )
            answer = orjson.loads(done.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError, orjson.JSONDecodeError, IndexError) as exc:
            detail = getattr(exc, "stderr", None) or exc
            raise StoreError(
                Reply(Outcome.RETRY, None, f"trackio helper failed: {detail}")
            ) from None
        if not answer.get("ok"):
            outcome = Outcome.RETRY if answer.get("retry") else Outcome.REJECTED
            raise StoreError(Reply(outcome, None, str(answer.get("error"))))
        return answer.get("data")


def _read(path: Path) -> Any:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk
