"""Once per run, in a background thread: read the provenance and hand it to the run.

The training thread only copies ``sys.argv`` and the working directory and starts a thread
(about a hundred microseconds: ``bench/provenance.py``); git, the package list and
``nvidia-smi`` run in that thread. The facts go into the run's config under ``provenance/``;
the diff, the untracked names and the package list are saved to the project's Files as
``provenance/<run>/diff.patch``, ``untracked.txt`` and ``requirements.txt``: written to a folder
of the run's own and uploaded by the run's patient uploader, like every project file; or, for a
run on local storage, written straight into the project's Files folder, where ``trackio show``
lists them (nothing to upload: a short run's ``finish()`` does not wait for an uploader).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from trackio_integrations.core.spool import private_folder

logger = logging.getLogger("trackio_integrations")

ENV_SWITCH = "TRACKIO_PROVENANCE"
DIFF_SWITCH = "TRACKIO_PROVENANCE_DIFF"  # 0: the diff stays on this machine
DIFF_FILE = "diff.patch"
UNTRACKED_FILE = "untracked.txt"
PACKAGES_FILE = "requirements.txt"


class ProvenanceRun(Protocol):
    """The part of the client API provenance calls (``TrackioClient`` is one)."""

    name: str
    run_id: str

    def update_config(self, mapping: Mapping[str, Any] | Any) -> None: ...

    def _project_files_folder(self) -> Path | None:
        """The project's Files folder on this machine where files are saved by writing them
        there (a run on local storage); None where they are uploaded."""
        ...

    def save(
        self, glob: str | os.PathLike[str], base_path: str | os.PathLike[str] | None = None
    ) -> int: ...


def enabled(setting: bool | None) -> bool:
    """An explicit ``provenance=`` wins; else ``TRACKIO_PROVENANCE`` (``0``/``false``/``off``
    switch it off); else on."""
    if setting is not None:
        return bool(setting)
    value = os.environ.get(ENV_SWITCH, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def diff_enabled() -> bool:
    """``TRACKIO_PROVENANCE_DIFF`` (``0``/``false``/``off``: the diff is not saved); else on."""
    value = os.environ.get(DIFF_SWITCH, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def files_folder(run_name: str) -> str:
    """Where a run's provenance files are named in the project's Files."""
    return "provenance/" + (re.sub(r"[^\w.-]+", "_", run_name).strip("._") or "run")


class Recorder:
    """Reads a run's provenance once, in a daemon thread; ``wait()`` before the run closes.

    >>> Recorder(run, Path("/tmp/spool/provenance/<run id>")).start()  # doctest: +SKIP
    """

    def __init__(self, run: ProvenanceRun, folder: Path, secrets: Iterable[str] = ()) -> None:
        self.run = run
        self.folder = folder
        self._secrets = {s for s in secrets if s}  # and the environment's, in the thread
        # What the process was started with, read now: the thread may run after a chdir.
        self._argv = list(getattr(sys, "orig_argv", [])[1:] or sys.argv)
        self._cwd = Path.cwd()
        self._in_place = False  # the files were written into the project's Files folder
        self._thread = threading.Thread(target=self._record, name="trackio-provenance", daemon=True)

    def start(self) -> Recorder:
        self._thread.start()
        return self

    def wait(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the recording; True once it is done."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _record(self) -> None:
        # Give the GIL back at once: start() returns as soon as the training thread runs again
        # (no longer: a short run's finish() waits for this thread).
        time.sleep(0)
        try:
            config, files = self.collect()
            self.run.update_config(config)
            if files and not self._in_place:
                self.run.save(str(self.folder / files_folder(self.run.name) / "*"), self.folder)
        except Exception:  # provenance must never disturb the run
            logger.exception("trackio-integrations: recording the run's provenance failed")

    def collect(self) -> tuple[dict[str, Any], list[str]]:
        """The config entries and the names of the files written (relative to ``folder``)."""
        # Imported here, in the thread: subprocess and the rest cost milliseconds to import.
        from trackio_integrations.provenance.git import (
            DIFF_LIMIT,
            UNTRACKED_LIMIT,
            Checkout,
            read_checkout,
        )

        # git runs in processes of its own: start them first, and do the rest meanwhile (a short
        # run's finish() waits for the slower of the two, not for both).
        checkouts: list[Checkout] = []
        reader = threading.Thread(
            target=lambda: checkouts.append(read_checkout(self._cwd)),
            name="trackio-provenance-git",
            daemon=True,
        )
        reader.start()
        from trackio_integrations.provenance.facts import (
            command_line,
            installed_packages,
            machine,
            versions,
        )
        from trackio_integrations.provenance.redact import environment_secrets, hide_values, is_path
        from trackio_integrations.redaction import known_secrets

        # Every secret the one redaction knows (tokens, a gateway's headers and password, the
        # webhook, in all their forms), the run's own, and the environment's secret-named values.
        self._secrets |= known_secrets() | environment_secrets(os.environ)
        # A path is no secret (TRACKIO_CLIENT_KEY names a file): masking it would break paths.
        self._secrets = {secret for secret in self._secrets if not is_path(secret)}
        in_place = self.run._project_files_folder()  # local storage: written straight there
        if in_place is not None:
            self.folder, self._in_place = in_place, True
        packages = installed_packages()
        config: dict[str, Any] = {"provenance/command": command_line(self._argv, self._secrets)}
        config.update(versions(dict(sys.modules)))
        config.update(machine(os.environ))
        reader.join()
        checkout = checkouts[0] if checkouts else Checkout()  # git failed: recorded as no checkout
        config.update(checkout.config())
        written: list[str | None] = []
        keep_diff = diff_enabled()
        if checkout.diff and not keep_diff:
            config["provenance/git/diff_saved"] = False
        elif checkout.diff and checkout.diff_size <= DIFF_LIMIT:
            from trackio_integrations.provenance.diff import mask_diff  # only for a diff

            diff, masked = mask_diff(checkout.diff, self._secrets)
            config["provenance/git/diff_masked_lines"] = masked
            if masked:
                logger.warning(
                    "trackio-integrations: %d line(s) of the uncommitted diff looked like "
                    "credentials and were saved with the run as ***; set %s=0 to keep the "
                    "diff off the server",
                    masked,
                    DIFF_SWITCH,
                )
            written.append(self._write(DIFF_FILE, diff, mask=False))
        elif checkout.diff:
            logger.warning(
                "trackio-integrations: the uncommitted diff (%d bytes) is over %d bytes; "
                "it is not saved with the run",
                checkout.diff_size,
                DIFF_LIMIT,
            )
        if checkout.untracked:
            names = checkout.untracked[:UNTRACKED_LIMIT]
            text = "".join(name + "\n" for name in names)
            written.append(self._write(UNTRACKED_FILE, text.encode()))
        written.append(self._write(PACKAGES_FILE, packages))
        saved = [name for name in written if name is not None]
        for name in saved:
            config[f"provenance/files/{Path(name).stem}"] = name
        # The remote, the branch, the host name: no value of the config holds a known secret.
        for key, value in config.items():
            if isinstance(value, str) and key != "provenance/command":
                config[key] = hide_values(value, self._secrets)
        return config, saved

    def _write(self, name: str, data: bytes, mask: bool = True) -> str | None:
        """One file under ``folder``, the known secrets' values replaced by ``***`` (the diff
        comes masked, line by line, by ``mask_diff``); None where the folder cannot be written
        (the spool's own warning has said so: the config is kept)."""
        relative = f"{files_folder(self.run.name)}/{name}"
        path = self.folder / relative
        try:  # the run's own folder is private; the project's Files are as trackio makes them
            if self._in_place:
                path.parent.mkdir(parents=True, exist_ok=True)
            else:
                private_folder(path.parent)
        except OSError:
            return None
        if mask and self._secrets:
            from trackio_integrations.provenance.redact import hide_values

            text = data.decode("utf-8", errors="surrogateescape")
            hidden = hide_values(text, self._secrets)
            if hidden != text:
                data = hidden.encode("utf-8", errors="surrogateescape")
        partial = path.with_name(f".{name}.partial")  # a reader never sees half a file
        try:
            partial.write_bytes(data)
            os.replace(partial, path)
        except OSError:
            return None
        return relative

    def discard(self) -> None:
        """Remove the files written, once the run's uploads are done (never those written into
        the project's Files folder: that is where they are kept)."""
        if not self._thread.is_alive() and not self._in_place:
            shutil.rmtree(self.folder, ignore_errors=True)
