"""What an artifact is: its names, the ``Artifact`` and ``UsedArtifact`` a user holds, the requests.

``calls`` appends one request per call to the run's artifact spool; the uploader (``uploader.py``)
hashes and uploads in its own thread. A request is a JSON line:

============  ===================================================================================
kind          fields besides ``v``, ``kind``, ``id``, ``project``, ``run``, ``run_id``
============  ===================================================================================
``artifact``  name, type, aliases, metadata, description, files: [{path, src, size, mtime_ns}]
``use``       name, spec (``None``: latest), version_id (``None``: resolve it when sending)
``file``      files: [one {path, src, size, mtime_ns}] (``path``: its name in the Files tab)
============  ===================================================================================

Names, versions and aliases are trackio's: a version is ``v0``, ``v1``, ...; the same content
logged again under one name is the same version; ``latest`` follows the newest version.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from trackio_integrations.artifacts.files import same_content

ARTIFACT, USE, FILE = "artifact", "use", "file"
NAME = re.compile(r"^[A-Za-z0-9._-]+\Z")  # trackio's rule for artifact names and aliases
VERSION_SPEC = re.compile(r"^v\d+\Z")  # reserved by trackio: an alias cannot look like one


def safe_name(text: str) -> str:
    """``text`` as a valid artifact name (trackio allows letters, digits, ``.``, ``_``, ``-``)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")
    return name or "artifact"


def valid_aliases(aliases: Iterable[str] | None, warn: Callable[[str], None]) -> list[str]:
    """The aliases trackio accepts (``latest`` is its own), each bad one dropped with a warning."""
    kept: list[str] = []
    for alias in [aliases] if isinstance(aliases, str) else list(aliases or ()):
        if isinstance(alias, str) and NAME.match(alias) and not VERSION_SPEC.match(alias):
            if alias not in kept:
                kept.append(alias)
        else:
            warn(
                f"Artifact alias {alias!r} was dropped: use letters, digits, '.', '_', '-' "
                "and not 'v<N>' (that names a version)."
            )
    return kept


class Artifact:
    """A version being logged. ``log_artifact`` returns it at once; the uploader fills it in.

    >>> art = run.log_artifact("checkpoints/last.ckpt", name="model", type="model")  # doctest: +SKIP
    >>> art.wait(60) and art.version  # doctest: +SKIP
    'v3'

    Attributes:
        name, type, aliases, metadata: as given (aliases that trackio would refuse dropped).
        size: bytes in its files, as seen when logged.
        version: ``"v<N>"`` once the target recorded it, else None.
        record: the target's record of the version (manifest, digests, aliases).
        error: why it was not recorded (a file changed, the server refused it), else None.
    """

    def __init__(
        self,
        name: str,
        type: str,
        aliases: list[str],
        metadata: dict[str, Any] | None,
        files: list[dict[str, Any]],
    ) -> None:
        self.name, self.type, self.aliases, self.metadata = name, type, aliases, metadata
        self.size = sum(int(f["size"]) for f in files)
        self.files = len(files)
        self.record: dict[str, Any] | None = None
        self.error: str | None = None
        self._done = threading.Event()

    @property
    def version(self) -> str | None:
        return f"v{self.record['version']}" if self.record else None

    @property
    def done(self) -> bool:
        """Recorded, or set aside with ``error``."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the target has the version (True) or it was set aside (False)."""
        self._done.wait(timeout)
        return self.record is not None

    def _finish(self, record: dict[str, Any] | None, error: str | None = None) -> None:
        self.record, self.error = record, error
        self._done.set()

    def __repr__(self) -> str:
        state = self.version or ("failed" if self.error else "pending")
        return f"Artifact(name={self.name!r}, type={self.type!r}, {state})"


class UsedArtifact:
    """An artifact version this run consumed (``use_artifact``); ``download()`` fetches its files.

    >>> data = run.use_artifact("tokenized-corpus:latest")  # doctest: +SKIP
    >>> folder = data.download("data/")  # doctest: +SKIP
    """

    def __init__(
        self,
        project: str,
        name: str,
        spec: str | None,
        resolve: Callable[[], dict[str, Any] | None],
        fetch: Callable[[dict[str, Any], dict[str, Any], Path], None],
        record: dict[str, Any] | None,
    ) -> None:
        self.project, self.name, self.spec = project, name, spec
        self.record = record
        self._resolve, self._fetch = resolve, fetch

    @property
    def version(self) -> str | None:
        return f"v{self.record['version']}" if self.record else None

    @property
    def manifest(self) -> list[dict[str, Any]]:
        return list(self._resolved()["manifest"])

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._resolved().get("metadata") or {})

    def download(self, root: str | os.PathLike[str] | None = None) -> Path:
        """Write the version's files under ``root`` (default
        ``.trackio/artifact-downloads/<project>/<name>_v<N>``, as trackio does), each checked
        against its sha256. Raises ``FileNotFoundError`` if the version does not exist,
        ``TrackioServerError`` if the target cannot be read."""
        record = self._resolved()
        folder = (
            Path(root)
            if root is not None
            else (
                Path.cwd()
                / ".trackio"
                / "artifact-downloads"
                / safe_name(self.project)
                / f"{self.name}_v{record['version']}"
            )
        )
        for entry in record["manifest"]:
            if "ref" in entry:
                continue  # a reference to data stored elsewhere: its URI is in the manifest
            target = folder / entry["path"]
            if not same_content(target, entry):
                target.parent.mkdir(parents=True, exist_ok=True)
                self._fetch(record, entry, target)
        return folder

    def _resolved(self) -> dict[str, Any]:
        if self.record is None:
            self.record = self._resolve()
        if self.record is None:
            spec = f"{self.name}:{self.spec}" if self.spec else self.name
            raise FileNotFoundError(f"Artifact {spec!r} not found in project {self.project!r}")
        return self.record

    def __repr__(self) -> str:
        return f"UsedArtifact(name={self.name!r}, version={self.version!r})"
