"""One background thread, shared by every background part (the sender, samplers, uploaders).

It is started lazily by the process that uses it: a forked child that inherited the object starts
a thread of its own instead of trusting its parent's, which does not exist in the child. Its loop
sleeps ``delay`` seconds between cycles, wakes early when asked, and ends after one last cycle once
``stop`` is called, so a shutdown deadline can be split between the thread and its caller.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

logger = logging.getLogger("trackio_integrations")


class Worker:
    """Runs ``cycle(final)`` in a daemon thread; ``cycle`` returns the seconds until the next one.

    The first cycle comes ``first`` seconds after the start. ``final`` is True for the last
    cycle after ``stop()``. An exception in ``cycle`` is logged and
    the thread goes on after ``retry`` seconds: a background part must never die silently.
    """

    def __init__(
        self, name: str, cycle: Callable[[bool], float], first: float = 0.0, retry: float = 5.0
    ) -> None:
        self.name = name
        self._cycle = cycle
        self._first = first
        self._retry = retry
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._start_lock = threading.Lock()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def owned_here(self) -> bool:
        """Whether this process started the thread (False in a forked child)."""
        return self._pid == os.getpid()

    def ensure_started(self) -> None:
        if self._pid == os.getpid() and self._thread is not None:
            return
        with self._start_lock:
            if self._pid != os.getpid() or self._thread is None:
                self._pid = os.getpid()
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float) -> bool:
        """Ask for one last cycle and the end; True if the thread has ended within ``timeout``."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            thread.join(max(timeout, 0.0))
            return not thread.is_alive()
        return True

    def _run(self) -> None:
        delay = self._first
        while True:
            if delay > 0:
                self._wake.wait(delay)
            self._wake.clear()
            final = self._stop.is_set()
            try:
                delay = self._cycle(final)
            except Exception:
                logger.exception("trackio-integrations: unexpected error in %s", self.name)
                delay = self._retry
            if final:
                return
