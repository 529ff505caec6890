"""The files behind artifacts and project files: listing, hard-link snapshots, hashing, checks.

Nothing here reads a file's content on the caller's thread: ``scan`` only lists and ``stat``s,
``snapshot`` only hard-links. The uploader's thread hashes (``sha256_of``) and reads later.

A file "changed after it was logged" when its size or modification time differs from what
``scan`` saw when it was logged, at any of the uploader's checks (before hashing, after hashing,
before sending), or when the receiver's sha256 of the bytes differs from the uploader's hash.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from trackio_integrations.core.spool import private_folder

CHUNK = 1 << 20
_YIELD: Callable[[], None] | None = getattr(os, "sched_yield", None)
CONFIG_SUFFIXES = frozenset({".yaml", ".yml", ".json", ".toml", ".cfg", ".ini"})


class FileChanged(Exception):
    """A logged file is no longer what ``log_artifact`` saw: it is reported, never uploaded."""


def scan(path: str | os.PathLike[str], file_name: str | None = None) -> list[dict[str, Any]]:
    """The regular files of a file or a folder (recursively, symlinks skipped, sorted), each with
    its path inside the artifact (a lone file: ``file_name``, else its own name) and its size
    and modification time now. Reads no content."""
    root = Path(path).resolve()
    if root.is_file():
        return [entry_for(root, file_name or root.name)]
    if not root.is_dir():
        raise FileNotFoundError(f"No such file or folder: {path}")
    files = []
    for folder, subfolders, names in os.walk(root, followlinks=False):
        subfolders.sort()
        for name in sorted(names):
            file = Path(folder) / name
            if not file.is_symlink() and file.is_file():
                files.append(entry_for(file, file.relative_to(root).as_posix()))
    if not files:
        raise FileNotFoundError(f"The folder {path} has no files to log")
    return files


def entry_for(file: Path, logical: str) -> dict[str, Any]:
    stat = file.stat()
    return {"path": logical, "src": str(file), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def snapshot(
    files: list[dict[str, Any]], spool: Path | None, folder: str, copy: bool = False
) -> None:
    """Hard-link each file into ``spool/folder`` and send the link instead, when the two are on
    one file system: no byte is copied, and a checkpoint deleted (``save_total_limit``) or
    replaced by a rename (Lightning's ``last.ckpt``) after the call is still uploaded as it was
    logged. A file rewritten in place shares the link's content: that is caught by the change
    checks. With ``copy`` (an offline run), a file that cannot be linked is copied, so the spool
    holds every byte it will send. The link is recorded relative to the spool folder (see
    ``located``): the spool may be read from another path or machine."""
    if spool is None:
        return
    for i, entry in enumerate(files):
        relative = f"{folder}/{i:06d}"
        link = spool / relative
        try:
            private_folder(link.parent)
            os.link(entry["src"], link)
        except OSError:
            if not copy:
                continue  # another file system, or no hard links: send the original path
            try:
                shutil.copy2(entry["src"], link)
                stat = link.stat()  # what was copied is what will be checked and sent
                entry["size"], entry["mtime_ns"] = stat.st_size, stat.st_mtime_ns
            except OSError:
                continue  # not even a copy: the original path, as online
        entry["src"] = relative


def located(files: list[dict[str, Any]], spool: Path | None) -> None:
    """Make each relative ``src`` (a snapshot inside the spool) a path where the spool is now."""
    if spool is None:
        return
    for entry in files:
        src = entry.get("src")
        if isinstance(src, str) and not os.path.isabs(src):
            entry["src"] = str(spool / src)


def record(kind: str, record_id: str, ids: dict[str, str], **fields: Any) -> bytes:
    """One artifact-spool line."""
    return orjson.dumps({"v": 1, "kind": kind, "id": record_id, **ids, **fields}) + b"\n"


def unchanged(entry: dict[str, Any]) -> None:
    """Raise ``FileChanged`` unless the file still has the size and time it had when logged."""
    try:
        stat = os.stat(entry["src"])
    except OSError as exc:
        raise FileChanged(f"{entry['path']} is gone ({exc.strerror})") from None
    if (stat.st_size, stat.st_mtime_ns) != (entry["size"], entry["mtime_ns"]):
        raise FileChanged(f"{entry['path']} was modified after it was logged")


def pause() -> None:
    """Between two chunks (about half a millisecond of hashing or sending), hand the core to a
    thread that waits for it: where the uploader shares a core with the training loop, a step
    waits for one chunk at most, not for the scheduler's time slice (~3 ms). Where no thread
    waits, the uploader goes on at once."""
    if _YIELD is not None:
        _YIELD()


def sha256_of(entry: dict[str, Any], stop: Callable[[], bool] | None = None) -> str | None:
    """The file's sha256, read in 1 MiB chunks (hashlib and reads release the GIL, so a training
    thread runs meanwhile); ``None`` if ``stop()`` turned true. Raises ``FileChanged``."""
    unchanged(entry)
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(entry["src"], "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
            pause()
            if stop is not None and stop():
                return None
    unchanged(entry)
    return digest.hexdigest()


def code_files() -> list[Path]:
    """The training script (``sys.argv[0]``) and the config files named on its command line
    (``.yaml``, ``.json``, ``.toml``, ... given as an argument or ``--flag=file``)."""
    found: list[Path] = []
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.suffix == ".py" and script.is_file():
        found.append(script.resolve())
    for arg in sys.argv[1:]:
        value = arg.split("=", 1)[1] if arg.startswith("-") and "=" in arg else arg
        path = Path(value)
        if path.suffix.lower() in CONFIG_SUFFIXES and path.is_file():
            resolved = path.resolve()
            if resolved not in found:
                found.append(resolved)
    return found


def matching(pattern: str | os.PathLike[str]) -> list[Path]:
    """Files matched by a path or a glob (``**`` recursive), as ``trackio.save`` matches them."""
    path = Path(pattern)
    if path.is_file():
        return [path.resolve()]
    text = str(path if path.is_absolute() else Path.cwd() / path)
    return sorted({Path(p).resolve() for p in glob.glob(text, recursive=True) if Path(p).is_file()})


def shown_name(file: Path, base: Path) -> str:
    """The file's name in the Files tab: its path relative to ``base``, else its own name."""
    try:
        return file.relative_to(base).as_posix()
    except ValueError:
        return file.name


def same_content(path: Path, entry: dict[str, Any]) -> bool:
    """An earlier download of the same content (size first, then the hash)."""
    with contextlib.suppress(OSError):
        if path.stat().st_size == entry["size"]:
            found = sha256_of(
                {
                    "src": str(path),
                    "path": entry["path"],
                    "size": entry["size"],
                    "mtime_ns": path.stat().st_mtime_ns,
                }
            )
            return found == entry["digest"]
    return False


def verified_write(
    chunks: Iterable[bytes], entry: dict[str, Any], target: Path, partial: Path | None = None
) -> None:
    """Write ``chunks`` to ``target`` atomically, if and only if they hash to the entry's digest
    (else ``ValueError``), through ``partial`` (default ``.<name>.partial`` beside it)."""
    partial = partial or target.with_name(f".{target.name}.partial")
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != entry["digest"]:
            raise ValueError(f"{entry['path']}: the downloaded bytes do not match its sha256")
        os.replace(partial, target)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
