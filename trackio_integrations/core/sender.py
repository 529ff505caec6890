"""The sender: one daemon thread that moves points from the spool to their target.

It wakes every ``interval`` (or when ``flush()`` asks), makes the spool durable (``fdatasync``), and
delivers what was pending when the cycle began, in batches, in order; then it sleeps again. Points
logged during a cycle wait for the next one, so at training rates a request carries a whole
interval's points instead of chasing the writer one point at a time. While a ``flush()`` waits,
the cycle goes on until nothing is pending. A batch is acknowledged in the spool only once the target has all of it, so a
crash anywhere means re-sending, never losing; the server's ``INSERT OR IGNORE`` on ``log_id``
makes re-sending harmless.

- Network errors, timeouts, 5xx: exponential backoff with jitter, points stay on disk.
- A rejected token: stop sending, say so once, keep every point for ``trackio-integrations sync``.
- A batch refused for its content: split it in halves until the bad points are alone, deliver the
  rest, and set the bad ones aside in a dead-letter file.
- Points with files (``media``): the files go first (``media_files``), then the points.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import orjson

from trackio_integrations.core.dead_letter import dead_letter
from trackio_integrations.core.media_files import ReadBlob, copy_files, upload_files
from trackio_integrations.core.records import CONFIG_PREFIX, MEDIA, kind_of
from trackio_integrations.core.spool import Batch, Spool
from trackio_integrations.core.transport import Outcome, Reply, Transport
from trackio_integrations.core.worker import Worker

logger = logging.getLogger("trackio_integrations")

MAX_REQUESTS_PER_BATCH = 100  # splitting a refused batch stops here until the next cycle


class Delivery(Protocol):
    """Where a batch of spool lines goes; ``send([])`` checks the target without storing anything.

    ``read_blob`` gives the bytes of the files that ``media`` lines reference.
    """

    def send(self, lines: Sequence[bytes], read_blob: ReadBlob | None = None) -> Reply: ...

    def close(self) -> None: ...


class HttpDelivery:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.target = transport.target

    def send(self, lines: Sequence[bytes], read_blob: ReadBlob | None = None) -> Reply:
        if read_blob is not None:
            reply = upload_files(self.transport, lines, read_blob)
            if reply.outcome is not Outcome.OK:
                return reply
        return self.transport.send(lines)

    def close(self) -> None:
        self.transport.close()


class InboxDelivery:
    """The embedded default: JSONL fragments that ``trackio show`` imports from its inbox.

    Each fragment appears whole (written aside, then renamed) and is named after its first point's
    time and ``log_id``, so writing the same batch twice replaces the file instead of adding one,
    and ``trackio show``, which imports a writer's fragments in the order of their names (the last
    config it reads wins), reads them in the order they were written. A point's ``log_id`` alone
    does not sort so: a Trainer's are made from the run id and the step, a config update's from
    the writer.
    """

    def __init__(self, trackio_dir: Path, writer_id: str) -> None:
        self.trackio_dir = trackio_dir
        self.folder = trackio_dir / "inbox" / writer_id

    def send(self, lines: Sequence[bytes], read_blob: ReadBlob | None = None) -> Reply:
        if not lines:
            return Reply(Outcome.OK, None, "")
        records = []
        first: Any = None
        for line in lines:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                return Reply(Outcome.REJECTED, None, "a spool line is not valid JSON")
            if not isinstance(record, dict) or not record.get("project") or not record.get("run"):
                return Reply(Outcome.REJECTED, None, "a point has no project or run")
            if record.get("kind") == MEDIA:  # its files first, where `trackio show` finds them
                copied = copy_files(self.trackio_dir, record, read_blob or (lambda name: None))
                if copied.outcome is not Outcome.OK:
                    return copied
                record["kind"] = "metric"
                record.pop("files", None)
            stamp = record.get("timestamp")
            if first is None:
                first = f"{_micros(stamp):017d}-{record.get('log_id') or time.time_ns()}"
            if isinstance(stamp, (int, float)):
                record["timestamp"] = datetime.fromtimestamp(stamp, timezone.utc).isoformat()
            records.append(orjson.dumps(record))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary = self.folder / f".{first}.tmp"
            temporary.write_bytes(b"\n".join(records) + b"\n")
            os.replace(temporary, self.folder / f"{first}.jsonl")
        except OSError as exc:
            return Reply(Outcome.RETRY, None, f"cannot write to {self.folder}: {exc}")
        return Reply(Outcome.OK, None, "")

    def close(self) -> None:
        pass


def _micros(stamp: Any) -> int:
    """A record's time (epoch seconds, or ISO 8601 as system samples and alerts carry it) in
    microseconds; now if it has none."""
    try:
        if isinstance(stamp, str):
            return int(datetime.fromisoformat(stamp).timestamp() * 1e6)
        if isinstance(stamp, (int, float)):
            return int(stamp * 1e6)
    except (ValueError, OverflowError):
        pass
    return int(time.time() * 1e6)


class Sender:
    """Owns one thread, started lazily by the process that uses it (a forked child gets its own)."""

    def __init__(
        self,
        spool: Spool,
        delivery: Delivery,
        *,
        root: Path,
        interval: float = 1.0,
        max_points: int = 2000,
        orphans: Callable[[], list[tuple[Spool, Delivery]]] | None = None,
        on_cycle: Callable[[], None] | None = None,
        backoff_cap: float = 30.0,
    ) -> None:
        self.spool = spool
        self.delivery = delivery
        self.root = root
        self.interval = interval
        self.max_points = max_points
        self.blocked: str | None = None
        self.last_error: str | None = None
        self.dead_lettered = 0  # points set aside for good: flush() and finish() say False
        self._retry_after: float | None = None
        self._known_good: bytes | None = None  # a point the server has stored (never a config)
        self._budget = MAX_REQUESTS_PER_BATCH
        self.on_progress: Callable[[int], None] | None = None
        self._orphans = orphans
        self._orphans_done = orphans is None
        self._on_cycle = on_cycle
        self._backoff_cap = backoff_cap
        self._failures = 0
        self._disk_reported = False
        self._flushing = 0  # flush() calls waiting: drain everything, not only the cycle's share
        self._done = threading.Condition()
        self._worker = Worker("trackio-integrations-sender", self._cycle, first=interval)

    # --- control, from any thread --------------------------------------------------------------

    @property
    def owned_here(self) -> bool:
        return self._worker.owned_here

    def ensure_started(self) -> None:
        self._worker.ensure_started()

    def flush(self, timeout: float | None) -> bool:
        """Wait until every point is delivered or ``timeout`` passes; True if none is pending and
        none was set aside as undeliverable."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.ensure_started()
        with self._done:
            self._flushing += 1
            self._worker.wake()
            try:
                while self.spool.pending and not self.blocked:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self._done.wait(remaining if remaining is not None else 1.0)
            finally:
                self._flushing -= 1
        return self.spool.pending == 0 and not self.dead_lettered

    def stop(self, timeout: float) -> bool:
        """Ask the thread to end after one last cycle; True if it has ended within ``timeout``."""
        return self._worker.stop(timeout)

    # --- the thread ----------------------------------------------------------------------------

    def _cycle(self, final: bool) -> float:
        """One cycle of the thread; returns the seconds to sleep before the next."""
        if final:  # flush() has had its chance: make the spool durable, end
            self.spool.sync()
            with self._done:
                self._done.notify_all()
            return 0.0
        try:
            if self._on_cycle is not None:
                self._on_cycle()
            self.spool.sync()
            self._report_disk_trouble()
            delivered = self.blocked is None and self.drain(self.spool, self.delivery)
            if delivered and not self._orphans_done:
                self._orphans_done = self._replay_orphans()
        except Exception as exc:  # never let the thread die: the points are on disk
            logger.exception("trackio-integrations: unexpected sender error")
            self.last_error = repr(exc)
            delivered = False
        with self._done:
            self._done.notify_all()
        if delivered or self.blocked:
            self._failures = 0
            return self.interval
        self._failures = min(self._failures + 1, 16)
        ceiling = min(self._backoff_cap, self.interval * 2**self._failures)
        wait, self._retry_after = self._retry_after or 0.0, None  # a 429's or 503's Retry-After
        import random  # only after a failure: a run that never fails never loads it

        return max(ceiling / 2 + random.uniform(0, ceiling / 2), wait)

    def drain(self, spool: Spool, delivery: Delivery) -> bool:
        """Deliver the points pending in ``spool`` now (or until none is, while a ``flush()``
        waits); points logged meanwhile wait for the next cycle. False to retry later."""
        left = spool.pending
        while (self._flushing or left > 0) and (batch := spool.next_batch(self.max_points)):
            batch = _one_config_per_batch(batch)
            self._budget = MAX_REQUESTS_PER_BATCH
            if not self._deliver(spool, delivery, batch.lines):
                return False
            spool.ack(batch)
            left -= len(batch.lines)
            if self.on_progress is not None:
                self.on_progress(len(batch.lines))
            with self._done:
                self._done.notify_all()
            if self._worker.stopping and spool is not self.spool:
                return True
        return True

    def _deliver(self, spool: Spool, delivery: Delivery, lines: list[bytes]) -> bool:
        """Send ``lines``; split a refused batch to find and set aside the points at fault.

        400 is about the content: split, and dead-letter a lone refused point. 500 is ambiguous
        (a sick server, or a point the server chokes on every time): a lone point is set aside
        only when the server still stores a point it stored before. A half that fails before
        anything proved the server healthy is tried again once its sibling has.
        """
        self._budget -= 1
        reply = delivery.send(lines, spool.read_blob)
        if reply.outcome is Outcome.OK:
            self.last_error = None
            self._remember_good(lines)
            return True
        if reply.outcome is Outcome.AUTH:
            self._block(delivery, reply)
            return False
        server_error = reply.outcome is Outcome.RETRY and reply.status == 500
        if not (reply.outcome is Outcome.REJECTED or server_error) or self._budget <= 0:
            return self._retry_later(reply)
        if len(lines) == 1:
            if server_error and not self._server_is_healthy(delivery):
                return self._retry_later(reply)
            path = dead_letter(self.root, spool, lines, reply.message or str(reply.status))
            self.dead_lettered += 1
            logger.warning(
                "trackio-integrations: %s can never be delivered (%s), not even on its own; it is "
                "set aside, with its files, in %s, and flush()/finish() report the run as not "
                "fully delivered.",
                describe(lines[0]),
                reply.message or f"HTTP {reply.status}",
                path,
            )
            return True
        half = len(lines) // 2
        left = self._deliver(spool, delivery, lines[:half])
        if self.blocked or (not left and self._known_good is not None):
            return False  # a sick server or a blocked target: no use going on
        right = self._deliver(spool, delivery, lines[half:])
        if not left and right and self._known_good is not None:
            left = self._deliver(spool, delivery, lines[:half])
        return left and right

    def _retry_later(self, reply: Reply) -> bool:
        self.last_error = reply.message or f"HTTP {reply.status}"
        self._retry_after = reply.retry_after
        logger.debug("trackio-integrations: delivery failed, will retry: %s", self.last_error)
        return False

    def _remember_good(self, lines: list[bytes]) -> None:
        for line in reversed(lines):
            # Sending an old config again would revert it; a media point's files are gone once sent.
            if not line.startswith(CONFIG_PREFIX) and kind_of(line) != MEDIA:
                self._known_good = line
                return

    def _server_is_healthy(self, delivery: Delivery) -> bool:
        """Does the server still store a point it stored before? Sending it again is harmless
        (its ``log_id`` is known), and tells a poison point from a server that fails every write.
        With no such point yet, assume the server is sick: retrying loses nothing."""
        if self._known_good is None:
            return False
        return delivery.send([self._known_good]).outcome is Outcome.OK

    def _report_disk_trouble(self) -> None:
        if self.spool.write_error is not None and not self._disk_reported:
            self._disk_reported = True
            logger.warning(
                "trackio-integrations: cannot write the spool (%s); points are now kept in memory "
                "and are lost if this process dies. Free the disk or set TRACKIO_SPOOL_DIR.",
                self.spool.write_error,
            )

    def _block(self, delivery: Delivery, reply: Reply) -> None:
        advice = (
            delivery.transport.auth_advice(reply)
            if isinstance(delivery, HttpDelivery)
            else reply.message
        )
        if self.blocked is None:
            self.blocked = advice
            logger.error(
                "trackio-integrations: sending stopped. %s %d point(s) are kept in %s; "
                "send them with `trackio-integrations sync`.",
                advice,
                self.spool.pending,
                self.spool.path or "memory",
            )

    def _replay_orphans(self) -> bool:
        """Send what earlier, dead writers left behind. True when there is nothing more to try."""
        assert self._orphans is not None
        complete = True
        for spool, delivery in self._orphans():
            try:
                if spool.pending:
                    logger.info(
                        "trackio-integrations: replaying %d point(s) left in %s",
                        spool.pending,
                        spool.path,
                    )
                if not self.drain(spool, delivery):
                    complete = False
            finally:
                spool.close()
                if delivery is not self.delivery:
                    delivery.close()
        return complete


def _one_config_per_batch(batch: Batch) -> Batch:
    """The server keeps only the first config of a run in a batch: end the batch before a second."""
    seen = False
    for i, line in enumerate(batch.lines):
        if line.startswith(CONFIG_PREFIX):
            if seen:
                return batch.head(i)
            seen = True
    return batch


def describe(line: bytes) -> str:
    """A spool line in words, for a message: its kind, step and first keys (never values)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "a point"
    if not isinstance(record, dict):
        return "a point"
    keys = list((record.get("metrics") or {}).keys())
    shown = ", ".join(repr(k) for k in keys[:3]) + (
        f" and {len(keys) - 3} more" if len(keys) > 3 else ""
    )
    kind = "a point with files" if record.get("kind") == MEDIA else "a point"
    step = record.get("step")
    return (
        f"{kind} of run {record.get('run')!r}"
        + (f" at step {step}" if step is not None else "")
        + (f" ({shown})" if shown else "")
    )


def close_quietly(delivery: Delivery) -> None:
    with contextlib.suppress(Exception):
        delivery.close()
