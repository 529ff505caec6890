"""What ``log_artifact``, ``use_artifact``, ``save`` and ``save_code`` do in the training thread.

Each only lists and ``stat``s files and appends one request to the run's artifact spool (see
``model`` for the request kinds), then returns; the uploader hashes and uploads in its own thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trackio_integrations.artifacts.files import code_files, entry_for, matching, scan, shown_name
from trackio_integrations.artifacts.model import (
    ARTIFACT,
    FILE,
    NAME,
    USE,
    Artifact,
    UsedArtifact,
    safe_name,
    valid_aliases,
)
from trackio_integrations.core.values import json_safe

if TYPE_CHECKING:
    from trackio_integrations.artifacts.uploader import Uploader


def log_artifact(
    uploader: Uploader,
    path: str | os.PathLike[str],
    name: str | None,
    type: str | None,
    aliases: Iterable[str] | None,
    metadata: Mapping[str, Any] | None,
    description: str | None,
    warn: Callable[[str], None],
    file_name: str | None = None,
) -> Artifact | None:
    """Queue a new version of ``name`` made of ``path`` (a file or a folder); None if it has no
    files (with a warning). Reads no content: see ``files``."""
    try:
        files = scan(path, file_name)
    except OSError as exc:
        warn(f"log_artifact() logged nothing: {exc}.")
        return None
    given = name or Path(path).resolve().name
    name = given if NAME.match(given) else safe_name(given)
    if name != given:
        warn(f"Artifact name {given!r} is stored as {name!r} (letters, digits, '.', '_', '-').")
    kind = str(type) if type else "unspecified"
    kept = valid_aliases(aliases, warn)
    safe = json_safe(dict(metadata)) if metadata else None
    handle = Artifact(name, kind, kept, safe, files)
    uploader.submit(
        ARTIFACT,
        files,
        handle,
        name=name,
        type=kind,
        aliases=kept,
        metadata=safe,
        description=description,
    )
    return handle


def use_artifact(uploader: Uploader, ref: Any, warn: Callable[[str], None]) -> UsedArtifact:
    """Resolve ``name``, ``name:v<N>`` or ``name:<alias>`` now (one read), queue the lineage."""
    from trackio_integrations.artifacts.server import StoreError

    if isinstance(ref, (Artifact, UsedArtifact)):
        name, spec = ref.name, ref.version
    else:
        name, _, spec_text = str(ref).partition(":")
        spec = spec_text or None
    project = uploader.ids["project"]
    reader = None if uploader.offline else uploader.reader()

    def resolve() -> dict[str, Any] | None:
        if uploader.offline:
            from trackio_integrations.errors import TrackioServerError

            raise TrackioServerError(
                f"Cannot read artifact {name!r} in an offline run (mode='offline' reads nothing "
                "from the network); the use is recorded and sent by `trackio-integrations sync`."
            )
        try:
            assert reader is not None
            return reader.resolve(project, name, spec)
        except StoreError as exc:
            from trackio_integrations.errors import TrackioServerError

            raise TrackioServerError(f"Cannot read artifact {name!r}: {exc}") from None

    def fetch(record: dict[str, Any], entry: dict[str, Any], target: Path) -> None:
        try:
            assert reader is not None  # an offline run's resolve() raised before any fetch
            reader.fetch(project, entry, target)
        except StoreError as exc:
            from trackio_integrations.errors import TrackioServerError

            raise TrackioServerError(f"Cannot download {entry['path']}: {exc}") from None

    record = None
    if uploader.offline:  # resolved by ``sync``, against the target it sends to
        uploader.submit(USE, None, None, name=name, spec=spec, version_id=None)
        return UsedArtifact(project, name, spec, resolve, fetch, None)
    try:
        record = resolve()
    except Exception as exc:
        warn(f"use_artifact({ref!r}): {exc}; the use is recorded once the target answers.")
        uploader.submit(USE, None, None, name=name, spec=spec, version_id=None)
    else:
        if record is None:
            warn(f"use_artifact({ref!r}): no such artifact in project {project!r} (yet).")
        else:
            uploader.submit(USE, None, None, name=name, spec=spec, version_id=record["version_id"])
    return UsedArtifact(project, name, spec, resolve, fetch, record)


def save_files(
    uploader: Uploader,
    pattern: str | os.PathLike[str] | list[Path],
    base: str | os.PathLike[str] | None,
    prefix: str,
    warn: Callable[[str], None],
) -> int:
    """Queue each matched file as a project file named ``prefix`` + its path relative to
    ``base`` (default: the working directory); the number of files."""
    files = pattern if isinstance(pattern, list) else matching(pattern)
    if not files:
        warn(f"save({pattern!r}): no file matches.")
        return 0
    root = Path(base).resolve() if base is not None else Path.cwd().resolve()
    for file in files:
        uploader.submit(FILE, [entry_for(file, prefix + shown_name(file, root))], None)
    return len(files)


def save_code(uploader: Uploader, warn: Callable[[str], None]) -> int:
    """The training script and the config files on its command line, under ``code/<run>/``."""
    files = code_files()
    if not files:
        return 0
    base = files[0].parent
    return save_files(uploader, files, base, f"code/{safe_name(uploader.ids['run'])}/", warn)
