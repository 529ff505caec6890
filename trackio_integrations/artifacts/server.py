"""Artifacts and project files over HTTP, to a ``trackio show`` server or a Space.

The calls, as trackio 0.43's server takes them: ``check_artifact_blobs`` (which sha256 digests it
has), ``POST /api/upload`` (multipart; answers a temporary path on the server) then
``bulk_upload_artifact_blob`` (it re-hashes the bytes and refuses a mismatch), ``artifact_log``
(the version and its manifest), ``get_artifact_manifest`` and ``log_artifact_use`` (lineage),
``bulk_upload_media`` with no run (project files) and ``GET /artifact_blob/<project>/<digest>``.

Uploads stream from disk in 1 MiB chunks through a bandwidth limit, on a connection of their own:
a gigabyte in flight never holds up the points' connection.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from trackio_integrations.artifacts.files import CHUNK, FileChanged, pause, verified_write
from trackio_integrations.core.target import Target
from trackio_integrations.core.transport import Outcome, Reply, classify, open_http

if TYPE_CHECKING:
    import httpx  # loaded only for a server or a Space (in transport.py)


class StoreError(Exception):
    """A call that did not succeed; ``reply.outcome`` says whether to retry, stop or give up."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.message or f"HTTP {reply.status}")
        self.reply = reply


class Stopped(Exception):
    """The uploader was asked to stop in the middle of a file: it stays queued."""


class Throttle:
    """A token bucket over the bytes sent: ``TRACKIO_UPLOAD_MBPS`` megabytes (10^6) a second."""

    def __init__(self, mb_per_s: float | None) -> None:
        self.rate = mb_per_s * 1e6 if mb_per_s and mb_per_s > 0 else None
        self._tokens = 0.0
        self._last = time.monotonic()

    def take(self, n: int, stop: Callable[[], bool]) -> None:
        """Called before each chunk is sent: waits while over the rate, and yields the core."""
        pause()
        if self.rate is None:
            return
        now = time.monotonic()
        self._tokens = min(self._tokens + (now - self._last) * self.rate, float(CHUNK))
        self._last = now
        self._tokens -= n
        while self._tokens < 0:  # sleep off the debt in slices, so a stop is noticed
            if stop():
                raise Stopped
            time.sleep(min(-self._tokens / self.rate, 0.2))
            now = time.monotonic()
            self._tokens += (now - self._last) * self.rate
            self._last = now


class ServerStore:
    """One target's artifact calls, on a connection of their own. Not thread-safe: one uploader."""

    def __init__(
        self,
        target: Target,
        throttle: Throttle,
        stop: threading.Event | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        assert target.url
        self.target = target
        self.throttle = throttle
        self.bytes_sent = 0  # blob and file bytes, for progress and tests
        self.progress: Callable[[int], None] | None = None
        self._stop = stop or threading.Event()  # set: the upload in flight ends at its next chunk
        # A large upload is many short writes; the answer comes once the server has it all.
        self._http = open_http(
            target, timeout=timeout, read_timeout=300.0, transport=transport, json=False
        )

    def close(self) -> None:
        self._http.close()

    # --- calls -----------------------------------------------------------------------------------

    def call(self, api: str, /, **kwargs: Any) -> Any:
        """``POST /api/<api>``; the reply's ``data``, else ``StoreError``."""
        import httpx  # loaded by open_http() already

        try:
            response = self._http.post(
                f"/api/{api}",
                content=orjson.dumps({"kwargs": kwargs}),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise StoreError(Reply(Outcome.RETRY, None, f"{type(exc).__name__}: {exc}")) from None
        reply = classify(response)
        if reply.outcome is not Outcome.OK:
            raise StoreError(reply)
        try:
            return response.json().get("data")
        except ValueError:
            raise StoreError(Reply(Outcome.RETRY, 200, "not a JSON answer")) from None

    def present(self, project: str, digests: list[str]) -> set[str]:
        data = self.call("check_artifact_blobs", project=project, digests=digests, hf_token=None)
        return set((data or {}).get("present") or [])

    def put_blob(self, project: str, digest: str, entry: dict[str, Any]) -> None:
        path = self._upload(entry, "blob")
        uploaded = {"path": path, "orig_name": digest}
        self.call(
            "bulk_upload_artifact_blob",
            project=project,
            uploads=[{"project": project, "digest": digest, "uploaded_file": uploaded}],
            hf_token=None,
        )

    def commit(self, rec: dict[str, Any], manifest: list[dict[str, Any]]) -> dict[str, Any]:
        result = self.call(
            "artifact_log",
            project=rec["project"],
            name=rec["name"],
            type=rec["type"],
            description=rec.get("description"),
            metadata=rec.get("metadata"),
            manifest=manifest,
            aliases=rec.get("aliases") or [],
            run_name=rec["run"],
            run_id=rec["run_id"],
            hf_token=None,
        )
        return dict(result)

    def resolve(self, project: str, name: str, spec: str | None) -> dict[str, Any] | None:
        data = self.call("get_artifact_manifest", project=project, name=name, spec=spec)
        return dict(data) if data else None

    def log_use(self, project: str, version_id: int, run: str, run_id: str) -> None:
        self.call(
            "log_artifact_use",
            project=project,
            version_id=version_id,
            run_name=run,
            run_id=run_id,
            hf_token=None,
        )

    def save_file(self, project: str, entry: dict[str, Any]) -> None:
        """A project file. The server names the stored copy after its temporary file and puts
        it in a folder named ``relative_path``: the file's own path keeps its name visible."""
        path = self._upload(entry, Path(entry["path"]).name)
        upload = {
            "project": project,
            "run": None,
            "run_id": None,
            "step": None,
            "relative_path": entry["path"],
            "uploaded_file": {"path": path, "orig_name": Path(entry["path"]).name},
        }
        self.call("bulk_upload_media", uploads=[upload], hf_token=None)

    def fetch(self, project: str, entry: dict[str, Any], target: Path) -> None:
        import httpx

        url = f"/artifact_blob/{quote(project, safe='')}/{entry['digest']}"
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code == 404:
                    raise FileNotFoundError(f"{self.target} has no blob for {entry['path']}")
                response.raise_for_status()
                verified_write(response.iter_bytes(CHUNK), entry, target)
        except httpx.HTTPError as exc:
            raise StoreError(Reply(Outcome.RETRY, None, f"{type(exc).__name__}: {exc}")) from None

    # --- the upload ------------------------------------------------------------------------------

    def _upload(self, entry: dict[str, Any], filename: str) -> str:
        """Stream one file as ``multipart/form-data`` (field ``files``); the server's temp path."""
        import httpx

        boundary = os.urandom(16).hex()
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename) or "file"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{safe}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = int(entry["size"])
        try:
            response = self._http.post(
                "/api/upload",
                content=self._body(entry, head, tail),
                headers={
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Content-Length": str(len(head) + size + len(tail)),
                },
            )
        except httpx.HTTPError as exc:  # FileChanged and Stopped from the body pass through as such
            raise StoreError(Reply(Outcome.RETRY, None, f"{type(exc).__name__}: {exc}")) from None
        reply = classify(response)
        if reply.outcome is not Outcome.OK:
            raise StoreError(reply)
        paths = response.json().get("paths") or []
        if len(paths) != 1:
            raise StoreError(Reply(Outcome.RETRY, 200, f"upload answered {len(paths)} paths"))
        return str(paths[0])

    def _body(self, entry: dict[str, Any], head: bytes, tail: bytes) -> Iterator[bytes]:
        """The request body, read from disk a chunk at a time: memory stays flat for any size."""
        yield head
        left = int(entry["size"])
        stop = self._stop.is_set
        with open(entry["src"], "rb") as f:
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise FileChanged(f"{entry['path']} shrank after it was logged")
                if stop():
                    raise Stopped
                self.throttle.take(len(chunk), stop)
                left -= len(chunk)
                self.bytes_sent += len(chunk)
                if self.progress is not None:
                    self.progress(len(chunk))
                yield chunk
        yield tail
