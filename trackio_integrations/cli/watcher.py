"""The watcher: delivers what a killed training process left, and says how its run ended.

``python -m trackio_integrations.cli.watcher <spool folder> <pid>``, started by the training
process itself (``core/watcher.py``), the target and webhook handed over on stdin. It waits, at no
cost to training, for one of two things:

- ``F`` on stdin: the run finished cleanly (``finish()``, ``sys.exit``, an exception the script
  caught or not: the exit hook finishes every run). It exits at once.
- the training process died first (SIGKILL, ``os._exit``, a segfault, the OOM killer): it takes
  the spool folder over by its lock as ``sync`` does, appends one ``error`` alert ("Run ended
  without finish()": the step, and the OOM killer when the cgroup's ``oom_kill`` counter (v2 or v1) rose
  since it started, else "killed or crashed") and the run's status to the config, and delivers
  all of it with ``sync``'s code (the ``Sender``'s ``drain``), its artifact requests too; the
  alert also goes to the webhook, as every alert does. A server that is down is retried for
  ``TRACKIO_WATCHER_WAIT`` seconds; then the spool is left to ``sync`` and ``status`` says so.

Imports stay few until there is something to deliver: waiting costs a few megabytes.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import socket
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from trackio_integrations.core.watcher import CONFIG, FINISHED, STATE, hold

POLL = 0.2  # seconds between looks at the parent: the alert comes this long after a death
CLOSED_ALIVE = 5.0  # a pipe closed this long while its process lives: not a death


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder, parent = Path(argv[0]), int(argv[1])
    handoff = _read_handoff()
    if handoff is None:
        return 0  # finished before it was handed anything (or a broken pipe): nothing to watch
    _state(folder, pid=os.getpid(), watches=parent, state="watching")
    hold(folder)  # for its life: a client that starts meanwhile leaves this spool to it
    oom_before = oom_kills()
    if _wait_for_end(parent):
        with contextlib.suppress(OSError):
            (folder / STATE).unlink()
        return 0
    reason = "was killed by the OOM killer" if oom_kills() > oom_before else "was killed or crashed"
    deliver(folder, handoff, reason)
    return 0


def _read_handoff() -> dict[str, Any] | None:
    header = b""
    while not header.endswith(b"\n"):
        chunk = os.read(0, 1)
        if not chunk or chunk == FINISHED:
            return None
        header += chunk
    size = int(header)
    data = b""
    while len(data) < size:
        chunk = os.read(0, size - len(data))
        if not chunk:
            return None
        data += chunk
    handoff: dict[str, Any] = pickle.loads(data)
    return handoff


def _wait_for_end(parent: int) -> bool:
    """True when the run ended without dying (finished, or its client dropped and the pipe
    closed by a live process), False when its process died first."""
    closed_at = None
    while True:
        if closed_at is None:
            readable, _, _ = select.select([0], [], [], POLL)
            if readable:
                data = os.read(0, 64)
                if FINISHED in data:
                    return True
                if not data:  # the process closes its files as it dies, then is gone
                    closed_at = time.monotonic()
        else:
            time.sleep(POLL)
        if os.getppid() != parent:
            return False
        if closed_at is not None and time.monotonic() - closed_at > CLOSED_ALIVE:
            return True  # closed by a process that lives on: the client was dropped unfinished


def oom_kills() -> int:
    """The OOM kills counted in this process's memory cgroup (and below it); 0 where unknown.

    cgroup v2: ``oom_kill`` in ``memory.events``; v1: ``oom_kill`` in ``memory.oom_control``.
    The watcher is in its training process's cgroup (a child starts in its parent's).
    """
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        number, controllers, path = [*line.split(":", 2), "", ""][:3]
        if number == "0" and not controllers:
            found = _counter(Path("/sys/fs/cgroup", path.lstrip("/"), "memory.events"))
        elif "memory" in controllers.split(","):
            found = _counter(Path("/sys/fs/cgroup/memory", path.lstrip("/"), "memory.oom_control"))
        else:
            continue
        if found is not None:
            return found
    return 0


def _counter(path: Path) -> int | None:
    try:
        for entry in path.read_text().splitlines():
            name, _, value = entry.partition(" ")
            if name == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def last_point(folder: Path) -> dict[str, Any] | None:
    """The last plain point in the spool (delivered or not), read from its newest segment."""
    segments = sorted((p for p in folder.glob("*.jsonl") if p.stem.isdigit()), reverse=True)
    for segment in segments:
        try:
            lines = segment.read_bytes().splitlines()
        except OSError:
            continue
        for line in reversed(lines):
            with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                record = orjson.loads(line)
                if (
                    record.get("kind", "metric") == "metric"
                    and record.get("metrics")
                    and type(record.get("step")) is int
                    and record.get("log_id")
                ):
                    return dict(record)
    return None


def deliver(folder: Path, handoff: dict[str, Any], reason: str) -> None:
    """Take the dead writer's spool, add how the run ended, send it all as ``sync`` does."""
    from trackio_integrations.core.records import RunFields
    from trackio_integrations.core.sender import Sender, close_quietly
    from trackio_integrations.core.spool import Spool
    from trackio_integrations.core.writer import delivery_for

    target = handoff["target"]
    target.__post_init__()  # its secrets known to the redaction here too
    wait = float(handoff.get("wait", 600.0))
    deadline = time.monotonic() + wait
    spool = None
    while spool is None and folder.is_dir() and time.monotonic() < deadline:
        spool = Spool.adopt(folder)  # a forked child may hold the lock a moment longer
        if spool is None:
            time.sleep(POLL)
    if spool is None:
        if folder.is_dir():
            return  # somebody else (a live writer) holds it: theirs to deliver
        spool = Spool.in_memory(handoff["meta"])  # `sync` or a new run sent it: the alert only
    meta = spool.meta
    fields = RunFields(str(meta.get("project")), str(meta.get("run")), str(meta.get("run_id")))
    point = last_point(folder) if spool.path is not None else None
    step = point["step"] if point is not None else None
    status = "killed (out of memory)" if "OOM" in reason else "crashed"
    where = f" at step {step}" if step is not None else ""
    text = (
        f"The training process (pid {meta.get('pid')} on {meta.get('host') or socket.gethostname()})"
        f" {reason}{where}, before its run finished; what it had logged is delivered."
    )
    title = "Run ended without finish()"
    writer = spool.writer_id
    now = time.time()
    spool.append(fields.alert(title, text, "error", step, f"{writer}-ended", now))
    config = _config(folder)
    if config is not None:  # as the client writes a config alone: beside a copy of its last
        config["status"] = status  # point, which the server stores once (no row of its own)
        if point is not None:
            body, log_id = orjson.dumps(point["metrics"]), str(point["log_id"]).encode()
            stamp = point.get("timestamp") or now
            spool.append(fields.metric(body, step, log_id, stamp, config, repeat=True))
        else:
            log_id = b"%s-config" % fields.run_id.encode()
            spool.append(fields.metric(b"{}", 0, log_id, now, config))
    _post_webhook(handoff, title, text, fields, step)
    _state(folder, pid=os.getpid(), state=f"delivering (the writer {reason})")
    delivery = delivery_for(target, writer, None)
    sender = Sender(spool, delivery, root=folder.parent)
    attempt = 0
    while not (sender.drain(spool, delivery) and not spool.pending):
        if sender.blocked or time.monotonic() >= deadline:
            break
        time.sleep(min(2.0**attempt, 5.0, max(deadline - time.monotonic(), 0.0)))
        attempt += 1
    close_quietly(delivery)
    if spool.pending:
        why = sender.blocked or sender.last_error or "not delivered"
        _state(
            folder,
            pid=None,
            state=f"left for `trackio-integrations sync`: the watcher gave up after {wait:.0f} s "
            f"({why})",
        )
    spool.close()  # deletes the folder when everything in it was delivered
    _send_uploads(folder.parent, target, str(meta.get("project")), deadline)


def _config(folder: Path) -> dict[str, Any] | None:
    try:
        config = orjson.loads((folder / CONFIG).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return config if isinstance(config, dict) else None


def _post_webhook(
    handoff: dict[str, Any], title: str, text: str, fields: Any, step: int | None
) -> None:
    webhook = handoff.get("webhook")
    if not webhook:
        return
    from trackio_integrations.monitoring.webhook import WebhookPoster

    poster = WebhookPoster(webhook[0], min_level=webhook[1])
    poster.alert("error", title, text, fields.project, fields.run, step)
    poster.close(10.0)


def _send_uploads(root: Path, target: Any, project: str, deadline: float) -> None:
    """The artifact requests the dead process had queued (as ``sync`` sends them)."""
    if not (root / "artifacts").is_dir() or time.monotonic() >= deadline:
        return
    from trackio_integrations.artifacts.uploader import sync

    with contextlib.suppress(Exception):
        sync(root, lambda meta: target, project, 3)


def _state(folder: Path, **fields: Any) -> None:
    """What ``status`` shows for this spool: who watches it, or why it was left."""
    from trackio_integrations.core.spool import write_private

    with contextlib.suppress(OSError):
        write_private(folder / STATE, orjson.dumps({**fields, "since": time.time()}))


if __name__ == "__main__":
    sys.exit(main())
