"""A client's spool in this process: opening it, adopting dead writers' spools, the last report.

``client.py`` keeps the order of things (points appended under its lock, the
sender started and stopped); here is what it asks of the disk and says about it: a spool folder
(or memory, with a warning, where none can be written), the spools of dead writers that its
sender can deliver too, and at ``finish()`` what was dropped or not yet delivered, and where.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from trackio_integrations.core.mode import sync_command
from trackio_integrations.core.records import describe, tally
from trackio_integrations.core.sender import Delivery, HttpDelivery, InboxDelivery, Sender
from trackio_integrations.core.spool import Spool
from trackio_integrations.core.target import Target
from trackio_integrations.core.transport import Transport
from trackio_integrations.core.watcher import watched
from trackio_integrations.errors import warn_user

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger("trackio_integrations")
TOLD = "told"  # in a spool folder: the user has been told that its points wait


def open_spool(
    root: Path,
    writer_id: str,
    target: Target,
    project: str,
    run: str,
    run_id: str,
    mode: str = "online",
) -> Spool:
    """A new spool folder for one writer under ``root``; in memory if none can be written.

    The host and pid are for people reading ``status``; whether a writer still holds its folder
    is its ``flock``, which another host or pid namespace sees as well (see ``spool``).
    """
    meta = {
        "mode": mode,
        "writer": writer_id,
        "target": target.public(),
        "project": project,
        "run": run,
        "run_id": run_id,
        "pid": os.getpid(),
        "host": os.uname().nodename,  # gethostname(), without importing socket
        "created": time.time(),
    }
    try:
        return Spool.create(root, writer_id, meta)
    except OSError as exc:
        warn_user(
            f"Cannot write the trackio-integrations spool in {root} ({exc}). "
            "Points are kept in memory only and are lost if this process dies: set "
            "TRACKIO_SPOOL_DIR (or spool_dir=) to a writable folder."
        )
        return Spool.in_memory(meta)


def adopt_orphans(
    root: Path, own: Path | None, target: Target, delivery: Delivery | None
) -> list[tuple[Spool, Delivery]]:
    """Spools left by dead writers that a client can deliver: its own target, or local."""
    found: list[tuple[Spool, Delivery]] = []
    untold: dict[str, list[Spool]] = {}
    for folder in Spool.folders(root):
        if folder == own or watched(folder):  # a dead writer's watcher is delivering it
            continue
        spool = Spool.adopt(folder)
        if spool is None:
            continue
        if spool.meta.get("mode") == "offline":  # kept for `sync`, wherever it will run
            spool.close()
            continue
        theirs = spool.meta.get("target") or {}
        if theirs.get("kind") == "local" and theirs.get("trackio_dir"):
            found.append((spool, InboxDelivery(Path(theirs["trackio_dir"]), spool.writer_id)))
        elif target.url and theirs.get("url") == target.url:
            assert delivery is not None
            found.append((spool, delivery))
        else:
            if spool.pending and not (folder / TOLD).exists():
                untold.setdefault(str(theirs.get("url")), []).append(spool)
            else:
                spool.close()
    for where, spools in untold.items():  # once per target, and never again for these points
        logger.warning(
            "trackio-integrations: %s for %s wait in %s from an earlier run. %s",
            describe(tally(line for spool in spools for line in spool.pending_lines())),
            where,
            root,
            how_to_handle(where),
        )
        for spool in spools:
            mark_told(spool)
            spool.close()
    return found


def how_to_handle(where: str) -> str:
    """The commands that send, list or delete what waits for ``where``."""
    return (
        f"`trackio-integrations sync` sends them once {where} answers, `trackio-integrations "
        f"status` lists them, `trackio-integrations sync --discard {where}` deletes them."
    )


def mark_told(spool: Spool) -> None:
    """Remember in the spool's folder that the user was told what waits there: later processes
    stay quiet about it (``status`` still lists it)."""
    if spool.path is not None:
        with contextlib.suppress(OSError):
            os.close(os.open(spool.path / TOLD, os.O_WRONLY | os.O_CREAT, 0o600))  # private


def report_undelivered(spool: Spool, sender: Sender, target: Target, delivered: bool) -> int:
    """Log what a finishing client dropped or leaves undelivered, and where; the dropped count."""
    in_memory = spool.pending_in_memory
    dropped = spool.dropped
    if dropped:
        logger.error(
            "trackio-integrations: %d point(s) for %s were dropped, the oldest first: the "
            "spool could not be written and the points waiting in memory reached their limit. "
            "Set TRACKIO_SPOOL_DIR to a writable folder with room (or raise "
            "TRACKIO_SPOOL_MAX_MB).",
            dropped,
            target,
        )
    if not delivered:
        reason = sender.blocked or sender.last_error or "the target is slow"
        # What waits is read once, from the lines themselves: the sender may still confirm some
        # (a request in flight when ``finish`` stopped waiting), and a count taken before would
        # tell of "0 points" that no longer wait.
        waiting = tally(spool.pending_lines()) if spool.path is not None else Counter()
        on_disk = max(sum(waiting.values()) - in_memory, 0)
        if in_memory:
            logger.error(
                "trackio-integrations: %d point(s) for %s were not delivered (%s) and, with "
                "no writable spool, are lost.",
                in_memory,
                target,
                reason,
            )
        if on_disk:
            where = target.url or str(target)
            logger.warning(
                "trackio-integrations: %s not yet delivered to %s (%s), kept in %s. %s",
                describe(waiting),
                target,
                reason,
                spool.path,
                how_to_handle(where).replace(
                    "`trackio-integrations sync` sends them",
                    "`trackio-integrations sync` (or the next run to it) sends them",
                ),
            )
            mark_told(spool)
    return dropped


def close_offline(spool: Spool | None, root: Path, project: str, run: str) -> bool:
    """End an offline run: close its spool (synced to disk) and print the one command that sends
    it; False only if points could not be written to disk and are lost."""
    dropped = 0
    if spool is not None:
        dropped = spool.dropped + spool.pending_in_memory
        spool.close()
    if dropped:
        logger.error(
            "trackio-integrations: %d point(s) of offline run %r could not be written to the "
            "spool %s and are lost.",
            dropped,
            run,
            root,
        )
    print(
        f"trackio-integrations: offline run {project}/{run} is kept in {root}. "
        f"To send it: {sync_command(root)}",
        file=sys.stderr,
    )
    return not dropped


def delivery_for(
    target: Target,
    writer_id: str,
    transport: Transport | None,
    http_transport: httpx.BaseTransport | None = None,
) -> Delivery:
    """How a writer's points reach ``target``: its server (over ``transport``, else a new
    connection), or the local inbox."""
    if target.url:
        return HttpDelivery(transport or Transport(target, transport=http_transport))
    assert target.trackio_dir is not None
    return InboxDelivery(Path(target.trackio_dir), writer_id)
