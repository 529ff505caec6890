"""The requests of an artifact spool, one at a time: hash, check, send the missing blobs, record.

``Queue.drain`` is what the uploader's thread runs for its own spool and for orphans, and what
``trackio-integrations sync`` runs: a request is acknowledged only once the target recorded it,
or once it is set aside (``<spool root>/artifacts/dead-letter/<writer>.jsonl``, with the reason):
a file changed after it was logged, a request the target refuses for its content, or one it
fails ``ANSWERED_FAILURES`` times while answering. Network errors, a target that is down or a
server that lost an upload's temporary file mean "try again later".
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from trackio_integrations.artifacts.files import FileChanged, located, sha256_of, unchanged
from trackio_integrations.artifacts.local import LocalStore
from trackio_integrations.artifacts.model import ARTIFACT, FILE, USE, Artifact
from trackio_integrations.artifacts.server import ServerStore, Stopped, StoreError, Throttle
from trackio_integrations.core.dead_letter import dead_letter
from trackio_integrations.core.spool import Spool
from trackio_integrations.core.target import Target
from trackio_integrations.core.transport import Outcome, Reply

if TYPE_CHECKING:
    import httpx  # loaded only for a server or a Space (in transport.py)

logger = logging.getLogger("trackio_integrations")

ANSWERED_FAILURES = 3  # a request the server fails this often (while answering) is set aside
# Server answers that mean "send it again", not "this request is bad".
_TRANSIENT = (
    "not created by this Trackio server",
    "blobs not on server",
    "Uploaded file is missing",
)


class Store(Protocol):
    bytes_sent: int
    progress: Callable[[int], None] | None

    def present(self, project: str, digests: list[str]) -> set[str]: ...
    def put_blob(self, project: str, digest: str, entry: dict[str, Any]) -> None: ...
    def commit(self, rec: dict[str, Any], manifest: list[dict[str, Any]]) -> dict[str, Any]: ...
    def resolve(self, project: str, name: str, spec: str | None) -> dict[str, Any] | None: ...
    def log_use(self, project: str, version_id: int, run: str, run_id: str) -> None: ...
    def save_file(self, project: str, entry: dict[str, Any]) -> None: ...
    def fetch(self, project: str, entry: dict[str, Any], target: Path) -> None: ...
    def close(self) -> None: ...


def upload_mbps(env: dict[str, str] | None = None) -> float | None:
    """``TRACKIO_UPLOAD_MBPS``: megabytes (10^6 bytes) a second for uploads; unset: no limit."""
    value = (os.environ if env is None else env).get("TRACKIO_UPLOAD_MBPS", "")
    try:
        return float(value) if value.strip() and float(value) > 0 else None
    except ValueError:
        logger.warning("trackio-integrations: TRACKIO_UPLOAD_MBPS=%r is not a number", value)
        return None


def make_store(
    target: Target,
    throttle: Throttle,
    stop: threading.Event | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Store:
    if target.url:
        return ServerStore(target, throttle, stop, transport=transport)
    assert target.trackio_dir is not None
    return LocalStore(target.trackio_dir, throttle, stop)


class Queue:
    """Works through the requests of artifact spools, one at a time (the uploader's, or ``sync``'s)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.handles: dict[str, Artifact] = {}  # this process's own requests, to report back
        self.blocked: str | None = None
        self.last_error: str | None = None
        self.done = 0
        self.set_aside = 0
        self.progress_at = time.monotonic()
        self._answered: dict[str, int] = {}
        self._recorded: dict[tuple[str, str], set[bytes]] = {}  # (project, name) -> contents
        self.stopping: Callable[[], bool] = lambda: False
        self.announce = True  # log a stop as it happens; ``sync`` reports it itself instead

    def drain(self, spool: Spool, store: Store) -> bool:
        """Send every request of ``spool``, in order; False to try again later."""
        while not self.stopping() and (batch := spool.next_batch(1)) is not None:
            try:
                rec = orjson.loads(batch.lines[0])
            except orjson.JSONDecodeError:
                rec = {"id": "?", "kind": "?"}
            if isinstance(rec.get("files"), list):  # snapshots: relative to the spool folder
                located(rec["files"], spool.path)
            if not self._process(spool, store, rec, batch.lines[0]):
                return False
            spool.ack(batch)
            _forget(spool, str(rec.get("id")))
            self.progress_at = time.monotonic()
        return not self.stopping()

    def _process(self, spool: Spool, store: Store, rec: dict[str, Any], line: bytes) -> bool:
        """One request; True when it is finished with (recorded or set aside)."""
        try:
            if rec.get("kind") == ARTIFACT:
                result = self._artifact(spool, store, rec)
                handle = self.handles.pop(rec["id"], None)
                if handle is not None:
                    handle._finish(result)
            elif rec.get("kind") == USE:
                self._use(store, rec)
            elif rec.get("kind") == FILE:
                for entry in rec["files"]:
                    unchanged(entry)
                    store.save_file(rec["project"], entry)
            else:
                self._put_aside(spool, rec, line, "not a request this version knows")
                return True
        except FileChanged as exc:
            self._put_aside(spool, rec, line, f"{exc}; the version was not recorded")
            return True
        except Stopped:
            return False
        except StoreError as exc:
            return self._failed(spool, rec, line, exc)
        self.done += 1
        self.last_error = None
        return True

    def _artifact(self, spool: Spool, store: Store, rec: dict[str, Any]) -> dict[str, Any]:
        manifest = self._manifest(spool, rec)
        present = store.present(rec["project"], sorted({e["digest"] for e in manifest}))
        for entry, item in zip(rec["files"], manifest, strict=True):
            if item["digest"] not in present:
                unchanged(entry)
                store.put_blob(rec["project"], item["digest"], entry)
                present.add(item["digest"])  # the same content twice in one version: sent once
        # The same content logged again is the same version, and trackio's server then replaces
        # the version's metadata. Keep the first (as W&B does): Lightning's last.ckpt, a copy of
        # the checkpoint just logged, must not rename "epoch=2-step=12.ckpt" to "last.ckpt".
        name = (rec["project"], rec["name"])
        content = orjson.dumps(sorted((e["path"], e["digest"]) for e in manifest))
        if content in self._recorded.get(name, ()):
            rec = {**rec, "metadata": None}
        result = store.commit(rec, manifest)
        self._recorded.setdefault(name, set()).add(content)
        return result

    def _manifest(self, spool: Spool, rec: dict[str, Any]) -> list[dict[str, Any]]:
        """The version's manifest, hashed once (kept beside the spool for a resumed request)."""
        saved = spool.path / "manifests" / f"{rec['id']}.json" if spool.path else None
        if saved is not None and saved.is_file():
            return list(orjson.loads(saved.read_bytes()))
        manifest = []
        for entry in rec["files"]:
            digest = sha256_of(entry, self._hashing)
            if digest is None:
                raise Stopped
            manifest.append({"path": entry["path"], "digest": digest, "size": entry["size"]})
        if saved is not None:
            with contextlib.suppress(OSError):
                saved.parent.mkdir(exist_ok=True, mode=0o700)
                saved.with_suffix(".tmp").write_bytes(orjson.dumps(manifest))
                os.replace(saved.with_suffix(".tmp"), saved)
        return manifest

    def _hashing(self) -> bool:
        """Called for each chunk hashed: progress for ``flush``; True to stop."""
        self.progress_at = time.monotonic()
        return self.stopping()

    def _use(self, store: Store, rec: dict[str, Any]) -> None:
        version_id = rec.get("version_id")
        if version_id is None:
            found = store.resolve(rec["project"], rec["name"], rec.get("spec"))
            if found is None:
                raise StoreError(_rejected(f"artifact {rec['name']!r} not found"))
            version_id = found["version_id"]
        store.log_use(rec["project"], int(version_id), rec["run"], rec["run_id"])

    def _failed(self, spool: Spool, rec: dict[str, Any], line: bytes, exc: StoreError) -> bool:
        reply = exc.reply
        self.last_error = str(exc)
        if reply.outcome is Outcome.AUTH:
            if self.blocked is None:
                self.blocked = str(exc)
                if self.announce:
                    logger.error(
                        "trackio-integrations: uploads stopped (%s). %d request(s) are kept in %s.",
                        exc,
                        spool.pending,
                        spool.path or "memory",
                    )
            return False
        if "Digest mismatch" in reply.message:
            self._put_aside(
                spool,
                rec,
                line,
                "a file changed after it was logged (its sha256 "
                "differs from the one hashed); the version was not recorded",
            )
            return True
        transient = any(hint in reply.message for hint in _TRANSIENT)
        if reply.outcome is Outcome.REJECTED and not transient:
            self._put_aside(spool, rec, line, f"the target refused it: {exc}")
            return True
        if reply.status is not None and not transient:  # the server answers, but fails it
            count = self._answered[rec["id"]] = self._answered.get(rec["id"], 0) + 1
            if count >= ANSWERED_FAILURES:
                self._put_aside(spool, rec, line, f"the target failed it {count} times: {exc}")
                return True
        logger.debug("trackio-integrations: upload failed, will retry: %s", exc)
        return False

    def _put_aside(self, spool: Spool, rec: dict[str, Any], line: bytes, reason: str) -> None:
        path = dead_letter(self.root, spool, [line], reason)
        self.set_aside += 1
        what = {ARTIFACT: f"artifact {rec.get('name')!r}", USE: f"use of {rec.get('name')!r}"}
        logger.error(
            "trackio-integrations: %s was not recorded: %s. The request is set aside in %s.",
            what.get(str(rec.get("kind")), f"project file {_first_path(rec)!r}"),
            reason,
            path,
        )
        handle = self.handles.pop(str(rec.get("id")), None)
        if handle is not None:
            handle._finish(None, reason)


def _forget(spool: Spool, record_id: str) -> None:
    """A finished request's hard links and saved manifest."""
    if spool.path is None:
        return
    shutil.rmtree(spool.path / "snapshots" / record_id, ignore_errors=True)
    with contextlib.suppress(OSError):
        (spool.path / "manifests" / f"{record_id}.json").unlink()


def _first_path(rec: dict[str, Any]) -> str:
    files = rec.get("files") or [{}]
    return str(files[0].get("path", "?"))


def _rejected(message: str) -> Reply:
    return Reply(Outcome.REJECTED, None, message)
