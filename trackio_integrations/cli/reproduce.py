"""``trackio-integrations reproduce PROJECT RUN [--into DIR]``: rebuild a run from its provenance.

Reads the run's config (``provenance/...``, recorded by ``trackio_integrations.provenance``) and
its provenance files (``diff.patch``, ``requirements.txt``, ``untracked.txt``) from a server or
a Space (the HTTP API: ``get_run_configs``, ``get_project_files``, ``GET /file``) or from the
embedded local storage (``TRACKIO_DIR``, read with trackio's own code). Prints the commands
that rebuild the run; with ``--into DIR`` it clones, checks out the commit and applies the diff
(``--install`` also installs the packages). The command line is printed, not run: its secrets
were recorded as ``***``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from trackio_integrations.core.target import Target, resolve_target
from trackio_integrations.errors import TrackioConfigError, TrackioError
from trackio_integrations.provenance.diff import restore_old_side

FILE_KEYS = ("diff", "untracked", "requirements")


class RunSource(Protocol):
    """Where a run's config and project files are read from."""

    def runs(self, project: str) -> list[dict[str, Any]]: ...
    def configs(self, project: str) -> dict[str, Any]: ...
    def files(self, project: str) -> list[dict[str, Any]]: ...
    def read(self, entry: dict[str, Any]) -> bytes: ...


class ServerSource:
    """A server or a Space, through its HTTP API."""

    def __init__(self, target: Target) -> None:
        from trackio_integrations.core.transport import Transport

        self.transport = Transport(target, timeout=30.0)

    def runs(self, project: str) -> list[dict[str, Any]]:
        return list(self.transport.read("get_runs_for_project", project=project) or [])

    def configs(self, project: str) -> dict[str, Any]:
        return dict(self.transport.read("get_run_configs", project=project) or {})

    def files(self, project: str) -> list[dict[str, Any]]:
        return list(self.transport.read("get_project_files", project=project) or [])

    def read(self, entry: dict[str, Any]) -> bytes:
        return self.transport.download(str(entry["path"]))


class LocalSource:
    """The embedded default: ``TRACKIO_DIR`` on this machine, read with trackio's own code (the
    points of a run that logged to the inbox are there once ``trackio show`` has imported them)."""

    def __init__(self, trackio_dir: str) -> None:
        if importlib.util.find_spec("trackio") is None:
            raise TrackioConfigError(
                "Reading local storage needs trackio (pip install trackio), or pass --server-url."
            )
        os.environ["TRACKIO_DIR"] = trackio_dir  # trackio reads it when imported
        from trackio import utils
        from trackio.sqlite_storage import SQLiteStorage

        self.storage, self.utils = SQLiteStorage, utils

    def runs(self, project: str) -> list[dict[str, Any]]:
        return list(self.storage.get_run_records(project))

    def configs(self, project: str) -> dict[str, Any]:
        return dict(self.storage.get_all_run_configs(project))

    def files(self, project: str) -> list[dict[str, Any]]:
        folder = Path(self.utils.project_media_dir(project)) / "files"
        if not folder.is_dir():
            return []
        return [
            {"name": path.relative_to(folder).as_posix(), "path": str(path)}
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        ]

    def read(self, entry: dict[str, Any]) -> bytes:
        return Path(entry["path"]).read_bytes()


def add_parser(commands: Any, target_flags: Any) -> None:
    parser = commands.add_parser(
        "reproduce", help="print (or run, with --into) the commands that rebuild a run"
    )
    target_flags(parser)
    parser.add_argument("project")
    parser.add_argument("run", help="the run's name or id")
    parser.add_argument("--into", help="clone, check out and apply the diff in this new folder")
    parser.add_argument("--repo", help="clone from here instead of the recorded remote")
    parser.add_argument(
        "--install", action="store_true", help="with --into: pip install the recorded packages"
    )


def reproduce_command(args: argparse.Namespace) -> int:
    target = resolve_target(
        server_url=args.server_url,
        space_id=args.space_id,
        write_token=args.write_token,
        hf_token=args.hf_token,
    )
    source: RunSource
    if target.url:
        source = ServerSource(target)
    else:
        assert target.trackio_dir is not None
        source = LocalSource(target.trackio_dir)
    run_id, config = find_run(source, args.project, args.run)
    if "provenance/command" not in config:
        raise TrackioError(
            f"Run {args.run!r} has no provenance: it was recorded with provenance off "
            "(TRACKIO_PROVENANCE=0) or by an older trackio-integrations."
        )
    files = provenance_files(source, args.project, config)
    if args.into:
        rebuild(config, files, Path(args.into), args.repo, args.install)
    print(f"# project {args.project}, run {args.run} (id {run_id})")
    for line in plan(config, files, args.into, args.repo):
        print(line)
    return 0


def find_run(source: RunSource, project: str, run: str) -> tuple[str, dict[str, Any]]:
    """The run's id and config, the run named by its id or its name (the newest of that name)."""
    configs = source.configs(project)
    if run in configs:
        return run, dict(configs[run] or {})
    ids = [str(r.get("id")) for r in source.runs(project) if r.get("name") == run]
    for run_id in reversed(ids):
        if run_id in configs:
            return run_id, dict(configs[run_id] or {})
    raise TrackioError(f"No run {run!r} with a config in project {project!r}.")


def provenance_files(source: RunSource, project: str, config: dict[str, Any]) -> dict[str, bytes]:
    """The run's provenance files by kind (``diff``, ``requirements``, ``untracked``)."""
    wanted = {k: config.get(f"provenance/files/{k}") for k in FILE_KEYS}
    listed = source.files(project)
    found: dict[str, bytes] = {}
    for key, name in wanted.items():
        if not isinstance(name, str):
            continue
        # A server keeps each copy in a folder named after the file (``name/trackio-upload-..``).
        matches = [f for f in listed if f["name"] == name or f["name"].startswith(name + "/")]
        if matches:
            found[key] = source.read(matches[-1])
    missing = [k for k, name in wanted.items() if isinstance(name, str) and k not in found]
    if missing:
        print(
            f"warning: not on the target (yet): {', '.join(missing)}; the run may still be "
            "uploading them",
            file=sys.stderr,
        )
    return found


def plan(
    config: dict[str, Any], files: dict[str, bytes], into: str | None, repo: str | None
) -> Iterator[str]:
    """The commands, as a shell script with comments."""
    folder = into or "run-src"
    yield f"# rebuild {config.get('provenance/command')}"
    if config.get("provenance/git/checkout"):
        remote = repo or config.get("provenance/git/remote")
        commit = config.get("provenance/git/commit")
        if remote:
            yield f"git clone {shlex.quote(str(remote))} {shlex.quote(folder)}"
        else:
            yield f"# the checkout had no remote: clone it from where it lives into {folder}"
        yield f"cd {shlex.quote(folder)}"
        yield f"git checkout --detach {commit}"
        if "diff" in files:
            yield "git apply --binary .git/trackio/diff.patch  # the uncommitted changes"
            if config.get("provenance/git/diff_masked_lines"):
                yield (
                    f"# {config['provenance/git/diff_masked_lines']} line(s) of the diff hold "
                    "*** where a credential was: put yours back"
                )
        elif config.get("provenance/git/dirty"):
            yield "# the tree was dirty but its diff was not saved (over the size limit)"
        if "untracked" in files:
            names = files["untracked"].decode(errors="replace").split()
            yield f"# {len(names)} untracked file(s) were not recorded: {', '.join(names[:10])}"
        subdir = config.get("provenance/git/subdir") or "."
        if subdir != ".":
            yield f"cd {shlex.quote(str(subdir))}"
    else:
        yield "# the run was not started in a git checkout: its code is not recorded"
        yield "# (save_code=True saves the script and its config files to the project's Files)"
    if "requirements" in files:
        place = ".git/trackio/requirements.txt" if config.get("provenance/git/checkout") else ""
        yield f"python -m pip install -r {place or 'requirements.txt'}"
    versions = {k.split("/", 2)[2]: v for k, v in config.items() if k.startswith("provenance/ver")}
    if versions:
        yield "# versions: " + ", ".join(f"{k}=={v}" for k, v in sorted(versions.items()))
    yield f"python {shlex.join(shlex.split(str(config['provenance/command']))[1:])}"


def rebuild(
    config: dict[str, Any],
    files: dict[str, bytes],
    into: Path,
    repo: str | None,
    install: bool,
) -> None:
    """Do what ``plan`` prints, in the new folder ``into`` (the command line is not run)."""
    if into.exists() and any(into.iterdir()):
        raise TrackioConfigError(f"{into} is not empty: --into needs a new or empty folder.")
    extras = into / ".git" / "trackio"
    if config.get("provenance/git/checkout"):
        remote = repo or config.get("provenance/git/remote")
        if not remote:
            raise TrackioConfigError("The run's checkout had no remote: pass --repo URL_OR_PATH.")
        _git("clone", "--quiet", "--no-checkout", str(remote), str(into))
        _git(
            "-C", str(into), "checkout", "--quiet", "--detach", str(config["provenance/git/commit"])
        )
        extras.mkdir(parents=True, exist_ok=True)
        if "diff" in files:
            patch = extras / "diff.patch"
            # A masked line on the old side of a hunk is the commit's: put it back from there.
            patch.write_bytes(restore_old_side(files["diff"], lambda name: _show(into, name)))
            _git("-C", str(into), "apply", "--binary", "--whitespace=nowarn", str(patch.resolve()))
    else:
        into.mkdir(parents=True, exist_ok=True)
        extras = into
    if "requirements" in files:
        extras.mkdir(parents=True, exist_ok=True)
        requirements = extras / "requirements.txt"
        requirements.write_bytes(files["requirements"])
        if install:
            subprocess.run(
                [sys.executable, "-m", "pip", "install", "-r", str(requirements)], check=True
            )


def _show(checkout: Path, name: str) -> bytes | None:
    """A file's content at the checked-out commit (None: not there)."""
    done = subprocess.run(
        ["git", "-C", str(checkout), "show", f"HEAD:{name}"], capture_output=True, check=False
    )
    return done.stdout if done.returncode == 0 else None


def _git(*args: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise TrackioError(f"git {args[0]} failed: {done.stderr.strip()[-500:]}")
        return
    raise TrackioConfigError("git is not installed.")
