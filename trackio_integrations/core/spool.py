"""The spool: a write-ahead queue on local disk, one folder per writer (process and run).

Layout of ``<root>/<writer id>/``:

- ``meta.json``: the target (URL or local folder, never a token), project, run, run id.
- ``00000000.jsonl``, ``00000001.jsonl``, ...: segments of points, one JSON object per line,
  appended with one ``write()`` each. A line the OS has accepted survives the death of the process;
  the sender ``fdatasync``s every cycle, so a power loss costs at most the last cycle (1 s; 5 s for local storage).
- ``ack``: the position up to which the server has confirmed delivery.
- ``blobs/``: the files (images, audio, video) that points reference (see ``blobs``); they count
  against the size limit like segments.
- ``lock``: ``flock``ed by the live writer. A folder nobody holds is an orphan: its pending points
  are replayed by the next client or by ``trackio-integrations sync``.

When the disk refuses a point (an error, or ``TRACKIO_SPOOL_MAX_MB``), points wait in a bounded
queue in memory instead, the oldest dropped first; see ``append``.

Points rejected by the server for their content are set aside by ``dead_letter``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from trackio_integrations.core.blobs import Blobs

SEGMENT_BYTES = 8 * 1024 * 1024
MEMORY_LIMIT = 200_000  # points kept in memory when the disk refuses them
META, LOCK, ACK, BLOBS = "meta.json", "lock", "ack", "blobs"


def max_bytes(env: dict[str, str] | None = None) -> int:
    """A writer's spool stops growing on disk at ``TRACKIO_SPOOL_MAX_MB`` (default 10 GiB)."""
    env = dict(os.environ) if env is None else env
    try:
        return max(int(env.get("TRACKIO_SPOOL_MAX_MB", "10240")), 1) << 20
    except ValueError:
        return 10240 << 20


def default_root(env: dict[str, str] | None = None) -> Path:
    """``TRACKIO_SPOOL_DIR``, else ``$XDG_CACHE_HOME/trackio-integrations/spool``."""
    env = dict(os.environ) if env is None else env
    if env.get("TRACKIO_SPOOL_DIR"):
        return Path(env["TRACKIO_SPOOL_DIR"]).expanduser()
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "trackio-integrations" / "spool"


@dataclass(frozen=True)
class Batch:
    lines: list[bytes]
    segment: int
    start: int
    end: int  # disk: byte offset just past the last line; memory: sequence number past it
    in_memory: bool = False

    def head(self, n: int) -> Batch:
        lines = self.lines[:n]
        if self.in_memory:
            return Batch(lines, self.segment, self.start, self.start + len(lines), True)
        end = self.start + sum(len(line) + 1 for line in lines)
        return Batch(lines, self.segment, self.start, end, self.in_memory)


class Spool:
    """One writer's queue. ``append`` is the training hot path; the rest is the sender's."""

    def __init__(self, path: Path | None, meta: dict[str, Any], lock_fd: int | None) -> None:
        self.path = path
        self.meta = meta
        self._lock_fd = lock_fd
        self._write_fd: int | None = None
        self._unsynced: list[int] = []  # fds of finished segments still to fdatasync and close
        self._segment = 0
        self._size = 0
        self._read_fds: dict[int, int] = {}
        self._ack = (0, 0)
        self._appended = 0  # lines written to disk; by the writer only
        self._acked = 0  # lines on disk confirmed; by the sender only
        # The memory queue is shared by the writer (append, eviction) and the sender (ack), so
        # every change to it holds this lock. Its points carry consecutive sequence numbers:
        # _memory[i] is number _memory_head + i, and the sender acknowledges by number.
        self._memory_lock = threading.Lock()
        self._memory: deque[bytes] = deque()
        self._memory_head = 0
        self._evicted_to = 0  # every number below it left memory by eviction or by ack
        self._memory_acked_to = 0  # every number below it was acknowledged
        self.blobs = Blobs(path / BLOBS if path else None)
        self.dropped = 0  # points pushed out of memory and never delivered
        self.write_error: OSError | None = None
        self.max_bytes = max_bytes()

    # --- opening -------------------------------------------------------------------------------

    @classmethod
    def create(cls, root: Path, writer_id: str, meta: dict[str, Any]) -> Spool:
        """A new writer folder under ``root``; raises ``OSError`` if the disk refuses."""
        path = root / writer_id
        private_folder(root)
        path.mkdir(mode=0o700)
        write_private(path / META, orjson.dumps(meta))
        lock_fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        spool = cls(path, meta, lock_fd)
        spool._write_fd = spool._open_segment(0)
        return spool

    @classmethod
    def in_memory(cls, meta: dict[str, Any]) -> Spool:
        """The fallback when no spool folder can be written: bounded, and lost with the process."""
        return cls(None, meta, None)

    @classmethod
    def adopt(cls, path: Path) -> Spool | None:
        """Take over an orphan folder; ``None`` if a live writer holds it or it is not a spool."""
        return cls._open_existing(path, lock=True)

    @classmethod
    def inspect(cls, path: Path) -> tuple[Spool, bool] | None:
        """Read a folder without taking it: (spool, whether a live writer holds it)."""
        spool = cls._open_existing(path, lock=True)
        if spool is not None:
            spool._release_lock()
            return spool, False
        spool = cls._open_existing(path, lock=False)
        return (spool, True) if spool is not None else None

    @classmethod
    def _open_existing(cls, path: Path, lock: bool) -> Spool | None:
        try:
            meta = orjson.loads((path / META).read_bytes())
            lock_fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o600) if lock else None
        except (OSError, orjson.JSONDecodeError):
            return None
        if lock_fd is not None:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(lock_fd)
                return None
        spool = cls(path, meta, lock_fd)
        segments = spool._segments()
        spool._segment = segments[-1] if segments else 0
        spool._ack = spool._read_ack(segments)
        spool._appended = spool._count_pending()
        return spool

    @staticmethod
    def folders(root: Path) -> list[Path]:
        """Every writer folder under ``root`` (live or orphan), oldest first."""
        try:
            found = [p for p in root.iterdir() if (p / META).is_file()]
        except OSError:
            return []
        return sorted(found, key=lambda p: p.stat().st_mtime)

    # --- the hot path --------------------------------------------------------------------------

    def append(self, line: bytes) -> None:
        """Append one point (a JSON object and ``\\n``). When the disk refuses it (an error, or the
        spool's size limit), keep it in memory; go back to disk once memory has drained."""
        if (
            self._write_fd is None
            and self.path is not None
            and not self._memory
            and not self.blobs.in_memory
        ):
            self._resume_disk()
        if self._write_fd is not None:
            try:
                written = os.write(self._write_fd, line)
                if written != len(line):  # a torn line is never read: the reader wants b"\n"
                    raise OSError(errno.ENOSPC, "short write to the spool")
                self._size += written
                self._appended += 1
                if self._size >= SEGMENT_BYTES:
                    self._rotate()
                return
            except OSError as exc:
                self._to_memory(exc)
        with self._memory_lock:
            if len(self._memory) >= MEMORY_LIMIT:  # the oldest point makes room
                self.blobs.free([self._memory.popleft()])
                self._memory_head += 1
                self._evicted_to = self._memory_head
                self.dropped += 1  # taken back in ack() if it was in flight and arrives
            self._memory.append(line)

    def _rotate(self) -> None:
        assert self._write_fd is not None
        if self._at_size_limit():
            limit = self.max_bytes >> 20
            self._to_memory(OSError(errno.ENOSPC, f"the spool reached its {limit} MB limit"))
            return
        next_fd = self._open_segment(self._segment + 1)
        self._unsynced.append(self._write_fd)
        self._write_fd = next_fd
        self._size = 0
        self._segment += 1  # only now may the sender treat the previous segment as complete

    def _at_size_limit(self, adding: int = 0) -> bool:
        """Undelivered segments on disk, counted as full, and files reach ``max_bytes``."""
        segments = (self._segment - self._ack[0] + 1) * SEGMENT_BYTES
        return segments + self.blobs.size + adding >= self.max_bytes

    def write_blob(self, data: bytes, suffix: str = "") -> str:
        """Keep the bytes of a file that the next point references; its name for that point.

        On disk, whole, before the caller appends the point. Past the size limit, or when the
        disk refuses, the file and the points after it wait in memory, like points do;
        ``OSError`` when memory is full too.
        """
        if self._write_fd is not None and self._at_size_limit(len(data)):
            limit = self.max_bytes >> 20
            self._to_memory(OSError(errno.ENOSPC, f"the spool reached its {limit} MB limit"))
        if self._write_fd is not None:
            try:
                return self.blobs.write(data, suffix)
            except OSError as exc:
                self._to_memory(exc)
        return self.blobs.write(data, suffix, disk=False)

    def read_blob(self, name: str) -> bytes | None:
        return self.blobs.read(name)

    def _to_memory(self, error: OSError) -> None:
        self.write_error = error
        if self._write_fd is not None:
            self._unsynced.append(self._write_fd)
            self._write_fd = None

    def _resume_disk(self) -> None:
        """Everything earlier was delivered: a new segment keeps the order of points intact."""
        if self._at_size_limit():
            return
        try:
            fd = self._open_segment(self._segment + 1)
        except OSError:
            return
        self._write_fd, self._size = fd, 0
        self._segment += 1

    def _open_segment(self, number: int) -> int:
        assert self.path is not None
        return os.open(
            self.path / f"{number:08d}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )

    # --- the sender's side ---------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Points not yet confirmed: on disk, and waiting in memory."""
        return max(self._appended - self._acked, 0) + len(self._memory)

    @property
    def pending_in_memory(self) -> int:
        """Points waiting in memory only: lost if the process ends before they are delivered."""
        return len(self._memory)

    @property
    def writer_id(self) -> str:
        return str(self.meta.get("writer", self.path.name if self.path else "memory"))

    def sync(self) -> None:
        """Make what was appended survive a power loss (called by the sender, off the hot path)."""
        self.blobs.sync()
        while self._unsynced:
            fd = self._unsynced.pop()
            with contextlib.suppress(OSError):
                os.fdatasync(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._write_fd is not None:
            with contextlib.suppress(OSError):
                os.fdatasync(self._write_fd)

    def next_batch(self, max_points: int, max_bytes: int = 4 << 20) -> Batch | None:
        """The oldest unconfirmed points, at most ``max_points`` whole lines."""
        while self.path is not None:
            segment, offset = self._ack
            fd = self._read_fd(segment)
            data = os.pread(fd, max_bytes, offset) if fd is not None else b""
            cut = data.rfind(b"\n")
            while cut < 0 and len(data) == max_bytes:  # one line longer than max_bytes
                max_bytes *= 2
                data = os.pread(fd, max_bytes, offset) if fd is not None else b""
                cut = data.rfind(b"\n")
            if cut >= 0:
                lines = [line for line in data[:cut].split(b"\n") if line]
                batch = Batch(lines, segment, offset, offset + cut + 1)
                return batch.head(max_points) if len(lines) > max_points else batch
            if segment >= self._segment:
                break  # nothing complete yet in the segment being written
            self._finish_segment(segment)  # an older segment read to its end (torn tail ignored)
        with self._memory_lock:
            if self._memory:
                lines = [self._memory[i] for i in range(min(max_points, len(self._memory)))]
                start = self._memory_head
                return Batch(lines, -1, start, start + len(lines), in_memory=True)
        return None

    def ack(self, batch: Batch) -> None:
        """The server has every point of ``batch``: never send them again (nor their files)."""
        if self.blobs.count:
            self.blobs.free(batch.lines)
        if batch.in_memory:
            self._ack_memory(batch)
            return
        self._acked += len(batch.lines)
        self._ack = (batch.segment, batch.end)
        self._write_ack()

    def _ack_memory(self, batch: Batch) -> None:
        """Remove the batch's points by number, not by position: while it was in flight, newer
        points may have pushed some of them out (counted as dropped, though they have arrived)."""
        with self._memory_lock:
            start = max(
                batch.start, self._memory_acked_to
            )  # a batch acknowledged twice counts once
            arrived_anyway = max(min(batch.end, self._evicted_to) - start, 0)
            self.dropped -= arrived_anyway
            while self._memory and self._memory_head < batch.end:
                self._memory.popleft()
                self._memory_head += 1
            self._memory_acked_to = max(self._memory_acked_to, batch.end)

    def _finish_segment(self, segment: int) -> None:
        fd = self._read_fds.pop(segment, None)
        if fd is not None:
            os.close(fd)
        assert self.path is not None
        with contextlib.suppress(OSError):
            (self.path / f"{segment:08d}.jsonl").unlink()
        self._ack = (segment + 1, 0)
        self._write_ack()

    def _read_fd(self, segment: int) -> int | None:
        fd = self._read_fds.get(segment)
        if fd is None:
            assert self.path is not None
            try:
                fd = os.open(self.path / f"{segment:08d}.jsonl", os.O_RDONLY)
            except FileNotFoundError:
                return None
            self._read_fds[segment] = fd
        return fd

    def _write_ack(self) -> None:
        assert self.path is not None
        # Written in place: a torn or stale ack only means re-sending points the server ignores.
        record = f"{self._ack[0]} {self._ack[1]}\n".encode().ljust(32)
        try:
            fd = os.open(self.path / ACK, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.pwrite(fd, record, 0)
            finally:
                os.close(fd)
        except OSError:
            pass

    def _read_ack(self, segments: list[int]) -> tuple[int, int]:
        assert self.path is not None
        try:
            segment, offset = (int(x) for x in (self.path / ACK).read_text().split()[:2])
        except (OSError, ValueError):
            return (segments[0] if segments else 0, 0)
        return (segment, offset)

    def _segments(self) -> list[int]:
        assert self.path is not None
        return sorted(int(p.stem) for p in self.path.glob("*.jsonl") if p.stem.isdigit())

    def pending_lines(self) -> Iterator[bytes]:
        """Every line not yet confirmed, oldest first: for saying what waits, not for sending."""
        if self.path is not None:
            for segment in self._segments():
                fd = self._read_fd(segment) if segment >= self._ack[0] else None
                if fd is None:
                    continue
                offset = self._ack[1] if segment == self._ack[0] else 0
                tail = b""
                while chunk := os.pread(fd, 1 << 20, offset):
                    offset += len(chunk)
                    *whole, tail = (tail + chunk).split(b"\n")
                    yield from (line for line in whole if line)
        with self._memory_lock:
            waiting = list(self._memory)
        yield from waiting

    def _count_pending(self) -> int:
        count = 0
        for segment in self._segments():
            if segment < self._ack[0]:
                continue
            fd = self._read_fd(segment)
            if fd is None:
                continue
            offset = self._ack[1] if segment == self._ack[0] else 0
            while chunk := os.pread(fd, 1 << 20, offset):
                count += chunk.count(b"\n")
                offset += len(chunk)
        return count

    # --- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the folder; delete it when everything in it was delivered (without making it
        durable first: a folder about to go needs no ``fdatasync``, which can take milliseconds
        on a busy disk)."""
        # only the holder of the lock deletes
        delivered = self.path is not None and self._lock_fd is not None and self.pending == 0
        if not delivered:
            self.sync()
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None
        for fd in self._read_fds.values():
            os.close(fd)
        self._read_fds.clear()
        if delivered:
            for fd in self._unsynced:  # finished segments, delivered too
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._unsynced = []
            assert self.path is not None
            shutil.rmtree(self.path, ignore_errors=True)
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def abandon_after_fork(self) -> None:
        """In a forked child: forget the parent's descriptors without touching its files or lock."""
        self._write_fd = None
        self._unsynced = []
        self._read_fds = {}
        self._lock_fd = None


def private_folder(path: Path) -> None:
    """``path`` and each folder above it that does not exist yet, readable by the user only
    (``mkdir(parents=True, mode=...)`` gives the mode to the last folder alone)."""
    missing: list[Path] = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    if not path.is_dir():
        raise NotADirectoryError(str(path))


def write_private(path: Path, data: bytes) -> None:
    """Spool files hold the user's metrics: readable by the user only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
