"""``trackio-integrations sync [PATH ...]``: send what waits in spool folders, from any machine.

A PATH is a spool folder (``TRACKIO_SPOOL_DIR`` of the job that wrote it, wherever it is mounted
here) or one writer's folder inside it. Nothing in a spool depends on the machine, path or pid
that wrote it: media bytes and artifact snapshots are inside it by relative path, and a writer
still at work is known by its ``flock`` alone, so a run being written is never taken over.

Each spool goes to the target it was written for, with the tokens that belong to it here (see
``commands.spool_targets``). An offline run (``mode="offline"``) goes where this command line
names (``--server-url``, ``--space-id``), else where the environment here names
(``TRACKIO_SERVER_URL``, ``TRACKIO_SPACE_ID``), else where the run recorded (never a secret);
an offline run that recorded local storage and finds none named here goes to this machine's
``TRACKIO_DIR``. Each point, alert and request is acknowledged in its spool once the target
has it, so a second ``sync`` sends nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackio_integrations.cli.targets import named_target, refused_reason, spool_targets
from trackio_integrations.core.mode import OFFLINE
from trackio_integrations.core.records import ALERT, MEDIA, METRIC, SYSTEM, kind_of
from trackio_integrations.core.sender import Delivery, HttpDelivery, InboxDelivery, Sender
from trackio_integrations.core.spool import META, Spool
from trackio_integrations.core.target import Target
from trackio_integrations.core.transport import Outcome, Reply, Transport
from trackio_integrations.errors import TrackioAuthError, TrackioError


@dataclass
class RunRow:
    """What ``sync`` did for one run: the table's row."""

    project: str
    run: str
    counts: dict[str, int]
    artifacts: int = 0
    left: int = 0
    why: str = ""


class CountingDelivery:
    """A delivery that counts, per kind, the lines its target accepted (for the table)."""

    def __init__(self, inner: Delivery, counts: dict[str, int], bar: Any) -> None:
        self.inner, self.counts, self.bar = inner, counts, bar

    def send(self, lines: Sequence[bytes], read_blob: Any = None) -> Reply:
        reply = self.inner.send(lines, read_blob)
        if reply.outcome is Outcome.OK:
            for line in lines:
                self.counts[kind_of(line)] += 1
            self.bar.update(len(lines))
        return reply

    def close(self) -> None:
        self.inner.close()


def spool_roots(paths: Sequence[str], default: Path) -> tuple[list[Path], list[Path]]:
    """(writer folders of points, roots of artifact spools) under the given paths."""
    folders: list[Path] = []
    roots: list[Path] = []
    for given in [Path(p).expanduser() for p in paths] or [default]:
        if (given / META).is_file():  # one writer's folder
            if given.parent.name == "artifacts":
                roots.append(given.parent.parent)
            else:
                folders.append(given)
        else:
            folders.extend(Spool.folders(given))
            roots.append(given)
    return folders, list(dict.fromkeys(roots))


def targets_for(
    args: argparse.Namespace, named: Target, metas: Sequence[dict[str, Any]]
) -> list[Target]:
    """Where each spool goes from here (see the module's docstring), by its metadata; a loose
    write token is judged against all of them at once (``spool_targets``)."""
    chosen = spool_targets(args, named, metas)
    for i, meta in enumerate(metas):
        if meta.get("mode") == OFFLINE and (
            named.kind != "local" or (meta.get("target") or {}).get("kind") == "local"
        ):
            chosen[i] = named  # for local storage: this machine's TRACKIO_DIR, not the node's
    return chosen


def sync_command(args: argparse.Namespace, default_root: Path) -> int:
    named = named_target(args)

    def choose(meta: dict[str, Any]) -> Target:
        return targets_for(args, named, [meta])[0]

    folders, roots = spool_roots(args.paths, default_root)
    rows: dict[tuple[str, str, str], RunRow] = {}

    def row(meta: dict[str, Any]) -> RunRow:
        key = (str(meta.get("project")), str(meta.get("run")), str(meta.get("run_id")))
        if key not in rows:
            rows[key] = RunRow(key[0], key[1], defaultdict(int))
        return rows[key]

    spools, busy = [], 0
    for folder in folders:
        spool = Spool.adopt(folder)
        if spool is None:
            busy += 1  # a live writer holds it (its flock): never taken over
        elif (args.project and spool.meta.get("project") != args.project) or not spool.pending:
            spool.close()
        else:
            spools.append(spool)
    total = sum(s.pending for s in spools)
    files = sum(s.blobs.count for s in spools)
    bar = _bar(total)
    left: dict[str, int] = defaultdict(int)
    dead = 0
    groups: dict[Target, list[Spool]] = defaultdict(list)
    targets = targets_for(args, named, [s.meta for s in spools])
    for spool, target in zip(spools, targets, strict=True):  # one connection and check each
        groups[target].append(spool)
    try:
        for target, members in groups.items():
            transport = Transport(target) if target.url else None
            refused = _check(transport, named, args) if transport is not None else None
            for spool in members:
                entry = row(spool.meta)
                if refused:
                    left[f"{target}: {refused}"] += spool.pending
                else:
                    inner: Delivery = (
                        HttpDelivery(transport)
                        if transport is not None
                        else InboxDelivery(Path(target.trackio_dir or "."), spool.writer_id)
                    )
                    delivery = CountingDelivery(inner, entry.counts, bar)
                    dead += _drain(spool, delivery, args.retries, target, left, entry)
                    if transport is None:
                        delivery.close()
                if spool.pending:
                    entry.left += spool.pending
                    entry.why = entry.why or (refused or "not delivered")
                spool.close()
            if transport is not None:
                transport.close()
    finally:
        bar.close()
    sent = total - sum(left.values()) - dead
    if not spools:
        print("No points to send." + (f" ({busy} spool(s) in use by live runs.)" if busy else ""))
    else:
        files_left = sum(s.blobs.count for s in spools)
        with_files = f" and {files - files_left} of {files} file(s)" if files else ""
        print(f"Sent {sent} of {total} point(s){with_files} from {len(spools)} spool(s).")
    if dead:
        print(f"{dead} point(s) were refused by the server and set aside: see `status`.")
    for where, count in left.items():
        print(f"Left {count} point(s) for {where}")
    if busy:
        print(f"{busy} spool(s) in use by live runs were left to them.")
    uploads = _sync_uploads(roots, choose, args, row, named)
    print_table(list(rows.values()))
    return 1 if left or uploads else 0


def _sync_uploads(
    roots: list[Path],
    choose: Callable[[dict[str, Any]], Target],
    args: argparse.Namespace,
    row: Callable[[dict[str, Any]], RunRow],
    named: Target,
) -> int:
    """Resume the artifact, lineage and file requests under each root; 1 if some are left."""
    from trackio_integrations.artifacts.uploader import sync

    def report(meta: dict[str, Any], sent: int, left: int, why: str | None) -> None:
        entry = row(meta)
        entry.artifacts += sent
        entry.left += left
        if why:
            entry.why = entry.why or why

    def refused(target: Target) -> str:
        return refused_reason(target, named, args)

    failed = 0
    for root in roots:
        sent, left, set_aside, busy = sync(
            root, choose, args.project, args.retries, report, refused=refused
        )
        if sent or left or set_aside:
            print(
                f"Uploads: {sent} request(s) delivered (blobs the target had were not sent again)."
            )
        if set_aside:
            print(
                f"{set_aside} upload request(s) could not be recorded and were set aside: see `status`."
            )
        for where, count in left.items():
            print(
                f"Left {count} upload request(s) for {where}" + ("" if where.endswith(".") else ".")
            )
        if busy:
            print(f"{busy} upload spool(s) in use by live runs were left to them.")
        failed = failed or (1 if left else 0)
    return failed


def print_table(rows: list[RunRow]) -> None:
    """One line per run: what was sent of each kind, what is left and why."""
    if not rows:
        return
    width = max(len(f"{r.project}/{r.run}") for r in rows)
    print(
        f"{'run':<{width}}  {'points':>7} {'media':>6} {'system':>7} {'alerts':>6} "
        f"{'artifacts':>9} {'left':>6}  why"
    )
    for r in rows:
        c = r.counts
        print(
            f"{r.project + '/' + r.run:<{width}}  {c[METRIC]:>7} {c[MEDIA]:>6} {c[SYSTEM]:>7} "
            f"{c[ALERT]:>6} {r.artifacts:>9} {r.left:>6}  {r.why if r.left else '-'}"
        )


def _check(transport: Transport, named: Target, args: argparse.Namespace) -> str | None:
    """Why this target cannot take points now (a refused token, another API), or None."""
    try:
        transport.check()
    except TrackioAuthError:
        return refused_reason(transport.target, named, args)
    except TrackioError as exc:
        return str(exc)
    except Exception:
        return None  # not reachable now: the sender retries and says so
    return None


def _drain(
    spool: Spool,
    delivery: Delivery,
    retries: int,
    target: Target,
    left: dict[str, int],
    entry: RunRow,
) -> int:
    """Send one spool's points, ``retries`` attempts; count what is left; return dead letters."""
    root = spool.path.parent if spool.path is not None else Path(".")
    sender = Sender(spool, delivery, root=root)
    for attempt in range(max(retries, 1)):
        if sender.drain(spool, delivery) or sender.blocked:
            break
        time.sleep(min(2.0**attempt, 10.0))
    if spool.pending:
        reason = sender.blocked or sender.last_error or "not delivered"
        entry.why = reason
        left[f"{target} ({reason})."] += spool.pending
    return sender.dead_lettered


def _bar(total: int) -> Any:
    """tqdm's bar on stderr, in points (off where stderr is not a terminal, e.g. a batch log)."""
    from tqdm import tqdm  # only `sync` draws one: `import trackio_integrations` stays cheap

    return tqdm(total=total, unit="point", desc="sync", file=sys.stderr, disable=None, leave=True)
