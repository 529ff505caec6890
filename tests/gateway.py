"""A hostile gateway: a loopback reverse proxy in front of a real ``trackio show``.

It forwards requests as nginx would (a sub-path stripped, the body passed on) and, on demand,
answers as a gateway does while things go wrong: 502/503/504 and 429 with an HTML page (and a
``Retry-After``), 413 for a body over its limit, 401 without the right basic auth, a connection
closed in the middle of an answer, or a delay. Loopback only.
"""

from __future__ import annotations

import base64
import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_REASONS = {
    401: "Authorization Required",
    413: "Request Entity Too Large",
    429: "Too Many Requests",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
    301: "Moved Permanently",
    308: "Permanent Redirect",
    200: "OK",
}
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te", "upgrade"}


def nginx_page(status: int) -> bytes:
    """The HTML page nginx answers with (its exact shape: title, h1, version footer)."""
    line = f"{status} {_REASONS.get(status, 'Error')}"
    return (
        f"<html>\r\n<head><title>{line}</title></head>\r\n<body>\r\n<center><h1>{line}</h1>"
        "</center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


@dataclass
class Fault:
    status: int
    times: int  # how many matching requests it answers (then it is spent)
    path: str | None = None  # a substring of the path it matches; None: every request
    body: bytes | None = None  # None: nginx's page for the status
    retry_after: str | None = None
    close_mid_body: bool = False
    headers: dict[str, str] | None = None


class HostileGateway:
    """``url`` reaches ``trackio show`` on ``upstream_port`` through this proxy (``prefix`` kept
    in the URL and stripped before forwarding, as ``location /trackio/ { proxy_pass ...; }``)."""

    def __init__(
        self,
        upstream_port: int,
        *,
        prefix: str = "",
        max_body: int | None = None,
        basic_auth: tuple[str, str] | None = None,
    ) -> None:
        self.upstream_port = upstream_port
        self.prefix = prefix.rstrip("/")
        self.max_body = max_body
        self.basic_auth = basic_auth
        self.delay = 0.0
        self.faults: list[Fault] = []
        self.seen: list[tuple[str, str, int]] = []  # (method, path, status answered)
        self.headers_seen: list[dict[str, str]] = []
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                gateway._handle(self)

            def do_POST(self) -> None:
                gateway._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def fail(
        self,
        status: int,
        times: int = 1,
        *,
        path: str | None = None,
        body: bytes | None = None,
        retry_after: str | None = None,
        close_mid_body: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests whose path holds ``path`` with ``status``."""
        with self._lock:
            self.faults.append(
                Fault(status, times, path, body, retry_after, close_mid_body, headers)
            )

    def heal(self) -> None:
        with self._lock:
            self.faults.clear()
        self.delay = 0.0

    @contextmanager
    def down(self, status: int = 503) -> Iterator[None]:
        """Every request answers ``status`` (the server behind is restarting) until the block ends."""
        self.fail(status, times=10**9)
        try:
            yield
        finally:
            self.heal()

    def count(self, path: str, status: int | None = None) -> int:
        with self._lock:
            return sum(1 for _, p, s in self.seen if path in p and status in (None, s))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the proxy -------------------------------------------------------------------------------

    def _fault_for(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and (fault.path is None or fault.path in path):
                    fault.times -= 1
                    return fault
        return None

    def _answer(self, h: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
        self._record(h, status)
        h.send_response(status, _REASONS.get(status))
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            h.send_header(name.replace("_", "-"), value)
        h.end_headers()
        h.wfile.write(body)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        path = h.path
        with self._lock:
            self.headers_seen.append(dict(h.headers.items()))
        if self.delay:
            time.sleep(self.delay)
        self._respond(h, path, body)

    def _record(self, h: BaseHTTPRequestHandler, status: int) -> None:
        """Count a request before its answer goes out: a client that has the answer finds it
        in ``seen`` (recorded after, it could read ``count()`` a moment too early)."""
        with self._lock:
            self.seen.append((h.command, h.path, status))

    def _respond(self, h: BaseHTTPRequestHandler, path: str, body: bytes) -> int:
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                self._answer(h, 404, nginx_page(404))
                return 404
            path = path[len(self.prefix) :]
        if self.basic_auth is not None:
            expected = base64.b64encode(":".join(self.basic_auth).encode()).decode()
            if h.headers.get("Authorization") != f"Basic {expected}":
                self._answer(h, 401, nginx_page(401), WWW_Authenticate='Basic realm="trackio"')
                return 401
        if self.max_body is not None and len(body) > self.max_body:
            self._answer(h, 413, nginx_page(413), Connection="close")
            h.close_connection = True
            return 413
        fault = self._fault_for(path)
        if fault is not None:
            page = nginx_page(fault.status) if fault.body is None else fault.body
            if fault.close_mid_body:
                self._record(h, fault.status)
                h.send_response(fault.status)
                h.send_header("Content-Length", str(len(page) + 1000))
                h.end_headers()
                h.wfile.write(page[: len(page) // 2])
                h.wfile.flush()
                h.close_connection = True
                return fault.status
            extra = {"Retry_After": fault.retry_after} if fault.retry_after else {}
            extra.update(fault.headers or {})
            self._answer(h, fault.status, page, **extra)
            return fault.status
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP}
            headers["Content-Length"] = str(len(body))
            upstream.request(h.command, path, body=body, headers=headers)
            reply = upstream.getresponse()
            data = reply.read()
        except OSError:
            self._answer(h, 502, nginx_page(502))
            return 502
        finally:
            upstream.close()
        self._record(h, reply.status)
        h.send_response(reply.status, reply.reason)
        for name, value in reply.getheaders():
            if name.lower() not in _HOP:
                h.send_header(name, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
        return reply.status
