"""HTTP to a Trackio server: one pooled connection, the ``bulk_log`` call, and what a reply means.

The wire protocol (``POST /api/<name>`` with ``{"args": [...], "kwargs": {...}}``) answers 200 on
success, 400 for validation *and* a wrong write token, 500 for anything else, including a malformed
entry. ``Reply.outcome`` turns that into what the sender must do.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import TrackioAuthError, TrackioServerError
from .target import Target

if TYPE_CHECKING:
    import httpx

SUPPORTED_API_VERSION = 1
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
        """``bulk_log`` the given spool lines (each one JSON object) as they are."""
        import httpx

        body = b'{"kwargs":{"hf_token":null,"logs":[' + b",".join(lines) + b"]}}"
        try:
            response = self._http.post(
                "/api/bulk_log", content=body, timeout=timeout or self._http.timeout
            )
        except httpx.HTTPError as exc:
            return Reply(Outcome.RETRY, None, f"{type(exc).__name__}: {exc}")
        return classify(response)

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
