"""HTTP to a Trackio server: one pooled connection, the ``bulk_log`` call, and what a reply means.

The wire protocol (``POST /api/<name>`` with ``{"args": [...], "kwargs": {...}}``) answers 200 on
success, 400 for validation *and* a wrong write token, 500 for anything else, including a malformed
entry. ``Reply.outcome`` turns that into what the sender must do.

Only a JSON body comes from Trackio. A gateway in front of it (nginx, Traefik, oauth2-proxy)
answers with its own page: 502/503/504 while the server restarts, 429 with ``Retry-After``, 413 for
a body over its limit, 401/403/400 when it refuses the client. Such an answer says nothing about the
points: it is never read as Trackio's verdict on their content (see ``classify``).

``open_http`` is the one place an HTTP client for a target is built (the sender's, the uploader's
and the CLI's): what the target's settings ask (basic auth, headers) is decided here.
"""

from __future__ import annotations

import enum
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trackio_integrations.core.access import explain, ssl_context
from trackio_integrations.core.records import ALERT, MEDIA, METRIC, SYSTEM, by_kind
from trackio_integrations.core.target import Target, redact_url
from trackio_integrations.errors import (
    TrackioAuthError,
    TrackioError,
    TrackioGatewayError,
    TrackioServerError,
    TrackioUnavailableError,
    warn_user,
)

if TYPE_CHECKING:
    import httpx

SUPPORTED_API_VERSION = 1
# Answers that mean "away for now": the server restarts, a gateway times out or sheds load.
AWAY = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 300.0  # a Retry-After longer than this is capped: points wait on disk anyway
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
    retry_after: float | None = None  # seconds the server (or its gateway) asked us to wait


def open_http(
    target: Target,
    *,
    timeout: float = 10.0,
    read_timeout: float | None = None,
    transport: httpx.BaseTransport | None = None,
    json: bool = True,
) -> httpx.Client:
    """The HTTP client for ``target``: its base URL (sub-path kept), its credentials, no redirects.

    Every request to a target goes through a client made here, so a setting that changes how we
    reach a server (basic auth from ``user:password@``, headers, TLS) reaches every caller at once.
    """
    import httpx

    headers = target.headers()
    if not json:
        headers.pop("Content-Type", None)
    secure = (target.url or "").startswith("https:")
    return httpx.Client(
        base_url=target.url or "",
        headers=headers,
        # TLS as the target's settings say (CA bundle, client certificate, trust store); proxies
        # from HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as httpx reads them.
        verify=ssl_context(target.access) if secure else True,
        auth=httpx.BasicAuth(*target.basic_auth) if target.basic_auth else None,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0), read=read_timeout or timeout),
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        follow_redirects=False,  # a token or a password must not travel on to another host
        transport=transport,
    )


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
        self.target = target
        self._http = open_http(target, timeout=timeout, transport=transport)

    def __repr__(self) -> str:
        return f"Transport({self.target!s})"

    def close(self) -> None:
        self._http.close()

    def version(self, timeout: float | None = None) -> dict[str, Any]:
        """``GET /version``. Raises ``TrackioUnavailableError`` when the server is away for now,
        ``TrackioAuthError`` when a gateway refuses us, ``TrackioServerError`` when the answer
        proves the URL wrong (not Trackio, a redirect, an API this client does not speak).

        Network errors propagate as ``httpx.TransportError``: the caller decides what they mean.
        """
        response = self._http.get("/version", timeout=timeout or self._http.timeout)
        info = _json(response)
        status = response.status_code
        if status != 200 or not isinstance(info, dict) or "api_version" not in info:
            raise _version_error(self.target, response, info)
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
            gateway = "from a gateway" in reply.message
            raise (TrackioGatewayError if gateway else TrackioAuthError)(self.auth_advice(reply))
        if reply.outcome is Outcome.RETRY:
            raise TrackioUnavailableError(
                f"{self.target} is away for now ({reply.message or reply.status}). Training goes "
                "on: points are kept on disk and sent when it answers."
            )
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
        import httpx

        boundary = os.urandom(16).hex()
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
        if "from a gateway" in reply.message:
            return (
                f"A gateway in front of {self.target} refused the request ({reply.message}). "
                "This is not the write token: check the gateway's login (user:password@ in the "
                "URL), access header or client certificate."
            )
        if self.target.kind == "space":
            return (
                f"The {self.target} refused the Hugging Face token ({reply.message}). "
                "Set HF_TOKEN (or pass hf_token=) to a token with write access to that Space."
            )
        refused = (
            "rejected the write token"
            if self.target.write_token
            else "refused to write without a write token (none was given)"
        )
        return (
            # no placeholder after "write_token=": redaction would show it as a masked token
            f"The {self.target} {refused}. Set TRACKIO_WRITE_TOKEN, pass the "
            "write_token argument, or end the server URL with ?write_token= and the token: it is "
            "the one in the write-access URL that `trackio show` prints (or the server's "
            "TRACKIO_WRITE_TOKEN)."
        )


def check_at_start(transport: Transport) -> dict[str, Any] | None:
    """The server's ``/version`` when a run starts, or None; what the answer means for the run.

    Only an answer that proves the configuration wrong raises (a rejected write token, an answer
    that is certainly not Trackio, a redirect): the run cannot work until it is fixed. A server
    that is away (refused, timed out, 502/503/504, 429) and a gateway that refuses us warn, and
    training goes on with its points kept on disk.
    """
    import httpx

    try:
        return transport.check(timeout=5.0)
    except TrackioUnavailableError as exc:
        warn_user(str(exc))
    except TrackioGatewayError as exc:  # the gateway's settings, not the write token
        warn_user(
            f"{exc} Training goes on: points are kept on disk; once fixed, "
            "`trackio-integrations sync` sends them."
        )
    except (TrackioAuthError, TrackioServerError):  # the configuration is wrong: say so now
        transport.close()
        raise
    except httpx.HTTPError as exc:  # refused, timed out, or a TLS handshake that failed
        warn_user(
            f"{explain(exc, transport.target)} Training goes on: points are kept on disk and "
            "sent when it answers."
        )
    return None


def classify(response: httpx.Response) -> Reply:
    """What an answer means for the points in the request (see the module's docstring)."""
    status = response.status_code
    if status == 200:
        return Reply(Outcome.OK, status, "")
    body = _json(response)
    wait = retry_after(response)
    if not isinstance(body, dict) or "error" not in body:  # a gateway's page, not Trackio's verdict
        page = gateway_page(response)
        if status == 413:  # over the gateway's body limit: a smaller request may pass
            return Reply(Outcome.REJECTED, status, f"HTTP 413 from a gateway: {page}")
        if status in (401, 403) or (status == 400 and "certificate" in page.lower()):
            return Reply(Outcome.AUTH, status, f"HTTP {status} from a gateway: {page}")
        return Reply(Outcome.RETRY, status, f"HTTP {status}: {page}", wait)
    message = str(body.get("error", ""))
    auth_words = any(hint in message.lower() for hint in _AUTH_HINTS)
    if status in (401, 403) or (status in (400, 500) and auth_words):
        return Reply(Outcome.AUTH, status, message)
    if status in (400, 413, 422):
        return Reply(Outcome.REJECTED, status, message)
    # 500 may be a poison entry or a sick server; the sender tells them apart.
    return Reply(Outcome.RETRY, status, message, wait)


def retry_after(response: httpx.Response) -> float | None:
    """The seconds a ``Retry-After`` header asks for (a number or an HTTP date), capped."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def gateway_page(response: httpx.Response) -> str:
    """A gateway's answer in one short line: the page's title or first words, never its markup."""
    text = response.text or ""
    title = re.search(r"(?is)<title>(.*?)</title>", text) or re.search(r"(?is)<h1>(.*?)</h1>", text)
    words = title.group(1) if title else re.sub(r"(?s)<[^>]*>", " ", text)
    words = " ".join(words.split())[:120]
    return words or "an empty answer"


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _version_error(target: Target, response: httpx.Response, info: Any) -> TrackioError:
    status = response.status_code
    page = gateway_page(response) if not isinstance(info, dict) else "a JSON answer"
    if status in AWAY or status >= 500:
        wait = retry_after(response)
        return TrackioUnavailableError(
            f"{target} is away for now (HTTP {status}: {page})"
            + (f"; it asks to retry in {wait:.0f} s" if wait is not None else "")
            + ". Training goes on: points are kept on disk and sent when it answers."
        )
    if status == 401:
        return TrackioGatewayError(
            f"A gateway in front of {target} asks for a login (HTTP 401: {page}). Put the "
            "user name and password in the URL (https://user:password@host/...)."
        )
    if status == 403:
        return TrackioGatewayError(
            f"A gateway in front of {target} refused access (HTTP 403: {page}). This is not the "
            "write token: check what the gateway asks for (an access header, a client "
            "certificate, an allowed network)."
        )
    if status == 400 and "certificate" in page.lower():
        refused = "no required" not in page.lower()  # nginx: sent but refused, or not sent
        return TrackioGatewayError(
            f"A gateway in front of {target} "
            + ("refused the client certificate" if refused else "wants a client certificate")
            + f" (HTTP 400: {page}): set TRACKIO_CLIENT_CERT and TRACKIO_CLIENT_KEY (or "
            "client_cert=) to a certificate the gateway trusts."
        )
    if 300 <= status < 400:
        where = response.headers.get("location", "?")
        return TrackioServerError(
            f"{target} redirects to {redact_url(where)} (HTTP {status}); redirects are not "
            "followed, so that credentials never travel on: use that URL instead."
        )
    if status == 404:
        return TrackioServerError(
            f"No Trackio server at {target}: /version is not found (HTTP 404: {page}). Check "
            "the URL's host, port and path (a gateway's sub-path such as /trackio belongs in it)."
        )
    return TrackioServerError(
        f"{target} did not answer /version like a Trackio server (HTTP {status}, {page}). "
        "Check the URL: it must be the address `trackio show` prints."
    )
