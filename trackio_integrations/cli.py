"""``trackio-integrations``: ``doctor`` (will logging work?), ``status`` and ``sync`` (the spool)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from .dead_letter import iter_dead_letters
from .errors import TrackioError
from .sender import Delivery, HttpDelivery, InboxDelivery, Sender
from .spool import Spool, default_root
from .target import Target, resolve_target, split_write_token, validate_url
from .transport import Transport


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

    commands.add_parser("status", help="points waiting in the spool, per target, project and run")

    args = parser.parse_args(argv)
    root = Path(args.spool_dir) if args.spool_dir else default_root()
    try:
        if args.command == "doctor":
            return doctor_command(args, root)
        if args.command == "sync":
            return sync_command(args, root)
        return status_command(root)
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
    target = resolve_target(
        server_url=args.server_url,
        space_id=args.space_id,
        write_token=args.write_token,
        hf_token=args.hf_token,
    )
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
        print(f"Write token:  {_token_source(args, target)}")
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
            print(f"Server:       not reachable ({type(exc).__name__}: {exc})")
            print("Fix:          start the server, check the URL and port, or your network.")
        finally:
            transport.close()
    spool_ok = _writable(root)
    pending = sum(s["points"] for s in _spool_rows(root))
    print(f"Spool:        {root} ({'writable' if spool_ok else 'NOT writable'}), {pending} pending")
    if not spool_ok:
        print("Fix:          set TRACKIO_SPOOL_DIR to a writable folder (node-local disk).")
    print("Logging would work." if ok else "Logging would NOT work; see above.")
    return 0 if ok and spool_ok else 1


def _token_source(args: argparse.Namespace, target: Target) -> str:
    if target.kind == "space":
        return "not used (a Space checks the Hugging Face token)"
    if args.write_token:
        return "set (from --write-token)"
    url = args.server_url or os.environ.get("TRACKIO_SERVER_URL") or ""
    if split_write_token(url)[1]:
        return "set (from the URL)"
    if os.environ.get("TRACKIO_WRITE_TOKEN"):
        return "set (from TRACKIO_WRITE_TOKEN)"
    return "none (writes will be refused unless the server needs none)"


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
        target = spool.meta.get("target") or {}
        rows.append(
            {
                "target": target.get("url") or f"local:{target.get('trackio_dir')}",
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


def status_command(root: Path) -> int:
    rows = [row for row in _spool_rows(root) if row["points"]]
    print(f"Spool: {root}")
    if not rows:
        print("No points waiting.")
    else:
        width = max(len(r["target"]) for r in rows)
        print(f"{'target':<{width}}  {'project':<16} {'run':<24} {'points':>8} {'files':>6}  state")
        for row in rows:
            print(
                f"{row['target']:<{width}}  {row['project']!s:<16} {row['run']!s:<24} "
                f"{row['points']:>8} {row['files']:>6}  {row['state']}"
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
    _status_uploads(root)
    return 0


def _status_uploads(root: Path) -> None:
    """Artifact, lineage and file requests waiting in the uploaders' spools."""
    from .uploader import ARTIFACTS, queued

    rows = [row for row in queued(root) if row["requests"]]
    for row in rows:
        print(
            f"Uploads: {row['requests']} request(s), {row['bytes'] / 1e6:.1f} MB, for "
            f"{row['target']} (project {row['project']}, run {row['run']}), {row['state']}"
        )
    if rows:
        print("Send them with `trackio-integrations sync`.")
    for path, count in iter_dead_letters(root / ARTIFACTS):
        print(f"Set aside: {count} upload request(s) not recorded, reasons in {path}")


# --- sync ----------------------------------------------------------------------------------------


def sync_command(args: argparse.Namespace, root: Path) -> int:
    override: Target | None = None
    if args.server_url or args.space_id:
        override = resolve_target(
            server_url=args.server_url,
            space_id=args.space_id,
            write_token=args.write_token,
            hf_token=args.hf_token,
        )
    uploads = _sync_uploads(args, root, override)
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
    progress = _Progress(total)
    left: dict[str, int] = defaultdict(int)
    dead = 0
    for spool in spools:
        target = override or _target_from_meta(spool.meta, args)
        delivery = _delivery_for(target, spool)
        sender = Sender(spool, delivery, root=root)
        sender.on_progress = progress.advance
        for attempt in range(max(args.retries, 1)):
            if sender.drain(spool, delivery) or sender.blocked:
                break
            time.sleep(min(2.0**attempt, 10.0))
        dead += sender.dead_lettered
        if spool.pending:
            reason = sender.blocked or sender.last_error or "not delivered"
            left[f"{target} ({reason})"] += spool.pending
        spool.close()
        delivery.close()
    progress.done()
    sent = total - sum(left.values()) - dead
    files_left = sum(s.blobs.count for s in spools)
    with_files = f" and {files - files_left} of {files} file(s)" if files else ""
    print(f"Sent {sent} of {total} point(s){with_files} from {len(spools)} spool(s).")
    if dead:
        print(f"{dead} point(s) were refused by the server and set aside: see `status`.")
    for where, count in left.items():
        print(f"Left {count} point(s) for {where}.")
    if busy:
        print(f"{busy} spool(s) in use by live runs were left to them.")
    return 1 if left or uploads else 0


def _sync_uploads(args: argparse.Namespace, root: Path, override: Target | None) -> int:
    """Resume the artifact, lineage and file requests; 1 if some are left."""
    from .uploader import sync

    sent, left, set_aside, busy = sync(
        root, lambda meta: override or _target_from_meta(meta, args), args.project, args.retries
    )
    if sent or left or set_aside:
        print(f"Uploads: {sent} request(s) delivered (blobs the target had were not sent again).")
    if set_aside:
        print(
            f"{set_aside} upload request(s) could not be recorded and were set aside: see `status`."
        )
    for where, count in left.items():
        print(f"Left {count} upload request(s) for {where}.")
    if busy:
        print(f"{busy} upload spool(s) in use by live runs were left to them.")
    return 1 if left else 0


def _target_from_meta(meta: dict[str, Any], args: argparse.Namespace) -> Target:
    saved = meta.get("target") or {}
    kind = saved.get("kind")
    if kind == "local":
        return Target("local", None, None, saved.get("trackio_dir"))
    if kind == "space":
        return resolve_target(
            space_id=saved.get("space_id"),
            hf_token=args.hf_token,
            env={k: v for k, v in os.environ.items() if k == "HF_TOKEN"},
        )
    url = validate_url(saved.get("url") or "")
    token = args.write_token or os.environ.get("TRACKIO_WRITE_TOKEN")
    return resolve_target(server_url=url, write_token=token, hf_token=args.hf_token, env={})


def _delivery_for(target: Target, spool: Spool) -> Delivery:
    if target.kind == "local":
        return InboxDelivery(Path(target.trackio_dir or "."), spool.writer_id)
    return HttpDelivery(Transport(target))


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


if __name__ == "__main__":
    sys.exit(main())
