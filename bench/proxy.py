"""A loopback TCP proxy that adds latency to every request, and can cut the server off.

Unlike a proxy that sleeps before forwarding each chunk (which caps bandwidth: a 1 MB batch read in
64 KB chunks would wait 16 times), this one stamps each client->server chunk on arrival and
forwards it ``delay`` seconds later, so every request is answered ``delay`` late whatever its size.
``requests`` counts the API calls (``POST /api/...``) that went through. ``cut()`` closes the
listening socket and every open connection: new connections are refused, as
if the server had died.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time

_REQUEST = b"POST /api/"


class LatencyProxy:
    def __init__(self, upstream_port: int, delay: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open: set[socket.socket] = set()
        self.requests = 0
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Refuse new connections and reset open ones, as a dead server would."""
        with self._lock:
            self._closed = True
            sockets = [self._listener, *self._open]
            self._open.clear()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    close = cut

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._open.update((client, upstream))
            if self.delay > 0:
                chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()
                threading.Thread(target=self._read, args=(client, chunks), daemon=True).start()
                threading.Thread(
                    target=self._write_late, args=(chunks, client, upstream), daemon=True
                ).start()
            else:
                threading.Thread(
                    target=self._pipe, args=(client, upstream, True), daemon=True
                ).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _count(self, tail: bytes, chunk: bytes) -> bytes:
        """Count request lines in the client's bytes; ``tail`` carries one split across chunks."""
        data = tail + chunk
        found = data.count(_REQUEST)
        if found:
            with self._lock:
                self.requests += found
            data = data[data.rfind(_REQUEST) + len(_REQUEST) :]
        return data[-(len(_REQUEST) - 1) :]

    def _read(self, src: socket.socket, chunks: queue.Queue[tuple[float, bytes]]) -> None:
        tail = b""
        try:
            while chunk := src.recv(1 << 16):
                tail = self._count(tail, chunk)
                chunks.put((time.monotonic() + self.delay, chunk))
        except OSError:
            pass
        chunks.put((time.monotonic() + self.delay, b""))

    def _write_late(
        self, chunks: queue.Queue[tuple[float, bytes]], src: socket.socket, dst: socket.socket
    ) -> None:
        try:
            while True:
                due, chunk = chunks.get()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not chunk:
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        self._drop(src, dst)

    def _pipe(self, src: socket.socket, dst: socket.socket, count: bool = False) -> None:
        tail = b""
        try:
            while chunk := src.recv(1 << 16):
                if count:
                    tail = self._count(tail, chunk)
                dst.sendall(chunk)
        except OSError:
            pass
        self._drop(src, dst)

    def _drop(self, *sockets: socket.socket) -> None:
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)  # wakes the thread reading the other direction
            with contextlib.suppress(OSError):
                s.close()
            with self._lock:
                self._open.discard(s)
