"""``trackio-integrations``: ``doctor`` (will logging work?), ``status`` and ``sync`` (the spool),
``reproduce`` (rebuild a run from its provenance: ``reproduce.py``).

Every command resolves the target from its flags, then the environment, as ``TrackioClient``
does. A spool goes to the target it was written for; the write token that the flags or the
environment name goes only to that same server (see ``target.saved_target``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from trackio_integrations.cli.reproduce import add_parser as add_reproduce
from trackio_integrations.cli.reproduce import reproduce_command
from trackio_integrations.cli.targets import credential, named_target, spool_targets, token_origin
from trackio_integrations.cli.uploads import status_uploads
from trackio_integrations.core.access import explain
from trackio_integrations.core.dead_letter import iter_dead_letters
from trackio_integrations.core.records import describe, tally
from trackio_integrations.core.spool import Spool, default_root
from trackio_integrations.core.target import Target, same_server
from trackio_integrations.core.transport import Transport
from trackio_integrations.core.watcher import watcher_state
from trackio_integrations.errors import TrackioError
from trackio_integrations.redaction import redact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="trackio-integrations",
        description="Check the Trackio target and manage points waiting in the local spool.",
    )
    parser.add_argument("--spool-dir", help="spool folder (default: TRACKIO_SPOOL_DIR or cache)")
    commands = parser.add_subparsers(dest="command", required=True)

    doctor = commands.add_parser("doctor", help="resolve the target as the client does and test it")
    _target_flags(doctor)

    sync = commands.add_parser(
        "sync", help="send what waits in spool folders (offline runs, dead or stopped jobs)"
    )
    sync.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="spool folders, or one run's folder in one (default: --spool-dir, TRACKIO_SPOOL_DIR)",
    )
    _target_flags(sync)
    sync.add_argument("--project", help="only this project")
    sync.add_argument("--retries", type=int, default=3, help="attempts per spool (default 3)")
    sync.add_argument(
        "--discard",
        metavar="TARGET",
        help="instead of sending, delete what waits for TARGET (a URL as `status` shows it, "
        "or local:FOLDER), after asking",
    )
    sync.add_argument("--yes", action="store_true", help="with --discard: delete without asking")

    status = commands.add_parser(
        "status", help="points waiting in the spool, per target, project and run"
    )
    _target_flags(status)
    add_reproduce(commands, _target_flags)

    args = parser.parse_args(argv)
    root = Path(args.spool_dir) if args.spool_dir else default_root()
    try:
        if args.command == "doctor":
            return doctor_command(args, root)
        if args.command == "sync" and args.discard:
            from trackio_integrations.cli.discard import discard_command

            return discard_command(args, root)
        if args.command == "sync":
            from trackio_integrations.cli.sync import sync_command

            return sync_command(args, root)
        if args.command == "reproduce":
            return reproduce_command(args)
        return status_command(args, root)
    except TrackioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _target_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server-url", help="self-hosted server (else TRACKIO_SERVER_URL)")
    parser.add_argument("--space-id", help="Hugging Face Space owner/name (else TRACKIO_SPACE_ID)")
    parser.add_argument("--write-token", help="server write token (else TRACKIO_WRITE_TOKEN)")
    parser.add_argument("--hf-token", help="Hugging Face token for a Space (else HF_TOKEN)")


# --- doctor --------------------------------------------------------------------------------------


def doctor_command(args: argparse.Namespace, root: Path) -> int:
    target = named_target(args)
    print(f"Target:       {target}")
    ok = True
    if target.kind == "local":
        folder = Path(target.trackio_dir or ".")
        writable = _writable(folder)
        ok = writable
        print(f"Storage:      {folder} ({'writable' if writable else 'NOT writable'})")
        print(f"To look:      TRACKIO_DIR={folder} trackio show")
        if not writable:
            print("Fix:          set TRACKIO_DIR to a folder you can write, or set a server URL.")
    else:
        print(f"Write token:  {_token_source(target)}")
        if target.kind == "space" or target.hf_token:
            print(
                f"HF token:     {'set' if target.hf_token else 'missing'} (sent to this host only)"
            )
        transport = Transport(target, timeout=10.0)
        try:
            info = transport.check()
            print(
                f"Server:       trackio {info.get('version')}, API version {info.get('api_version')}"
            )
            print("Write access: OK")
        except TrackioError as exc:
            ok = False
            print(f"Problem:      {exc}")
        except Exception as exc:
            ok = False
            print(f"Problem:      {redact(explain(exc, target))}")
            print("Fix:          start the server, check the URL and port, or your network.")
        finally:
            transport.close()
    spool_ok = _writable(root)
    rows = _spool_rows(root)
    pending = sum(row["points"] for row in rows)
    mine = sum(row["points"] for row in rows if _is_target(row["saved"], target))
    print(
        f"Spool:        {root} ({'writable' if spool_ok else 'NOT writable'}), {pending} pending"
        + (f", {mine} for this target" if pending else "")
    )
    if not spool_ok:
        print(
            "Fix:          set TRACKIO_SPOOL_DIR to a writable folder (node-local disk): "
            "without one, points wait in memory and are lost if the process dies."
        )
    ok = ok and spool_ok
    print("Logging would work." if ok else "Logging would NOT work; see above.")
    return 0 if ok else 1


def _token_source(target: Target) -> str:
    if target.kind == "space":
        return "not used (a Space checks the Hugging Face token)"
    if target.write_token:
        url = target.token_from in ("server_url", "TRACKIO_SERVER_URL")
        return f"set (from {'the URL' if url else token_origin(target)})"
    return "none (writes will be refused unless the server needs none)"


def _is_target(saved: dict[str, Any], target: Target) -> bool:
    """Whether a spool's saved target is ``target``."""
    if saved.get("kind") != target.kind:
        return False
    if target.kind == "server":
        return bool(target.url) and same_server(str(saved.get("url") or ""), target.url or "")
    if target.kind == "space":
        return str(saved.get("space_id") or "").lower() == (target.space_id or "").lower()
    return saved.get("trackio_dir") == target.trackio_dir


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


# --- status --------------------------------------------------------------------------------------


def _spool_rows(root: Path) -> list[dict[str, Any]]:
    rows = []
    for folder in Spool.folders(root):
        found = Spool.inspect(folder)
        if found is None:
            continue
        spool, live = found
        saved = spool.meta.get("target") or {}
        rows.append(
            {
                "meta": spool.meta,
                "saved": saved,
                "where": saved.get("url") or f"local:{saved.get('trackio_dir')}",
                "project": spool.meta.get("project"),
                "run": spool.meta.get("run"),
                "points": spool.pending,
                "tally": tally(spool.pending_lines()) if spool.pending else Counter(),
                "files": spool.blobs.count,
                "mb": spool.blobs.size / (1 << 20),
                "state": _state(spool.meta, live, folder),
                "folder": folder,
            }
        )
        spool.close()
    return rows


def _state(meta: dict[str, Any], live: bool, folder: Path | None = None) -> str:
    """A spool's state for ``status``: written now (and by whom it is watched), being delivered
    by the watcher of a dead writer, or waiting (an offline run's, or left)."""
    offline = meta.get("mode") == "offline"
    watcher = watcher_state(folder) if folder is not None else None
    if watcher and watcher.get("state") != "watching":
        by = f"watcher pid {watcher['pid']}: " if watcher.get("pid") else ""
        return f"{by}{watcher.get('state')}"
    if live and watcher:
        return f"live (pid {meta.get('pid')} on {meta.get('host') or '?'}, watcher pid {watcher.get('pid')})"
    if live:
        where = f"pid {meta.get('pid')} on {meta.get('host') or '?'}"
        return f"offline run being written ({where})" if offline else f"live ({where})"
    return "offline run, waiting" if offline else "waiting"


def status_command(args: argparse.Namespace, root: Path) -> int:
    found = _spool_rows(root)
    rows = [row for row in found if row["points"]]
    print(f"Spool: {root}")
    if not rows:
        print("No points waiting.")
    else:
        named = named_target(args)
        targets = spool_targets(args, named, [row["meta"] for row in rows])
        width = max(len(r["where"]) for r in rows)
        print(
            f"{'target':<{width}}  {'project':<16} {'run':<24} {'points':>8} {'files':>6}  "
            "state, sync here"
        )
        for row, target in zip(rows, targets, strict=True):
            print(
                f"{row['where']:<{width}}  {row['project']!s:<16} {row['run']!s:<24} "
                f"{row['points']:>8} {row['files']:>6}  {row['state']}, {credential(target)}"
            )
        files = sum(r["files"] for r in rows)
        media = f", with {files} file(s) ({sum(r['mb'] for r in rows):.1f} MB)" if files else ""
        offline = sum(1 for r in rows if r["meta"].get("mode") == "offline")
        runs = f" ({offline} offline run(s))" if offline else ""
        print(
            f"{sum(r['points'] for r in rows)} point(s) waiting{media}{runs}: "
            f"`trackio-integrations sync {root}`."
        )
        for where in dict.fromkeys(r["where"] for r in rows):  # each target once, in order
            counts: Counter[str] = sum((r["tally"] for r in rows if r["where"] == where), Counter())
            print(
                f"For {where}: {describe(counts)}; `trackio-integrations sync --discard {where}` "
                "deletes them."
            )
    # A live run whose points have all been sent still has its watcher (or writer) to show.
    idle = [r for r in found if not r["points"] and not r["state"].endswith("waiting")]
    if idle:
        print("Runs with nothing waiting:")
    for row in idle:
        print(f"  {row['where']}  {row['project']!s} {row['run']!s}: {row['state']}")
    dead = list(iter_dead_letters(root))
    for path, count in dead:
        print(f"Dead-lettered: {count} point(s) refused by the server, in {path}")
    status_uploads(root)
    return 0
