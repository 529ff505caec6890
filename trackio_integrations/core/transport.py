"""HTTP to a Trackio server: one pooled connection, the ``bulk_log`` call, and what a reply means.

The wire protocol (``POST /api/<name>`` with ``{"args": [...], "kwargs": {...}}``) answers 200 on
success, 400 for validation *and* a wrong write token, 500 for anything else, including a malformed
entry. ``Reply.outcome`` turns that into what the sender must do.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trackio_integrations.core.records import ALERT, MEDIA, METRIC, SYSTEM, by_kind
from trackio_integrations.core.target import Target
from trackio_integrations.errors import TrackioAuthError, TrackioServerError

if TYPE_CHECKING:
    import httpx

SUPPORTED_API_VERSION = 1
# Each record kind's call, as "<list argument>:<path>".
_CALLS = {
    METRIC: "logs:/api/bulk_log",
    SYSTEM: "logs:/api/bulk_log_system",
    ALERT: "alerts:/api/bulk_alert",
    MEDIA: "logs:/api/bulk_log",  # once their files are up (media_files.upload_files)
}
_AUTH_HINTS = ("write_token", "write access", "hf_token", "write-access")


class Outcome(enum.Enum):
    OK = "ok"
    AUTH = "auth"  # the token is wrong: stop sending to this target
    REJECTED = "rejected"  # the server refused the content: split the batch, set bad points aside
    RETRY = "retry"  # network, timeout, 5xx: try again later


@dataclass(frozen=True)
class Reply:
    outcome: Outcome
    status: int | None
    message: str


class Transport:
    """A small client for one target. Never follows redirects (a token must not travel on)."""

    def __init__(
        self,
        target: Target,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not target.url:
            raise ValueError("Transport needs a server or Space target")
        import httpx  # here, not at the top: a run on local storage never loads it

        self.target = target
        self._http = httpx.Client(
            base_url=target.url,
            headers=target.headers(),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            follow_redirects=False,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"Transport({self.target!s})"

    def close(self) -> None:
        self._http.close()

    def version(self, timeout: float | None = None) -> dict[str, Any]:
        """``GET /version``; raises ``TrackioServerError`` for an API this client does not speak."""
        response = self._http.get("/version", timeout=timeout or self._http.timeout)
        try:
            info = response.json()
        except ValueError:
            info = None
        if response.status_code != 200 or not isinstance(info, dict):
            raise TrackioServerError(
                f"{self.target} did not answer /version like a Trackio server "
                f"(HTTP {response.status_code}). Check the URL."
            )
        if info.get("api_version") != SUPPORTED_API_VERSION:
            raise TrackioServerError(
                f"{self.target} runs Trackio {info.get('version', '?')} with API version "
                f"{info.get('api_version')!r}; this client speaks API version "
                f"{SUPPORTED_API_VERSION}. Upgrade trackio-integrations or use a matching server."
            )
        return info

    def check(self, timeout: float | None = None) -> dict[str, Any]:
        """Version and write access (an empty ``bulk_log`` stores nothing). Raises on a bad token.

        Network errors propagate as ``httpx.TransportError``: the caller decides what they mean.
        """
        info = self.version(timeout)
        reply = self.send([], timeout)
        if reply.outcome is Outcome.AUTH:
            raise TrackioAuthError(self.auth_advice(reply))
        if reply.outcome is not Outcome.OK:
            raise TrackioServerError(
                f"{self.target} refused a write-access check (HTTP {reply.status}): {reply.message}"
            )
        return info

    def send(self, lines: Sequence[bytes], timeout: float | None = None) -> Reply:
        """Send spool lines as they are, each run of one kind to its call, in order.

        The first reply that is not OK ends the send: the sender retries or splits the whole
        batch, and the ids every record carries make the parts already stored harmless.
        """
        if not lines:
            return self.call(_CALLS[METRIC], b"[]", timeout)
        reply = Reply(Outcome.OK, 200, "")
        calls: list[tuple[str, list[bytes]]] = []
        for kind, group in by_kind(lines):
            if calls and calls[-1][0] == _CALLS[kind]:
                calls[-1][1].extend(group)  # points with and without files: one bulk_log
            else:
                calls.append((_CALLS[kind], group))
        for call, group in calls:
            reply = self.call(call, b"[" + b",".join(group) + b"]", timeout)
            if reply.outcome is not Outcome.OK:
                break
        return reply

    def call(self, name: str, entries: bytes, timeout: float | None = None) -> Reply:
        """``POST /api/<name>`` with the JSON list ``entries`` under the call's list argument."""
        import httpx

        field, path = name.split(":")
        body = b'{"kwargs":{"hf_token":null,"%s":%s}}' % (field.encode(), entries)
        try:
            response = self._http.post(path, content=body, timeout=timeout or self._http.timeout)
        except httpx.HTTPError as exc:
            return Reply(Outcome.RETRY, None, f"{type(exc).__name__}: {exc}")
        return classify(response)

    def upload(self, files: Sequence[tuple[str, bytes]]) -> tuple[Reply, list[str]]:
        """``POST /api/upload`` (multipart, field ``files``): the server's temporary paths."""
        boundary = secrets.token_hex(16)
        parts = []
        for name, data in files:
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            )
            parts += [head.encode(), data, b"\r\n"]
        parts.append(f"--{boundary}--\r\n".encode())
        body = b"".join(parts)
        # A large upload gets the time it needs at 1 MB/s, on top of the usual timeout.
        timeout = (self._http.timeout.read or 10.0) + len(body) / (1 << 20)
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        try:
            response = self._http.post(
                "/api/upload", content=body, headers=headers, timeout=timeout
            )
        except httpx.HTTPError as exc:
            return Reply(Outcome.RETRY, None, f"{type(exc).__name__}: {exc}"), []
        reply = classify(response)
        if reply.outcome is not Outcome.OK:
            return reply, []
        try:
            paths = [str(p) for p in response.json()["paths"]]
        except (ValueError, KeyError, TypeError):
            paths = []
        if len(paths) != len(files):
            return Reply(Outcome.RETRY, 200, "the server's upload answer lists no paths"), []
        return reply, paths

    def read(self, name: str, **kwargs: Any) -> Any:
        """A read call of the HTTP API (``read("get_runs_for_project", project="p")``): its data.

        Raises ``TrackioServerError`` when the server refuses it, ``httpx.HTTPError`` when it is
        not reachable.
        """
        response = self._http.post(f"/api/{name}", json={"kwargs": kwargs})
        reply = classify(response)
        if reply.outcome is not Outcome.OK:
            raise TrackioServerError(
                f"{self.target} refused {name} (HTTP {reply.status}): {reply.message}"
            )
        return response.json().get("data")

    def download(self, path: str) -> bytes:
        """``GET /file?path=...``: the bytes of a file the target stores (a project file)."""
        response = self._http.get("/file", params={"path": path})
        if response.status_code != 200:
            raise TrackioServerError(
                f"{self.target} refused the file {path} (HTTP {response.status_code})"
            )
        return response.content

    def auth_advice(self, reply: Reply) -> str:
        if self.target.kind == "space":
            return (
                f"The {self.target} refused the Hugging Face token ({reply.message}). "
                "Set HF_TOKEN (or pass hf_token=) to a token with write access to that Space."
            )
        return (
            f"The {self.target} rejected the write token. Pass write_token=..., set "
            "TRACKIO_WRITE_TOKEN, or add ?write_token=... to the server URL: the token is the one "
            "in the write-access URL that `trackio show` prints (or the server's TRACKIO_WRITE_TOKEN)."
        )


def classify(response: httpx.Response) -> Reply:
    status = response.status_code
    if status == 200:
        return Reply(Outcome.OK, status, "")
    try:
        message = str(response.json().get("error", ""))
    except Exception:
        message = response.text[:200]
    auth_words = any(hint in message.lower() for hint in _AUTH_HINTS)
    if status in (401, 403) or (status in (400, 500) and auth_words):
        return Reply(Outcome.AUTH, status, message)
    if status in (400, 413, 422):
        return Reply(Outcome.REJECTED, status, message)
    # 500 may be a poison entry or a sick server; the sender tells them apart.
    return Reply(Outcome.RETRY, status, message)
