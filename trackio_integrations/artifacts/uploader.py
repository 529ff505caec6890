"""The uploader: a patient background worker for artifacts, lineage and project files.

Large uploads do not go through the points' spool and sender: a gigabyte must never delay the
next batch of points. Each run (and process) that logs an artifact gets an ``Uploader``: its own
spool (``<spool root>/artifacts/<writer>/``, the same ``Spool`` class with its own ack cursor),
its own thread (the shared ``Worker``) and its own connection. It takes one request at a time,
in order: hash the files (sha256, streamed), ask the target which blobs it has, send the others
one by one (streamed, under ``TRACKIO_UPLOAD_MBPS``), record the version. A request is
acknowledged only once the target has recorded it, so a process killed mid-upload leaves it to
the next client of the same target or to ``trackio-integrations sync``; the blobs already on the
target are not sent again. The digests are kept beside the spool once computed
(``manifests/<id>.json``), so a resumed request sends the bytes that were hashed or nothing.

A request whose files changed after they were logged (see ``files.py``), or that the
target refuses for its content, is set aside in ``<spool root>/artifacts/dead-letter/<writer>.jsonl``
with the reason, and reported: never uploaded as something else, never retried forever. The
requests themselves are worked through by ``upload_queue.Queue``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from trackio_integrations.artifacts.files import record, snapshot
from trackio_integrations.artifacts.local import LocalStore
from trackio_integrations.artifacts.model import Artifact
from trackio_integrations.artifacts.server import Throttle
from trackio_integrations.artifacts.upload_queue import Queue, Store, make_store, upload_mbps
from trackio_integrations.core.spool import Spool
from trackio_integrations.core.target import Target
from trackio_integrations.core.worker import Worker

if TYPE_CHECKING:
    import httpx  # loaded only for a server or a Space (in transport.py)

logger = logging.getLogger("trackio_integrations")

ARTIFACTS = "artifacts"  # the uploaders' spools, under the spool root
UPLOADER_THREAD = "trackio-integrations-uploader"
IDLE = 5.0  # seconds between cycles with nothing to do (a new request wakes the thread)
STALL = 60.0  # finish() stops waiting for an upload that made no progress for this long


class Uploader:
    """One run's artifact spool and background worker (one upload at a time)."""

    def __init__(
        self,
        spool_root: Path,
        target: Target,
        ids: dict[str, str],
        *,
        transport: httpx.BaseTransport | None = None,
        offline: bool = False,
    ) -> None:
        self.offline = offline  # requests are only written: no thread, no connection
        self.root = spool_root / ARTIFACTS
        self.target = target
        self.ids = ids
        self.throttle = Throttle(upload_mbps())
        self._stop = threading.Event()
        self._transport = transport
        self.store: Store | None = None  # made by the worker: a connection costs ~0.1 s to set up
        self.writer_id = os.urandom(8).hex()
        meta = {
            "writer": self.writer_id,
            "target": target.public(),
            **ids,
            "pid": os.getpid(),
            "mode": "offline" if offline else "online",
        }
        try:
            self.spool = Spool.create(self.root, self.writer_id, meta)
        except OSError as exc:
            logger.warning(
                "trackio-integrations: cannot write the artifact spool in %s (%s); uploads are "
                "queued in memory and lost if this process dies.",
                self.root,
                exc,
            )
            self.spool = Spool.in_memory(meta)
        self.queue = Queue(self.root)
        self._seq = 0
        self._lock = threading.Lock()
        self._done = threading.Condition()
        self._failures = 0
        self._cycles = 0
        self._reader: Store | None = None
        self._orphans_done = False
        self._worker = Worker(UPLOADER_THREAD, self._cycle, first=0.0)
        self.queue.stopping = lambda: self._stop.is_set() or self._worker.stopping
        if not offline:
            self._worker.ensure_started()

    @property
    def pending(self) -> int:
        return self.spool.pending

    def submit(
        self, kind: str, files: list[dict[str, Any]] | None, handle: Artifact | None, **fields: Any
    ) -> None:
        """Append one request (durable before this returns) and wake the worker."""
        with self._lock:
            record_id = f"{self.writer_id}-{self._seq:08d}"
            self._seq += 1
            if files is not None:
                snapshot(files, self.spool.path, f"snapshots/{record_id}", copy=self.offline)
                fields["files"] = files
            if handle is not None:
                self.queue.handles[record_id] = handle
            self.spool.append(record(kind, record_id, self.ids, **fields))
        if not self.offline:
            self._worker.wake()

    def flush(self, timeout: float, stall: float = STALL) -> bool:
        """Wait while requests are pending and uploads progress (at most ``timeout``); a target
        that does not answer is not waited for. True when nothing is pending."""
        started = time.monotonic()
        deadline = started + timeout
        cycles = self._cycles
        self._worker.wake()  # a target that failed before gets one more attempt now
        with self._done:
            while self.spool.pending and self.queue.blocked is None:
                now = time.monotonic()
                failed = self._failures and self._cycles > cycles
                stalled = now - max(self.queue.progress_at, started) > stall
                if now >= deadline or stalled or failed:
                    break
                self._done.wait(min(deadline - now, 0.5))
        return self.spool.pending == 0

    def finish(self, timeout: float, stall: float = STALL) -> bool:
        """Wait as ``flush`` does, then stop; what is left stays queued for ``sync``."""
        if self.offline:  # nothing was meant to be sent: the requests wait for ``sync``
            self.spool.close()
            return True
        if self.spool.pending:
            logger.info("trackio-integrations: waiting for %d upload(s) to finish", self.pending)
        ok = self.flush(timeout, stall)
        self._stop.set()  # an upload in flight ends at its next chunk and stays queued
        stopped = self._worker.stop(5.0)
        if not ok:
            reason = self.queue.blocked or self.queue.last_error or "still uploading"
            logger.warning(
                "trackio-integrations: %d upload request(s) (artifacts, files, the run's "
                "provenance when on) not yet delivered to %s (%s). They are kept in %s: "
                "`trackio-integrations sync` (or the next run to the same target) resumes them, "
                "blobs already sent are not sent again; `trackio-integrations sync --discard %s` "
                "deletes them.",
                self.pending,
                self.target,
                reason,
                self.spool.path or "memory",
                self.target.url or "local",
            )
        if stopped:
            self.spool.close()
            if self.store is not None:
                self.store.close()
        return ok

    def close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def reader(self) -> Store:
        """A connection of its own for reads on the caller's thread (``use_artifact``,
        ``download``), so they never queue behind an upload."""
        if self._reader is None:
            self._reader = make_store(self.target, Throttle(None), None, self._transport)
        return self._reader

    def abandon_after_fork(self) -> None:
        self.spool.abandon_after_fork()

    def _moved(self, n: int) -> None:
        self.queue.progress_at = time.monotonic()

    def _cycle(self, final: bool) -> float:
        if self._cycles == 0:
            _lower_priority()
        if not final:
            try:
                self.spool.sync()
                if self.store is None:
                    self.store = make_store(self.target, self.throttle, self._stop, self._transport)
                    self.store.progress = self._moved
                ok = self.queue.blocked is None and self.queue.drain(self.spool, self.store)
                if ok and not self._orphans_done:
                    self._orphans_done = self._replay_orphans()
            except Exception as exc:
                logger.exception("trackio-integrations: unexpected uploader error")
                self.queue.last_error = repr(exc)
                ok = False
            self._failures = 0 if ok or self.queue.blocked else min(self._failures + 1, 16)
        with self._done:
            self._cycles += 1
            self._done.notify_all()
        if final or not self._failures:
            return IDLE
        ceiling = min(30.0, 2.0**self._failures)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _replay_orphans(self) -> bool:
        """Requests left by dead writers, for this target or local storage."""
        complete = True
        for folder in Spool.folders(self.root):
            if folder == self.spool.path or (spool := Spool.adopt(folder)) is None:
                continue
            if spool.meta.get("mode") == "offline":  # kept for `sync`
                spool.close()
                continue
            target = spool.meta.get("target") or {}
            store: Store | None = None
            if target.get("kind") == "local" and target.get("trackio_dir"):
                store = LocalStore(target["trackio_dir"], self.throttle, self._stop)
                store.progress = self._moved
            elif self.target.url and target.get("url") == self.target.url:
                store = self.store
            try:
                if store is not None and spool.pending:
                    logger.info(
                        "trackio-integrations: resuming %d upload(s) left in %s",
                        spool.pending,
                        folder,
                    )
                    complete = self.queue.drain(spool, store) and complete
            finally:
                spool.close()
                if store is not None and store is not self.store:
                    store.close()
        return complete


def _lower_priority() -> None:
    """Make this thread patient: on a busy machine, the training loop's threads go first.
    Linux sets the nice value of one thread (by its id); elsewhere it would be the process's."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), 10))


def pending_requests(spool: Spool) -> tuple[int, int]:
    """(requests, bytes in their files) waiting in an artifact spool."""
    batch = spool.next_batch(1_000_000, 64 << 20)
    total = 0
    for line in batch.lines if batch else []:
        with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
            total += sum(int(f["size"]) for f in orjson.loads(line).get("files") or [])
    return spool.pending, total


def orphans_waiting(root: Path, target: Target) -> bool:
    """Whether an artifact spool nobody holds waits for ``target`` or for local storage."""
    for folder in Spool.folders(root / ARTIFACTS):
        found = Spool.inspect(folder)
        if found is None:
            continue
        spool, live = found
        kept = (spool.meta.get("target") or {}).copy()
        spool.close()
        ours = kept.get("kind") == "local" or (target.url and kept.get("url") == target.url)
        if not live and ours and spool.meta.get("mode") != "offline":
            return True
    return False


def queued(root: Path) -> list[dict[str, Any]]:
    """The artifact spools under a spool root, for ``status``: target, project, run, requests."""
    rows = []
    for folder in Spool.folders(root / ARTIFACTS):
        found = Spool.inspect(folder)
        if found is None:
            continue
        spool, live = found
        requests, size = pending_requests(spool)
        target = spool.meta.get("target") or {}
        rows.append(
            {
                "target": target.get("url") or f"local:{target.get('trackio_dir')}",
                "project": spool.meta.get("project"),
                "run": spool.meta.get("run"),
                "requests": requests,
                "bytes": size,
                "state": f"live (pid {spool.meta.get('pid')})"
                if live
                else ("offline run, waiting" if spool.meta.get("mode") == "offline" else "waiting"),
            }
        )
        spool.close()
    return rows


def sync(
    root: Path,
    target_for: Callable[[dict[str, Any]], Target],
    project: str | None,
    retries: int,
    report: Callable[[dict[str, Any], int, int, str | None], None] | None = None,
    refused: Callable[[Target], str] | None = None,
) -> tuple[int, dict[str, int], int, int]:
    """Send the requests left in the artifact spools under ``root`` (``trackio-integrations
    sync``): (requests sent, requests left per target, set aside, spools in use by live runs).
    ``report(meta, sent, left, why)`` is told each spool's outcome (the per-run table);
    ``refused(target)`` words a refused token (the command reports it, the queue does not log it)."""
    queue = Queue(root / ARTIFACTS)
    queue.announce = refused is None
    left: dict[str, int] = {}
    busy = 0
    for folder in Spool.folders(root / ARTIFACTS):
        spool = Spool.adopt(folder)
        if spool is None:
            busy += 1
            continue
        if not spool.pending or (project and spool.meta.get("project") != project):
            spool.close()
            continue
        target = target_for(spool.meta)
        store = make_store(target, Throttle(upload_mbps()))
        queue.blocked = None
        done_before = queue.done
        try:
            for attempt in range(max(retries, 1)):
                if queue.drain(spool, store) or queue.blocked:
                    break
                time.sleep(min(2.0**attempt, 10.0))
            reason = None
            if spool.pending:
                reason = queue.blocked or queue.last_error or "not delivered"
                where = f"{target} ({reason})"
                if queue.blocked and refused is not None:
                    reason = refused(target)
                    where = f"{target}: {reason}"
                left[where] = left.get(where, 0) + spool.pending
            if report is not None:
                report(spool.meta, queue.done - done_before, spool.pending, reason)
        finally:
            spool.close()
            store.close()
    return queue.done, left, queue.set_aside, busy
