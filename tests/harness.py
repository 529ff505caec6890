"""Real things to test against: ``trackio show``, a capture server, a slow proxy. Loopback only."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson

from trackio_integrations.core.spool import Spool

TOKEN = "test-write-token-7f3a9c"
BIN = Path(sys.executable).parent
# The server under test; another venv (e.g. one with transformers 4.x) may borrow the main one's.
TRACKIO_SHOW = os.environ.get("TRACKIO_SHOW_BIN") or str(BIN / "trackio")
REPO = Path(__file__).resolve().parent.parent

# Set in a developer's shell or on a CI machine, each would change what the package, the Hub
# library or `trackio show` does (where runs go, with which token, through which proxy, as which
# rank): every test starts without them (conftest.py) and so does every server the tests start;
# a test that needs one sets it. TRACKIO_SHOW_BIN is the harness's own (the server under test).
FOREIGN_PREFIXES = ("TRACKIO_", "SLURM_")
FOREIGN_NAMES = frozenset(
    {
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "HF_OIDC_RESOURCE",  # the Hub library would exchange a CI identity for a token
        "HF_ENDPOINT",
        *(f"{name}_PROXY" for name in ("HTTP", "HTTPS", "ALL", "NO")),
        *(f"{name}_proxy" for name in ("http", "https", "all", "no")),
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        *("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "NODE_RANK"),
    }
)
KEPT = frozenset({"TRACKIO_SHOW_BIN"})


def foreign_env(env: Mapping[str, str]) -> list[str]:
    """The names in ``env`` that no test may inherit (see ``FOREIGN_NAMES``)."""
    return [
        name
        for name in env
        if name not in KEPT and (name in FOREIGN_NAMES or name.startswith(FOREIGN_PREFIXES))
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)


_LAUNCHED = re.compile(r"launched at: http://127\.0\.0\.1:(\d+)")


class TrackioServer:
    """``trackio show`` from PyPI on a free loopback port, with a known write token.

    With ``space="owner/name"`` it runs as that Hugging Face Space would run it (``SYSTEM=spaces``,
    the Space's ``HF_TOKEN`` and name): writes then need a Hugging Face token, which the server
    accepts when it equals its own ``HF_TOKEN`` and else asks the Hub at ``hub_url`` about.
    """

    def __init__(
        self,
        data_dir: Path,
        token: str = TOKEN,
        port: int | None = None,
        *,
        space: str | None = None,
        hf_token: str | None = None,
        hub_url: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.token = token
        self.port = port or free_port()
        self._port_given = port is not None
        self._started = False  # once started, a restart keeps the port its clients know
        self.space, self.hf_token, self.hub_url = space, hf_token, hub_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"trackio-show-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_url(self) -> str:
        return f"{self.url}?write_token={self.token}"

    def start(self, token: str | None = None, timeout: float = 60.0) -> None:
        if token is not None:
            self.token = token
        self.data_dir.mkdir(parents=True, exist_ok=True)
        foreign = set(foreign_env(os.environ))
        env = {
            **{name: value for name, value in os.environ.items() if name not in foreign},
            "GRADIO_SERVER_PORT": str(self.port),
            "TRACKIO_DIR": str(self.data_dir),
            "TRACKIO_WRITE_TOKEN": self.token,
            "TRACKIO_INBOX_POLL_INTERVAL": "5",
            "BROWSER": "true",  # `trackio show` tries to open a browser
            "HF_HUB_OFFLINE": "1",
        }
        if self.space:
            owner, name = self.space.split("/")
            env.update(SYSTEM="spaces", SPACE_ID=self.space, SPACE_AUTHOR_NAME=owner)
            env.update(SPACE_REPO_NAME=name, HF_TOKEN=self.hf_token or "")
            env.update(HF_ENDPOINT=self.hub_url or "http://127.0.0.1:9", HF_HUB_OFFLINE="0")
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            # On a Space it listens on 0.0.0.0; here on the loopback only.
            [TRACKIO_SHOW, "show", "--host", "127.0.0.1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"trackio show exited: {self.log_path.read_text()[-2000:]}")
            self._follow_the_port(log_start)
            try:
                if httpx.get(f"{self.url}/version", timeout=1.0).status_code == 200:
                    self._started = True
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"trackio show did not answer in {timeout}s")

    def _follow_the_port(self, log_start: int) -> None:
        """``trackio show`` takes the next free port when its own is taken (another process
        can take a free port before the server binds it): a first start follows it there; a
        restart cannot (its clients know the old URL) and says so."""
        with self.log_path.open("rb") as log:
            log.seek(log_start)
            found = _LAUNCHED.search(log.read().decode(errors="replace"))
        if found is None or int(found[1]) == self.port:
            return
        if self._started or self._port_given:
            self.kill()
            raise RuntimeError(f"port {self.port} was taken: trackio show moved to {found[1]}")
        self.port = int(found[1])

    def kill(self) -> None:
        """SIGKILL, as an OOM killer or a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def job_env(self, project: str | None = None, **extra: str) -> dict[str, str]:
        """The environment of a training process (a script, torchrun) that logs to this server:
        its URL and write token (never in the URL), the project, this checkout on PYTHONPATH."""
        env = {**os.environ, "TRACKIO_SERVER_URL": self.url, "TRACKIO_WRITE_TOKEN": self.token}
        if project is not None:
            env["TRACKIO_PROJECT"] = project
        return {**env, "PYTHONPATH": str(REPO), **extra}

    # --- reading back through the server's own HTTP API -----------------------------------------

    def api(self, name: str, *args: Any) -> Any:
        response = httpx.post(f"{self.url}/api/{name}", json={"args": list(args)}, timeout=30)
        if response.status_code == 500 and "no such table" in response.text:
            # `trackio show` is importing the inbox into a project database it has just
            # created: nothing there is readable yet (a reader polls again).
            return None
        response.raise_for_status()
        return response.json()["data"]

    def runs(self, project: str) -> list[dict[str, Any]]:
        return list(self.api("get_runs_for_project", project) or [])

    def values(self, project: str, run: str, metric: str) -> list[dict[str, Any]]:
        return list(self.api("get_metric_values", project, run, metric) or [])

    def steps(self, project: str, run: str, metric: str) -> list[int]:
        return sorted(v["step"] for v in self.values(project, run, metric))

    def logs(self, project: str, run: str) -> list[dict[str, Any]]:
        return list(self.api("get_logs", project, run) or [])

    def configs(self, project: str) -> dict[str, Any]:
        return dict(self.api("get_run_configs", project) or {})

    def wait_for_steps(
        self, project: str, run: str, metric: str, count: int, timeout: float = 60.0
    ) -> list[int]:
        wait_until(lambda: len(self.values(project, run, metric)) >= count, timeout, 0.25)
        return self.steps(project, run, metric)

    def wait_for_logs(
        self, project: str, run: str, count: int, timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """The run's rows once at least ``count`` are readable (a write the server queued when
        its database was busy becomes readable a little later)."""
        wait_until(lambda: len(self.logs(project, run)) >= count, timeout, 0.25)
        return self.logs(project, run)

    def wait_for_config(self, project: str, run_id: str, **expected: Any) -> dict[str, Any]:
        """The run's config once it holds ``expected`` (e.g. ``status="success"``)."""

        def config() -> dict[str, Any]:
            return dict(self.configs(project).get(run_id) or {})

        wait_until(lambda: expected.items() <= config().items(), 60.0, 0.25)
        return config()


@dataclass
class Captured:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class CaptureServer:
    """A loopback HTTP server that records every request and answers like a Trackio server.

    ``respond(path, body) -> (status, payload)`` can be replaced to script failures.
    """

    requests: list[Captured] = field(default_factory=list)
    api_version: int = 1
    respond: Callable[[str, bytes], tuple[int, Any]] | None = None
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                capture.requests.append(
                    Captured(self.command, self.path, dict(self.headers.items()), body)
                )
                if capture.respond is not None:
                    status, payload = capture.respond(self.path, body)
                elif self.path == "/version":
                    status, payload = 200, {"version": "0.43.0", "api_version": capture.api_version}
                else:
                    status, payload = 200, {"data": None}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def bulk_logs(self) -> list[dict[str, Any]]:
        """Every entry of every ``bulk_log`` request, in order."""
        out: list[dict[str, Any]] = []
        for request in self.requests:
            if request.path == "/api/bulk_log":
                out.extend(request.json()["kwargs"]["logs"])
        return out


class SpaceRouter(httpx.BaseTransport):
    """An httpx transport that takes a Space's host to a loopback server, as DNS takes it to HF.

    Requests for ``*.hf.space`` go to ``127.0.0.1:<space_port>`` over plain HTTP, with their
    headers (``Host`` included) and body as the client made them; requests for ``127.0.0.1`` go
    where they are addressed; any other host is refused, so nothing leaves this machine.
    ``requests`` records each one as the client sent it.
    """

    def __init__(self, space_port: int) -> None:
        self.space_port = space_port
        self.requests: list[Captured] = []  # path: the whole URL the client asked for
        self._http = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(Captured(request.method, str(request.url), headers, body))
        host = request.url.host
        if host.endswith(".hf.space"):
            request.url = request.url.copy_with(
                scheme="http", host="127.0.0.1", port=self.space_port
            )
        elif host != "127.0.0.1":
            raise httpx.ConnectError(f"{host} is not reachable from the tests", request=request)
        return self._http.handle_request(request)

    def close(self) -> None:
        self._http.close()

    def sent(self) -> str:
        """Everything the client sent (URLs, headers, bodies), to look for a secret in."""
        return "\n".join(f"{r.path}\n{r.headers}\n{r.body.decode()}" for r in self.requests)


class DelayProxy:
    """A loopback TCP proxy that holds every client->server chunk for ``delay`` seconds, and
    between ``hold()`` and ``release()`` until released: a request that hangs as long as we like.

    ``sent`` keeps every byte a client sent through it, to check what went on the wire (with
    ``keep=False`` it stays empty: a gigabyte may go through); ``sent_bytes`` counts them.
    """

    def __init__(self, upstream_port: int, delay: float = 0.0, keep: bool = True) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.keep = keep
        self.sent = bytearray()
        self.sent_bytes = 0
        self._count = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))  # no other process can take it first
        self.port = int(self._sock.getsockname()[1])
        self._stop = threading.Event()
        self._open = threading.Event()
        self._open.set()
        self.holding = threading.Event()  # set once a chunk waits at the closed gate
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        self.holding.clear()
        self._open.clear()

    def release(self) -> None:
        self._open.set()

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
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, slow: bool) -> None:
        try:
            while chunk := src.recv(65536):
                if slow:
                    with self._count:
                        self.sent_bytes += len(chunk)
                        if self.keep:
                            self.sent += chunk
                    time.sleep(self.delay)
                    if not self._open.is_set():
                        self.holding.set()
                        self._open.wait()
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._open.set()
        self._sock.close()


def counting_proxy(upstream_port: int) -> DelayProxy:
    """A proxy that only counts the bytes clients send through it (requests and bodies)."""
    return DelayProxy(upstream_port, keep=False)


def run_python(
    code: str, env: dict[str, str] | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter of this venv (the repo importable), capture output."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **(env or {})},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def orphan_spool(
    root: Path, url: str, project: str, lines: list[bytes], writer: str = "orphan0001"
) -> Path:
    meta = {"writer": writer, "target": {"kind": "server", "url": url}, "project": project}
    spool = Spool.create(root, writer, meta)
    for line in lines:
        spool.append(line + b"\n")
    spool.close()  # like a process that died: the folder stays, unlocked
    return root / writer


def spool_point(project: str, step: int, **extra: object) -> bytes:
    entry = {"project": project, "run": "r", "run_id": "rid", "metrics": {"loss": step}}
    entry.update(step=step, log_id=f"poison-test-{step}", **extra)
    return orjson.dumps(entry)


def cli_process(
    args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackio_integrations.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def assert_each_step_once(
    server: TrackioServer, project: str, run: str, metric: str, n: int
) -> None:
    values = server.values(project, run, metric)
    steps = [v["step"] for v in values]
    assert len(steps) == len(set(steps)), "a point was stored twice"
    assert sorted(steps) == list(range(n))


def watcher_ended(run: Any, timeout: float = 30.0) -> None:
    """Wait until the watcher process of a finished ``run`` has ended. It starts while the run
    does and reads its end only then: it writes ``watcher.json`` into the run's spool folder and
    removes it a moment after ``finish()``, under a test that lists that folder's files."""
    watcher = run._watcher
    if watcher is None:
        return
    assert watcher._started.wait(timeout), "the watcher never started"
    if watcher._proc is not None:
        watcher._proc.wait(timeout)


def own(config: dict[str, Any]) -> dict[str, Any]:
    """A run's config without who made it and when (``_Username``, ``_Created``: every run has
    them, with values a test cannot know)."""
    return {key: value for key, value in config.items() if key not in ("_Username", "_Created")}
