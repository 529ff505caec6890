"""The git checkout a run was started from: commit, branch, remote, dirty, diff, untracked files.

git runs as a subprocess with ``GIT_OPTIONAL_LOCKS=0``: reading never takes the index lock, so a
run never gets in the way of a ``git commit`` in the same checkout. No git, or no checkout,
is recorded as such, never raised.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from trackio_integrations.provenance.redact import clean_url

GIT_TIMEOUT = 30.0
DIFF_LIMIT = 10 * 1024 * 1024  # a diff past this is not saved (a checkpoint committed by mistake)
UNTRACKED_LIMIT = 1000  # names listed at most


@dataclass
class Checkout:
    """What git says about the working tree at ``root`` (None: not a checkout)."""

    root: Path | None = None
    commit: str | None = None
    branch: str | None = None
    remote: str | None = None
    dirty: bool = False
    subdir: str = "."
    diff: bytes = b""
    diff_size: int = 0
    untracked: list[str] = field(default_factory=list)

    def config(self) -> dict[str, object]:
        """The run-config entries (under ``provenance/git/``)."""
        if self.root is None:
            return {"provenance/git/checkout": False}
        return {
            "provenance/git/checkout": True,
            "provenance/git/commit": self.commit,
            "provenance/git/branch": self.branch,
            "provenance/git/remote": self.remote,
            "provenance/git/dirty": self.dirty,
            "provenance/git/subdir": self.subdir,
            "provenance/git/diff_bytes": self.diff_size,
            "provenance/git/diff_saved": bool(self.diff) and self.diff_size <= DIFF_LIMIT,
            "provenance/git/untracked": len(self.untracked),
        }


def git(cwd: Path, *args: str) -> bytes | None:
    """git's standard output, or None when it fails (no git, not a checkout, no commit yet)."""
    return gits(cwd, args)[0]


def gits(cwd: Path, *commands: tuple[str, ...]) -> list[bytes | None]:
    """Several git commands at once (each a process; together they take the slowest one's
    time, not the sum), their outputs in order, None for one that failed."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
    started: list[subprocess.Popen[bytes] | None] = []
    for args in commands:
        try:
            started.append(
                subprocess.Popen(
                    ["git", "-c", "core.quotepath=off", *args],
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
            )
        except OSError:
            started.append(None)
    outputs: list[bytes | None] = []
    for process in started:
        if process is None:
            outputs.append(None)
            continue
        try:
            out, _ = process.communicate(timeout=GIT_TIMEOUT)
        except subprocess.SubprocessError:
            process.kill()
            process.communicate()
            outputs.append(None)
            continue
        outputs.append(out if process.returncode == 0 else None)
    return outputs


def read_checkout(cwd: Path) -> Checkout:
    """The checkout holding ``cwd``: facts, the binary diff against HEAD, untracked names."""
    # Each git process costs a few ms to start and a short run's finish() waits for them: all
    # four at once, from ``cwd`` (their answers name paths from the top of the checkout).
    heads, remote_raw, diff, others_raw = gits(
        cwd,
        ("rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD"),
        ("config", "--get-regexp", r"^remote\..*\.url$"),
        ("diff", "--binary", "--no-color", "--no-ext-diff", "HEAD", "--"),
        ("ls-files", "--others", "--exclude-standard", "-z", "--full-name", "--", ":/"),
    )
    # rev-parse fails as a whole before the first commit: then the top folder alone
    top = heads.splitlines()[0] if heads else git(cwd, "rev-parse", "--show-toplevel")
    if top is None:
        return Checkout()
    root = Path(top.decode().strip())
    out = Checkout(root=root)
    commit, branch = (_text(line) for line in heads.splitlines()[1:3]) if heads else (None, None)
    out.commit = commit
    out.branch = None if branch in (None, "HEAD") else branch
    remote = _remote(remote_raw)
    out.remote = clean_url(remote) if remote else None
    try:
        out.subdir = Path(os.path.relpath(cwd.resolve(), root.resolve())).as_posix()
    except ValueError:
        out.subdir = "."
    if out.commit is not None:
        out.diff = diff or b""
        out.diff_size = len(out.diff)
        out.dirty = bool(out.diff.strip())  # a tracked file differs from HEAD (what status says)
    others = others_raw or b""
    out.untracked = [p.decode(errors="replace") for p in others.split(b"\0") if p]
    return out


def _remote(raw: bytes | None) -> str | None:
    """``origin``'s URL, else the first remote's as ``git remote`` sorts them, from the lines
    ``remote.<name>.url <url>`` (all in one git process, not one more for a checkout without
    ``origin``)."""
    urls: dict[str, str] = {}
    for line in (_text(raw) or "").splitlines():
        key, _, url = line.partition(" ")
        if key.startswith("remote.") and key.endswith(".url") and url.strip():
            urls.setdefault(key[len("remote.") : -len(".url")], url.strip())
    if not urls:
        return None
    return urls.get("origin") or urls[min(urls)]


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    text = raw.decode(errors="replace").strip()
    return text or None
