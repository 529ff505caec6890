"""A loopback forward HTTP proxy, as ``HTTPS_PROXY=http://127.0.0.1:<port>`` names one, to check
that jobs reach a gateway through their company's proxy. Loopback targets only."""

from __future__ import annotations

import contextlib
import re
import socket
import threading


class ForwardProxy:
    """A loopback forward HTTP proxy, as ``HTTPS_PROXY=http://127.0.0.1:<port>`` names one.

    ``CONNECT host:port`` opens a blind tunnel (for https); an absolute-form request
    (``GET http://host:port/path``) is passed on in origin form (for http). ``connects`` lists
    the CONNECT targets seen, ``requests`` the absolute URLs, ``proxy_authorization`` every
    ``Proxy-Authorization`` header sent. Only 127.0.0.1 and localhost are reached; any other
    target is answered 403 and listed in ``refused``.
    """

    def __init__(self) -> None:
        self.connects: list[str] = []
        self.requests: list[str] = []
        self.refused: list[str] = []
        self.proxy_authorization: list[str] = []
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                continue
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            head, rest = self._read_head(client)
            if head is None:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers = [line for line in lines[1:] if line]
            for line in headers:
                name, _, value = line.partition(":")
                if name.strip().lower() == "proxy-authorization":
                    with self._lock:
                        self.proxy_authorization.append(value.strip())
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                if not self._allowed(host, target, client):
                    return
                with self._lock:
                    self.connects.append(target)
                upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
                upstream.settimeout(None)
                self._track(upstream)
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                if rest:
                    upstream.sendall(rest)
            else:
                match = re.match(r"http://([^/:]+)(?::(\d+))?(/.*)?$", target)
                if match is None:
                    client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    return
                host, port, path = match[1], int(match[2] or 80), match[3] or "/"
                if not self._allowed(host, target, client):
                    return
                with self._lock:
                    self.requests.append(target)
                kept = [
                    line
                    for line in headers
                    if not line.lower().startswith(("proxy-", "connection:", "keep-alive:"))
                ]
                upstream = socket.create_connection((host, port), timeout=10)
                upstream.settimeout(None)
                self._track(upstream)
                request = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close"])
                upstream.sendall(request.encode("latin-1") + b"\r\n\r\n" + rest)
            back = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
            back.start()
            self._pipe(client, upstream)
            back.join(30)
        except (OSError, ValueError):
            pass
        finally:
            self._close(client)
            if upstream is not None:
                self._close(upstream)

    def _allowed(self, host: str, target: str, client: socket.socket) -> bool:
        if host.strip("[]") in ("127.0.0.1", "localhost"):
            return True
        with self._lock:
            self.refused.append(target)
        client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return False

    @staticmethod
    def _read_head(sock: socket.socket) -> tuple[bytes | None, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk or len(data) > 65536:
                return None, b""
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        return head, rest

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.close()

    def stop(self) -> None:
        """Stop accepting, close every open connection, and wait for the accepting thread."""
        self._stop.set()
        self._thread.join(5)
        self._sock.close()
        with self._lock:
            open_now = list(self._open)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            self._close(sock)

    def __enter__(self) -> ForwardProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
