"""``sync --discard TARGET``: delete what waits for a target that will never answer (a mistyped
URL, a server taken down), after saying what it is and asking.

TARGET is written as ``status`` shows it: a server's URL (any spelling of the same server), a
Space's URL, or ``local:<folder>`` (``local`` for every local-storage spool). Spools that a live
run holds are never touched. ``--yes`` deletes without asking (for scripts); without it, an
answer other than ``y`` deletes nothing.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from trackio_integrations.core.records import describe, tally
from trackio_integrations.core.spool import Spool
from trackio_integrations.core.target import same_server

PROVENANCE = "provenance"  # the provenance files waiting for their upload (provenance/recorder.py)


def where(saved: dict[str, Any]) -> str:
    """A spool's target as ``status`` shows it and ``--discard`` takes it."""
    return str(saved.get("url") or f"local:{saved.get('trackio_dir')}")


def matches(saved: dict[str, Any], wanted: str) -> bool:
    shown = where(saved)
    if wanted == "local":
        return saved.get("kind") == "local"
    if saved.get("url") and "://" in wanted:
        return same_server(shown, wanted)
    return shown == wanted


def discard_command(args: argparse.Namespace, root: Path) -> int:
    from trackio_integrations.artifacts.uploader import ARTIFACTS

    wanted = args.discard.strip()
    points = _take(root, wanted)
    uploads = _take(root / ARTIFACTS, wanted)
    try:
        held = points.busy + uploads.busy
        if not points.spools and not uploads.spools:
            print(
                f"Nothing waits for {wanted} in {root}"
                + (f" but in {held} spool(s) live runs hold." if held else ".")
            )
            others = sorted(points.others | uploads.others)
            if others:  # a TARGET spelled otherwise than `status` shows it
                print(f"What waits there is for: {', '.join(others)} (as `status` shows them).")
            return 0
        what = describe(tally(line for spool in points.spools for line in spool.pending_lines()))
        requests = sum(spool.pending for spool in uploads.spools)
        runs = sorted(
            {f"{s.meta.get('project')}/{s.meta.get('run')}" for s in points.spools + uploads.spools}
        )
        print(
            f"Waiting for {wanted}, from {len(runs)} run(s) ({', '.join(runs)}): "
            f"{what if points.spools else 'no points'}; {requests} upload request(s)."
        )
        if held:
            print(f"{held} spool(s) that live runs hold are left alone.")
        if not args.yes and not _confirmed("Delete them? [y/N] "):
            print("Nothing deleted (`--yes` deletes without asking).")
            return 1
        run_ids = {str(s.meta.get("run_id")) for s in uploads.spools if s.meta.get("run_id")}
        for spool in points.spools + uploads.spools:
            if spool.path is not None:
                shutil.rmtree(spool.path, ignore_errors=True)  # we hold its lock
        for run_id in run_ids:  # the provenance files that were waiting for those uploads
            shutil.rmtree(root / PROVENANCE / run_id, ignore_errors=True)
        print(f"Deleted what waited for {wanted}.")
        return 0
    finally:
        for spool in points.spools + uploads.spools:
            spool.close()


class _Taken:
    def __init__(self) -> None:
        self.spools: list[Spool] = []
        self.busy = 0
        self.others: set[str] = set()  # the targets that something else waits for


def _take(root: Path, wanted: str) -> _Taken:
    """The spools under ``root`` waiting for ``wanted``, each locked (live runs' are counted)."""
    taken = _Taken()
    for folder in Spool.folders(root):
        found = Spool.inspect(folder)
        if found is None:
            continue
        spool, live = found
        saved = spool.meta.get("target") or {}
        spool.close()  # not its holder: this deletes nothing
        if not matches(saved, wanted):
            if spool.pending:
                taken.others.add(where(saved))
            continue
        adopted = None if live else Spool.adopt(folder)  # its lock: no run takes it meanwhile
        if adopted is None:
            taken.busy += 1
        elif adopted.pending:
            taken.spools.append(adopted)
        else:
            adopted.close()
    return taken


def _confirmed(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:  # no one to answer (a script, a pipe): nothing is deleted
        print()
        return False
