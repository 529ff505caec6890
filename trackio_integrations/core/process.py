"""What the clients of one process share: their run names, the live set, fork and exit hooks.

None of this is one run's business. ``client.py`` registers the two hooks when it is imported: a
forked child (a DataLoader worker) resets every live client, and process exit gives all of them one
short, bounded flush. The core knows a client only by the ``Live`` shape below, never by import.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any, Protocol

EXIT_FLUSH_TIMEOUT = 5.0


class Live(Protocol):
    """What the process hooks ask of a client (``TrackioClient`` is one)."""

    _sender: Any

    def _reset_after_fork(self) -> None: ...

    def finish(self, timeout: float = ..., artifact_timeout: float | None = ...) -> bool: ...


live: weakref.WeakSet[Live] = weakref.WeakSet()  # the clients not yet finished

# The process's open runs, oldest first; the current run is the one opened last and not finished.
# trackio's module API (``trackio.log`` after ``install()``) writes to it, so a library that logs
# through trackio (TRL) lands in the run a Trainer, a Lightning logger or an Accelerator opened,
# and when that run finishes, the run open before it (a user's ``trackio.init()``) is current
# again. A plain global, not a context variable: another thread, or code run through
# ``copy_context().run``, sees the same run.
_open_runs: list[Any] = []
_open_lock = threading.Lock()


def set_current(client: Any) -> None:
    """Make ``client`` the run that ``trackio.log()`` writes to (until it finishes)."""
    with _open_lock:
        if client in _open_runs:
            _open_runs.remove(client)
        _open_runs.append(client)


def current() -> Any:
    """The run ``trackio.log()`` writes to (opened last and not finished), or None."""
    with _open_lock:
        return _open_runs[-1] if _open_runs else None


def clear_current(client: Any) -> None:
    """``client`` finished: the run opened before it, if still open, is current again."""
    with _open_lock:
        if client in _open_runs:
            _open_runs.remove(client)


_ADJECTIVES = (
    "amber bold brisk calm clever crisp dapper eager fair gentle glad keen lively lucid merry "
    "nimble noble quiet rapid sharp silent steady sunny swift tidy vivid warm witty"
).split()
_NOUNS = (
    "badger comet delta falcon fjord glacier harbor heron lagoon lynx maple meadow nebula otter "
    "pine quasar raven river sparrow summit tundra valley willow zephyr"
).split()


def new_run_name() -> str:
    """Readable and unique enough: ``swift-otter-3f9a``. (``os.urandom``, not ``secrets``: that
    imports ``random``, ``hashlib`` and OpenSSL, milliseconds at every start.)"""
    a, b = os.urandom(2)
    return f"{_ADJECTIVES[a % len(_ADJECTIVES)]}-{_NOUNS[b % len(_NOUNS)]}-{os.urandom(2).hex()}"


def after_fork_in_child() -> None:
    for client in list(live):
        client._reset_after_fork()


def finish_all_at_exit() -> None:
    """Process exit never hangs on the client: all runs share one short, bounded flush."""
    deadline = time.monotonic() + EXIT_FLUSH_TIMEOUT
    for client in list(live):
        if client._sender is not None and client._sender.owned_here:
            left = max(deadline - time.monotonic(), 0.0)
            client.finish(timeout=left, artifact_timeout=left)
