"""The files of a writer's points (images, audio, video): kept beside its spool until delivered.

``<spool folder>/blobs/<name>``: each file is written whole (aside, then renamed) before the point
that references it is appended, and deleted once that point is delivered. When the disk refuses
(an error, or the spool's size limit), the bytes wait in memory, up to ``MEMORY_BYTES``.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable
from pathlib import Path

from trackio_integrations.core.records import files_of

MEMORY_BYTES = 256 << 20


class Blobs:
    """One writer's files. ``write`` is the writer's; ``read``, ``free`` and ``sync`` the sender's."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._memory: dict[str, bytes] = {}
        self._seq = 0
        self._written = self._count = 0  # bytes and files, counted by the writer only ...
        self._freed = self._deleted = 0  # ... and by the sender only
        self._unsynced: list[str] = []
        if folder is not None and folder.is_dir():  # an orphan's: count what it left
            sizes = [p.stat().st_size for p in folder.iterdir() if not p.name.startswith(".")]
            self._written, self._count = sum(sizes), len(sizes)

    @property
    def count(self) -> int:
        """Files waiting for their points to be delivered."""
        return max(self._count - self._deleted, 0)

    @property
    def size(self) -> int:
        """Their bytes."""
        return max(self._written - self._freed, 0)

    @property
    def in_memory(self) -> bool:
        return bool(self._memory)

    def write(self, data: bytes, suffix: str, disk: bool = True) -> str:
        """Keep ``data``; its name. ``OSError`` if the disk (``disk=True``) or memory refuses."""
        name = f"{self._seq:010d}{suffix}"
        self._seq += 1
        if disk and self.folder is not None:
            self.folder.mkdir(mode=0o700, exist_ok=True)
            temporary = self.folder / f".{name}.tmp"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, "short write to the spool")
            finally:
                os.close(fd)
            os.replace(temporary, self.folder / name)
            self._unsynced.append(name)
        else:
            if sum(map(len, list(self._memory.values()))) + len(data) > MEMORY_BYTES:
                raise OSError(errno.ENOMEM, "the spool's disk and memory are both full")
            self._memory[name] = data
        self._written += len(data)
        self._count += 1
        return name

    def read(self, name: str) -> bytes | None:
        """A file's bytes, or None when they are lost (deleted, or never written)."""
        data = self._memory.get(name)
        if data is not None or self.folder is None or "/" in name:
            return data
        try:
            return (self.folder / name).read_bytes()
        except OSError:
            return None

    def free(self, lines: Iterable[bytes]) -> None:
        """Delete the files of delivered points."""
        for line in lines:
            for entry in files_of(line):
                name = str(entry.get("blob"))
                data = self._memory.pop(name, None)
                size = len(data) if data is not None else self._unlink(name)
                if size is not None:
                    self._freed += size
                    self._deleted += 1

    def sync(self) -> None:
        """Make the files written so far survive a power loss (the sender's, each cycle)."""
        while self._unsynced:
            assert self.folder is not None
            with contextlib.suppress(OSError):
                fd = os.open(self.folder / self._unsynced.pop(), os.O_RDONLY)
                try:
                    os.fdatasync(fd)
                finally:
                    os.close(fd)

    def _unlink(self, name: str) -> int | None:
        if self.folder is None or "/" in name:
            return None
        path = self.folder / name
        try:
            size = path.stat().st_size
            path.unlink()
        except OSError:
            return None
        return size
