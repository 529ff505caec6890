"""The run's watcher, from the training process's side: start it, tell it the run finished.

A watcher is a small process (``python -m trackio_integrations.cli.watcher``) started once per
online run, off the training thread. It holds no training state: it waits for this process to
die, and if the run was not finished first it delivers what the spool holds, as ``sync`` does,
then adds one alert saying how the run ended (see ``cli/watcher.py``). Costs the training loop
nothing: no call per point, one pipe held open.

What it is handed travels through that pipe, never the command line or the disk: the target
(with its tokens) and the webhook. A clean ``finish()`` writes ``F`` and closes the pipe; the
watcher then exits at once. A forked child (a DataLoader worker) closes its copy of the pipe and
forgets the process: it neither starts a watcher nor ends its parent's.

``TRACKIO_WATCHER=0`` turns it off; ``TRACKIO_WATCHER_WAIT`` is how long (seconds, default 600)
it keeps trying a server that is down before it leaves the spool to ``sync`` (and says so in
``status``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson

from trackio_integrations.core.spool import write_private

logger = logging.getLogger("trackio_integrations")

FINISHED = b"F"
STATE = "watcher.json"  # in the spool folder: who watches it, or why it gave up (for `status`)
CONFIG = "config.json"  # the run's last config, so that a status can be added to it, not replace it
LOCK = "watcher.lock"  # flocked by a live watcher: its run's spool is no other client's orphan
DEFAULT_WAIT = 600.0


def enabled(env: dict[str, str] | None = None) -> bool:
    env = dict(os.environ) if env is None else env
    return env.get("TRACKIO_WATCHER", "1").strip().lower() not in ("0", "false", "no", "off")


def wait_seconds(env: dict[str, str] | None = None) -> float:
    env = dict(os.environ) if env is None else env
    try:
        return max(float(env.get("TRACKIO_WATCHER_WAIT", DEFAULT_WAIT)), 0.0)
    except ValueError:
        return DEFAULT_WAIT


def save_config(folder: Path | None, config: dict[str, Any]) -> None:
    """Keep the run's config beside its spool (written when the config changes, not per point)."""
    if folder is not None:
        with contextlib.suppress(OSError, TypeError):
            write_private(folder / CONFIG, orjson.dumps(config))


def hold(folder: Path) -> int | None:
    """The watcher's lock on ``folder`` (held for its life), or None where it cannot be taken."""
    try:
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def watched(folder: Path) -> bool:
    """Whether a live watcher will deliver this spool folder (then the next client leaves it)."""
    try:
        fd = os.open(folder / LOCK, os.O_RDWR)
    except OSError:
        return False  # never watched (or not readable here)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def watcher_state(folder: Path) -> dict[str, Any] | None:
    """What the watcher of a spool folder last wrote there (``status`` shows it), or None."""
    try:
        state = orjson.loads((folder / STATE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return state if isinstance(state, dict) else None


class Watcher:
    """The watcher process of one run, seen from the process that writes the run."""

    def __init__(self, folder: Path, handoff: dict[str, Any]) -> None:
        self.folder = folder
        self.pid: int | None = None
        self._handoff = handoff
        self._proc: subprocess.Popen[bytes] | None = None
        self._pipe: int | None = None
        self._owner = os.getpid()
        self._lock = threading.Lock()
        self._finished = False
        self._started = threading.Event()

    @classmethod
    def start(cls, folder: Path, handoff: dict[str, Any]) -> Watcher:
        """Start the watcher from a background thread; returns at once."""
        watcher = cls(folder, handoff)
        threading.Thread(
            target=watcher._spawn, name="trackio-integrations-watcher", daemon=True
        ).start()
        return watcher

    def _spawn(self) -> None:
        with self._lock:
            if self._finished or os.getpid() != self._owner:
                self._started.set()  # finish() came first: there is nothing to watch
                return
        try:
            read, write = os.pipe()
            try:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "trackio_integrations.cli.watcher",
                        str(self.folder),
                        str(self._owner),
                    ],
                    stdin=read,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # a Ctrl-C meant for training does not reach it
                    close_fds=True,
                )
            finally:
                os.close(read)
            data = pickle.dumps(self._handoff)
            os.write(write, b"%d\n" % len(data) + data)
            with self._lock:
                self._proc, self.pid = proc, proc.pid
                ended = self._finished or os.getpid() != self._owner
                if not ended:
                    self._pipe = write
            if ended:  # finish() came meanwhile: the watcher ends at once, reaped here
                os.write(write, FINISHED)
                os.close(write)
                _reap(proc)
        except Exception:
            logger.debug("trackio-integrations: the run's watcher did not start", exc_info=True)
        finally:
            self._started.set()

    def finished(self) -> None:
        """The run finished cleanly: the watcher ends without a word.

        ``finish()`` does not wait for it (a short run would wait for a whole interpreter's
        start): a daemon thread reaps it, so a process that lives on keeps no zombie, and one
        that exits leaves it to exit by itself a moment later (its parent's end says so too).
        """
        with self._lock:
            if self._finished or os.getpid() != self._owner:
                return
            self._finished = True
            pipe, self._pipe = self._pipe, None
            proc = self._proc  # None: the spawning thread sees _finished and reaps it itself
        if pipe is not None:
            with contextlib.suppress(OSError):
                os.write(pipe, FINISHED)
            with contextlib.suppress(OSError):
                os.close(pipe)
        if proc is not None:
            threading.Thread(
                target=_reap, args=(proc,), name="trackio-integrations-watcher-reap", daemon=True
            ).start()

    def __del__(self) -> None:
        # A client dropped without finish() in a process that lives on: not a death, and
        # nobody left to tell the watcher otherwise; the closed pipe says it.
        if self._pipe is not None and os.getpid() == self._owner:
            with contextlib.suppress(OSError):
                os.close(self._pipe)

    def abandon_after_fork(self) -> None:
        """In a forked child: close the copy of the pipe (its end is not ours to announce)."""
        with contextlib.suppress(OSError):
            if self._pipe is not None:
                os.close(self._pipe)
        self._pipe = None
        self._proc = None
        self._finished = True


def _reap(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait for a watcher told to end (no zombie in a process that lives on)."""
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        proc.wait(timeout)
