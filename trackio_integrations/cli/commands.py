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
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trackio_integrations.cli.reproduce import add_parser as add_reproduce
from trackio_integrations.cli.reproduce import reproduce_command
from trackio_integrations.cli.uploads import status_uploads, sync_uploads
from trackio_integrations.core.access import explain
from trackio_integrations.core.dead_letter import iter_dead_letters
from trackio_integrations.core.sender import Delivery, HttpDelivery, InboxDelivery, Sender
from trackio_integrations.core.spool import Spool, default_root
from trackio_integrations.core.target import Target, resolve_target, same_server, saved_target
from trackio_integrations.core.transport import Transport
from trackio_integrations.errors import TrackioAuthError, TrackioError
from trackio_integrations.redaction import redact

# Where a token came from, in the words of this command line.
_FLAG_NAMES = {"write_token": "--write-token", "server_url": "--server-url"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="trackio-integrations",
        description="Check the Trackio target and manage points waiting in the local spool.",
    )
    parser.add_argument("--spool-dir", help="spool folder (default: TRACKIO_SPOOL_DIR or cache)")
    commands = parser.add_subparsers(dest="command", required=True)

    doctor = commands.add_parser("doctor", help="resolve the target as the client does and test it")
    _target_flags(doctor)

    sync = commands.add_parser("sync", help="send the points left in the spool")
    _target_flags(sync)
    sync.add_argument("--project", help="only this project")
    sync.add_argument("--retries", type=int, default=3, help="attempts per spool (default 3)")

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
        if args.command == "sync":
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


# --- which target, which token -------------------------------------------------------------------


def named_target(args: argparse.Namespace) -> Target:
    """The target the flags, then the environment, name: exactly what ``TrackioClient`` uses."""
    return resolve_target(
        server_url=args.server_url,
        space_id=args.space_id,
        write_token=args.write_token,
        hf_token=args.hf_token,
    )


def spool_targets(
    args: argparse.Namespace, named: Target, metas: Sequence[dict[str, Any]]
) -> list[Target]:
    """The target of each spool (by its metadata), with the tokens that belong to it here.

    The named target's write token goes only to spools of that same server. A write token that
    names no server (``--write-token`` or ``TRACKIO_WRITE_TOKEN`` with no server or Space set) is
    used when the spools wait for one server only: with several, it could reach the wrong one.
    """
    saved = [meta.get("target") or {} for meta in metas]
    loose = None
    token = args.write_token or os.environ.get("TRACKIO_WRITE_TOKEN")
    if named.kind == "local" and token and len(_distinct_servers(saved)) == 1:
        loose = (token, "--write-token" if args.write_token else "TRACKIO_WRITE_TOKEN")
    return [
        saved_target(target, named, hf_token=args.hf_token, loose_write_token=loose)
        for target in saved
    ]


def _distinct_servers(saved: Sequence[dict[str, Any]]) -> list[str]:
    servers: list[str] = []
    for target in saved:
        url = target.get("url") if target.get("kind") == "server" else None
        if url and not any(same_server(url, known) for known in servers):
            servers.append(url)
    return servers


def _credential(target: Target) -> str:
    """What ``sync`` here would send this target with (never the token itself)."""
    if target.kind == "local":
        return "no token needed"
    if target.kind == "space":
        return "HF token" if target.hf_token else "no HF token"
    if target.write_token:
        return f"write token from {_token_origin(target)}"
    return "no write token"


def _token_origin(target: Target) -> str:
    """The flag or variable the write token came from, e.g. ``--write-token``."""
    source = target.token_from or "?"
    return _FLAG_NAMES.get(source, source)


def _refused(target: Target, named: Target, args: argparse.Namespace) -> str:
    """Why a target refused our token, and the command that fixes it."""
    if target.kind == "space":
        missing = "no Hugging Face token is set" if not target.hf_token else ""
        return (
            f"{missing or 'the Space refused the Hugging Face token'}; set HF_TOKEN, or pass "
            f"--hf-token, to a token with write access to {target.space_id}."
        )
    fix = (
        f"send them with `trackio-integrations sync --server-url {target.url} --write-token "
        f"<its token>` (or with TRACKIO_SERVER_URL={target.url}?write_token=<its token>)"
    )
    if target.write_token:
        return f"it rejected the write token from {_token_origin(target)}; {fix}."
    if named.kind in ("server", "space"):
        where = (
            ("--space-id" if args.space_id else "TRACKIO_SPACE_ID")
            if named.kind == "space"
            else ("--server-url" if args.server_url else "TRACKIO_SERVER_URL")
        )
        why = f"no write token for it here ({where} names {named}; its token goes only there)"
    elif args.write_token or os.environ.get("TRACKIO_WRITE_TOKEN"):
        why = (
            "no write token for it here (a token given without a server URL is used only "
            "when the spools wait for one server)"
        )
    else:
        why = "no write token for it here"
    return f"{why}; {fix}."


# --- doctor --------------------------------------------------------------------------------------


def doctor_command(args: argparse.Namespace, root: Path) -> int:
    target = named_target(args)
    print(f"Target:       {target.kind}: {target}")
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
        print("Fix:          set TRACKIO_SPOOL_DIR to a writable folder (node-local disk).")
    print("Logging would work." if ok else "Logging would NOT work; see above.")
    return 0 if ok and spool_ok else 1


def _token_source(target: Target) -> str:
    if target.kind == "space":
        return "not used (a Space checks the Hugging Face token)"
    if target.write_token:
        url = target.token_from in ("server_url", "TRACKIO_SERVER_URL")
        return f"set (from {'the URL' if url else _token_origin(target)})"
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
                "files": spool.blobs.count,
                "mb": spool.blobs.size / (1 << 20),
                "state": f"live (pid {spool.meta.get('pid')})" if live else "waiting",
                "folder": folder,
            }
        )
        spool.close()
    return rows


def status_command(args: argparse.Namespace, root: Path) -> int:
    rows = [row for row in _spool_rows(root) if row["points"]]
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
                f"{row['points']:>8} {row['files']:>6}  {row['state']}, {_credential(target)}"
            )
        files = sum(r["files"] for r in rows)
        media = f", with {files} file(s) ({sum(r['mb'] for r in rows):.1f} MB)" if files else ""
        print(
            f"{sum(r['points'] for r in rows)} point(s) waiting{media}: "
            "`trackio-integrations sync`."
        )
    dead = list(iter_dead_letters(root))
    for path, count in dead:
        print(f"Dead-lettered: {count} point(s) refused by the server, in {path}")
    status_uploads(root)
    return 0


# --- sync ----------------------------------------------------------------------------------------


def sync_command(args: argparse.Namespace, root: Path) -> int:
    named = named_target(args)
    uploads = sync_uploads(root, lambda meta: spool_targets(args, named, [meta])[0], args)
    spools = []
    busy = 0
    for folder in Spool.folders(root):
        spool = Spool.adopt(folder)
        if spool is None:
            busy += 1
            continue
        if (args.project and spool.meta.get("project") != args.project) or not spool.pending:
            spool.close()
            continue
        spools.append(spool)
    total = sum(s.pending for s in spools)
    files = sum(s.blobs.count for s in spools)
    if not spools:
        print("No points to send." + (f" ({busy} spool(s) in use by live runs.)" if busy else ""))
        return uploads
    # One connection and one write-access check per target, however many spools wait for it.
    groups: dict[Target, list[Spool]] = defaultdict(list)
    targets = spool_targets(args, named, [s.meta for s in spools])
    for spool, target in zip(spools, targets, strict=True):
        groups[target].append(spool)
    progress = _Progress(total)
    left: dict[str, int] = defaultdict(int)
    dead = 0
    for target, members in groups.items():
        transport = Transport(target) if target.url else None
        refused = _check(transport, named, args) if transport is not None else None
        for spool in members:
            if refused:
                left[f"{target}: {refused}"] += spool.pending
            else:
                delivery: Delivery = (
                    HttpDelivery(transport)
                    if transport is not None
                    else InboxDelivery(Path(target.trackio_dir or "."), spool.writer_id)
                )
                dead += _drain(spool, delivery, root, progress, args.retries, target, left)
                if transport is None:
                    delivery.close()
            spool.close()
        if transport is not None:
            transport.close()
    progress.done()
    sent = total - sum(left.values()) - dead
    files_left = sum(s.blobs.count for s in spools)
    with_files = f" and {files - files_left} of {files} file(s)" if files else ""
    print(f"Sent {sent} of {total} point(s){with_files} from {len(spools)} spool(s).")
    if dead:
        print(f"{dead} point(s) were refused by the server and set aside: see `status`.")
    for where, count in left.items():
        print(f"Left {count} point(s) for {where}")
    if busy:
        print(f"{busy} spool(s) in use by live runs were left to them.")
    return 1 if left or uploads else 0


def _check(transport: Transport, named: Target, args: argparse.Namespace) -> str | None:
    """Why this target cannot take points now (a refused token, another API), or None."""
    try:
        transport.check()
    except TrackioAuthError:
        return _refused(transport.target, named, args)
    except TrackioError as exc:
        return str(exc)
    except Exception:
        return None  # not reachable now: the sender retries and says so
    return None


def _drain(
    spool: Spool,
    delivery: Delivery,
    root: Path,
    progress: _Progress,
    retries: int,
    target: Target,
    left: dict[str, int],
) -> int:
    """Send one spool's points, ``retries`` attempts; count what is left; return dead letters."""
    sender = Sender(spool, delivery, root=root)
    sender.on_progress = progress.advance
    for attempt in range(max(retries, 1)):
        if sender.drain(spool, delivery) or sender.blocked:
            break
        time.sleep(min(2.0**attempt, 10.0))
    if spool.pending:
        reason = sender.blocked or sender.last_error or "not delivered"
        left[f"{target} ({reason})."] += spool.pending
    return sender.dead_lettered


class _Progress:
    """A one-line progress bar on stderr (no dependency; plain lines when not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total, self.done_count = total, 0
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def advance(self, n: int) -> None:
        self.done_count += n
        now = time.monotonic()
        if now - self._last > 0.2 or self.done_count >= self.total:
            self._last = now
            filled = int(30 * self.done_count / max(self.total, 1))
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {self.done_count}/{self.total} points"
            print(("\r" + bar) if self.tty else bar, end="" if self.tty else "\n", file=sys.stderr)

    def done(self) -> None:
        if self.tty:
            print(file=sys.stderr)
