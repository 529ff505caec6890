"""The artifact and project-file half of ``TrackioClient``: its public methods and its uploader.

Split out of ``client.py`` (which keeps points, system samples, alerts and the spool) because
artifacts are a concern of their own: files hashed and uploaded in the background by
``uploader.py``, one upload at a time, waited for at ``finish()`` under a timeout of their own.
``TrackioClient`` inherits these methods, so they stay ``run.log_artifact(...)`` and so on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trackio_integrations.core.target import Target
from trackio_integrations.errors import warn_user

if TYPE_CHECKING:
    from trackio_integrations.artifacts.model import Artifact, UsedArtifact
    from trackio_integrations.artifacts.uploader import Uploader

logger = logging.getLogger("trackio_integrations")

DEFAULT_ARTIFACT_TIMEOUT = 600.0  # finish() waits this long at most for uploads that progress


class ArtifactMethods:
    """Artifacts and project files (hashed and uploaded in the background: uploader.py)."""

    # Set by TrackioClient.__init__; declared here for the type checker.
    project: str
    name: str
    run_id: str
    target: Target
    _spool_root: Path
    mode: str
    _http_transport: Any
    _lock: threading.Lock
    _finished: bool
    _uploader: Uploader | None
    _code_saved: bool
    _warn: Callable[[str, str], None]  # warns once per key

    def log_artifact(
        self,
        artifact_or_path: str | os.PathLike[str] | Any,
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | None = None,
        overwrite: bool = False,
        metadata: Mapping[str, Any] | None = None,
        description: str | None = None,
        file_name: str | None = None,
    ) -> Artifact | None:
        """Log a file or a folder as a new version of the artifact ``name`` (default: its own
        name), with trackio's ``latest`` plus ``aliases``. Returns at once: the files are only
        listed here; hashing and uploading happen in the background, one upload at a time, and
        a blob the target already has is not sent again. Never raises. ``file_name`` names a
        lone file inside the artifact (default: its own name); the same content under the same
        names is the same version. A trackio ``Artifact`` is logged from its ``path``;
        ``overwrite=True`` (trackio's) is not supported and logs a new version.

        >>> art = run.log_artifact("out/checkpoint-500", name="model", type="model")  # doctest: +SKIP
        >>> art.wait(60), art.version  # doctest: +SKIP
        (True, 'v2')
        """
        if self._ended("log_artifact"):
            return None
        if overwrite:
            self._warn("overwrite", "log_artifact(overwrite=True) is not supported: a new version.")
        try:
            from trackio_integrations.artifacts.calls import log_artifact

            path = getattr(artifact_or_path, "path", artifact_or_path)  # or trackio's Artifact
            return log_artifact(
                self._uploads(),
                path,
                name,
                type,
                aliases,
                metadata,
                description,
                self._warn_each,
                file_name,
            )
        except Exception:
            logger.exception("trackio-integrations: log_artifact() failed")
            return None

    def use_artifact(self, artifact_or_name: Any, type: str | None = None) -> UsedArtifact | None:
        """Record that this run consumed ``name``, ``name:v<N>`` or ``name:<alias>`` (lineage in
        the dashboard); ``.download(dest)`` on the result fetches its files. Never raises.
        ``artifact_or_name`` may be an artifact this package or trackio returned; ``type`` is
        accepted as trackio's and not checked.

        >>> data = run.use_artifact("corpus:latest").download("data/")  # doctest: +SKIP
        """
        if self._ended("use_artifact"):
            return None
        try:
            from trackio_integrations.artifacts.calls import use_artifact

            return use_artifact(self._uploads(), artifact_or_name, self._warn_each)
        except Exception:
            logger.exception("trackio-integrations: use_artifact() failed")
            return None

    def save(
        self, glob: str | os.PathLike[str], base_path: str | os.PathLike[str] | None = None
    ) -> int:
        """Save files matching ``glob`` to the project's Files, named by their path relative to
        ``base_path`` (default: the working directory), as ``trackio.save`` does. Uploaded in
        the background; returns the number of files. Never raises."""
        if self._ended("save"):
            return 0
        try:
            from trackio_integrations.artifacts.calls import save_files

            return save_files(self._uploads(), glob, base_path, "", self._warn_each)
        except Exception:
            logger.exception("trackio-integrations: save() failed")
            return 0

    def save_code(self) -> int:
        """Save the training script and the config files on its command line to the project's
        Files under ``code/<run>/``, once per run (later calls do nothing)."""
        if self._code_saved or self._ended("save_code"):
            return 0
        self._code_saved = True
        try:
            from trackio_integrations.artifacts.calls import save_code

            return save_code(self._uploads(), self._warn_each)
        except Exception:
            logger.exception("trackio-integrations: save_code() failed")
            return 0

    @property
    def uploads_pending(self) -> int:
        """Artifact, lineage and file requests not yet delivered."""
        return self._uploader.pending if self._uploader is not None else 0

    def _uploads(self) -> Uploader:
        with self._lock:
            if self._uploader is None:
                from trackio_integrations.artifacts.uploader import Uploader

                ids = {"project": self.project, "run": self.name, "run_id": self.run_id}
                self._uploader = Uploader(
                    self._spool_root,
                    self.target,
                    ids,
                    transport=self._http_transport,
                    offline=self.mode == "offline",
                )
            return self._uploader

    def _finish_uploads(self, timeout: float | None) -> bool:
        uploader, self._uploader = self._uploader, None
        if uploader is None:
            return True
        ok = uploader.finish(DEFAULT_ARTIFACT_TIMEOUT if timeout is None else timeout)
        uploader.close_reader()
        return ok

    def _ended(self, call: str) -> bool:
        if self._finished:
            self._warn("finished", f"{call}() after finish() is ignored: start a new client.")
        return self._finished

    def _warn_each(self, message: str) -> None:
        warn_user(message)


def _has_queued_uploads(root: Path, target: Target) -> bool:
    """Whether a dead process left artifact requests here that this client can send."""
    if not (root / "artifacts").is_dir():  # the common case: one stat, no import
        return False
    from trackio_integrations.artifacts.uploader import orphans_waiting

    return orphans_waiting(root, target)
