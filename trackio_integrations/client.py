"""``TrackioClient``: one run, logged durably to a Trackio server, a Space, or local storage."""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import socket
import threading
import time
import uuid
import weakref
import zlib
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from .errors import TrackioAuthError, TrackioConfigError, TrackioServerError, warn_user
from .sender import Delivery, HttpDelivery, InboxDelivery, Sender, close_quietly
from .spool import Spool, default_root
from .target import Target, resolve_target
from .transport import Transport
from .values import encode_metrics, json_safe

if TYPE_CHECKING:
    import httpx  # loaded only for a server or a Space (in transport.py)

logger = logging.getLogger("trackio_integrations")

DEFAULT_FINISH_TIMEOUT = 10.0
EXIT_FLUSH_TIMEOUT = 5.0
CONFIG_WAIT = 10.0  # seconds a config update waits for a point to ride on
_live: weakref.WeakSet[TrackioClient] = weakref.WeakSet()


class TrackioClient:
    """A run on a Trackio target. ``log()`` costs microseconds and never touches the network.

    Every point is appended to a local spool before ``log()`` returns, then sent in the background
    in batches; a point survives a server outage, a network flap, or the death of this process.

    >>> with TrackioClient("my-project", config={"lr": 3e-4}) as run:  # doctest: +SKIP
    ...     for step in range(100):
    ...         run.log({"train/loss": 1 / (step + 1)}, step=step)

    Args:
        project: Trackio project; defaults to ``TRACKIO_PROJECT``.
        name: run name; defaults to a readable, unique one.
        server_url: a self-hosted server (``TRACKIO_SERVER_URL``), may carry ``?write_token=``.
        space_id: a Hugging Face Space ``owner/name`` (``TRACKIO_SPACE_ID``); wins over a URL.
        write_token: the server's write token (else from the URL, else ``TRACKIO_WRITE_TOKEN``).
        hf_token: Hugging Face token, sent to Hugging Face hosts only (else ``HF_TOKEN``).
        config: the run's configuration (made JSON-safe).
        run_id: a stable id for the run; pass the same one to continue a run after a restart.
        spool_dir: where unsent points wait (``TRACKIO_SPOOL_DIR``, else the user cache).
        check: check the server version and write access now (a wrong token raises here).
        step_ids: derive each point's id from (run id, step, metric names), so that a step logged
            again after resuming from a checkpoint is stored once. Needs explicit steps.
    """

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        *,
        server_url: str | None = None,
        space_id: str | None = None,
        write_token: str | None = None,
        hf_token: str | None = None,
        config: Mapping[str, Any] | Any | None = None,
        run_id: str | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        check: bool = True,
        step_ids: bool = False,
        flush_interval: float | None = None,
        _http_transport: httpx.BaseTransport | None = None,
    ) -> None:
        project = project or os.environ.get("TRACKIO_PROJECT")
        if not project:
            raise TrackioConfigError("No Trackio project: pass project=... or set TRACKIO_PROJECT.")
        self.target: Target = resolve_target(
            server_url=server_url, space_id=space_id, write_token=write_token, hf_token=hf_token
        )
        self.project: str = project
        self.name: str = name or new_run_name()
        self.run_id: str = run_id or uuid.uuid4().hex
        self.server_info: dict[str, Any] | None = None
        self._config: dict[str, Any] = _as_config(config)
        self._config_pending = bool(self._config)
        self._config_since = time.monotonic()
        self._spool_root = Path(spool_dir) if spool_dir else default_root()
        self._interval = flush_interval or (0.5 if self.target.url else 2.0)
        self._http_transport = _http_transport
        self._step_ids = step_ids
        self._warned: set[str] = set()
        self._plain_keys: set[tuple[Any, ...]] = set()
        self._lock = threading.Lock()
        self._seq = 0
        self._last_step: int | None = None
        self._finished = False
        self._finish_result = True
        self._spool: Spool | None = None
        self._sender: Sender | None = None
        self._delivery: Delivery | None = None
        self._prefix = b""
        # One connection serves the checks below and then the sender.
        transport = Transport(self.target, transport=_http_transport) if self.target.url else None
        if transport is not None and check:
            self._check_target(transport)
        self._start_writer(transport)
        _live.add(self)

    # --- public API ----------------------------------------------------------------------------

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record one point. Never raises and never waits on the network.

        Bad values drop only themselves, with one warning naming the key (see ``values``).
        """
        try:
            if self._finished:
                self._warn("finished", "log() after finish() is ignored: start a new client.")
                return
            if type(metrics) is not dict and not isinstance(metrics, Mapping):
                self._warn("mapping", f"log() takes a mapping, got {type(metrics).__name__}.")
                return
            body = encode_metrics(metrics, self._warn, self._plain_keys)
            if step is not None and type(step) is not int:
                step = self._as_step(step)
            log_id = None
            if self._step_ids and step is not None:
                # Same run, step and metric names -> same id: a step re-logged after resuming
                # from a checkpoint is stored once (the server ignores a known log_id).
                names = "\0".join(sorted(str(k) for k in metrics)).encode()
                log_id = b"%s-s%d-%08x" % (self.run_id.encode(), step, zlib.crc32(names))
            with self._lock:
                if self._spool is None:  # first point in a forked child
                    self._start_writer()
                self._append(body, step, self._config_pending, log_id=log_id)
        except Exception:  # a tracker must never break a training loop
            logger.exception("trackio-integrations: log() failed; the point was not recorded")

    def update_config(self, mapping: Mapping[str, Any] | Any) -> None:
        """Merge ``mapping`` into the run's config, which the server replaces as a whole."""
        try:
            with self._lock:
                self._config.update(_as_config(mapping))
                if self._spool is None:
                    self._start_writer()
                # The config rides on the next point; if none comes soon, the sender writes it
                # alone (a row with no metrics), so it is durable and visible either way.
                if not self._config_pending:
                    self._config_pending = True
                    self._config_since = time.monotonic()
        except Exception:
            logger.exception("trackio-integrations: update_config() failed")

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    @property
    def pending(self) -> int:
        """Points recorded but not yet confirmed by the target."""
        return self._spool.pending if self._spool is not None else 0

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every point is delivered (at most ``timeout`` seconds); True if none pending."""
        if self._sender is None:
            return True
        self._write_pending_config(stale_after=0.0)
        return self._sender.flush(timeout)

    def finish(self, timeout: float = DEFAULT_FINISH_TIMEOUT) -> bool:
        """Deliver what is pending within ``timeout`` and close the run. Idempotent.

        Points still pending stay in the spool; the warning says how to send them.
        """
        with self._lock:
            if self._finished:
                return self._finish_result
            self._finished = True
        self._write_pending_config(stale_after=0.0)
        _live.discard(self)
        if self._spool is None or self._sender is None:
            return True
        deadline = time.monotonic() + timeout
        ok = self._sender.flush(timeout)
        # The thread only syncs and ends now, unless a request of its is still in flight.
        stopped = self._sender.stop(max(deadline - time.monotonic(), 0.2))
        pending = self._spool.pending
        if not ok:
            where = self._spool.path
            reason = self._sender.blocked or self._sender.last_error or "the target is slow"
            if where is None:
                logger.error(
                    "trackio-integrations: %d point(s) for %s were not delivered (%s) and, with "
                    "no writable spool, are lost.",
                    pending,
                    self.target,
                    reason,
                )
            else:
                logger.warning(
                    "trackio-integrations: %d point(s) not yet delivered to %s (%s). They are "
                    "kept in %s: run `trackio-integrations sync` (or start the next run) to send "
                    "them.",
                    pending,
                    self.target,
                    reason,
                    where,
                )
        if stopped:  # else a request is still in flight: the daemon thread keeps its files
            self._spool.close()
            if self._delivery is not None:
                close_quietly(self._delivery)
        self._finish_result = ok
        return ok

    def __enter__(self) -> TrackioClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish()

    def __repr__(self) -> str:
        return (
            f"TrackioClient(project={self.project!r}, name={self.name!r}, "
            f"run_id={self.run_id!r}, target={self.target!s})"
        )

    # --- internals -----------------------------------------------------------------------------

    def _append(
        self,
        body: bytes,
        step: int | None,
        with_config: bool,
        advance: bool = True,
        log_id: bytes | None = None,
    ) -> None:
        """Write one spool line (caller holds the lock). Config lines start with CONFIG_PREFIX."""
        assert self._spool is not None
        seq = self._seq
        self._seq = seq + 1
        if advance:
            self._last_step = (
                step
                if step is not None
                else (0 if self._last_step is None else self._last_step + 1)
            )
        head = b"{" if not with_config else b'{"config":' + orjson.dumps(self._config) + b","
        if with_config:
            self._config_pending = False
        self._spool.append(
            b'%s%s%r,"step":%s,"log_id":"%s","metrics":%s}\n'
            % (
                head,
                self._prefix,
                time.time(),
                b"null" if step is None else b"%d" % step,
                log_id or b"%s-%010d" % (self._writer_id, seq),
                body,
            )
        )

    def _write_pending_config(self, stale_after: float = CONFIG_WAIT) -> None:
        """Write a config no point has carried for ``stale_after`` seconds as a line of its own."""
        with self._lock:
            if (
                self._config_pending
                and self._spool is not None
                and time.monotonic() - self._config_since >= stale_after
            ):
                self._append(b"{}", self._last_step or 0, True, advance=False)

    def _as_step(self, step: Any) -> int | None:
        try:
            return int(step)
        except (TypeError, ValueError):
            self._warn("step", f"step must be an integer, got {step!r}; the server assigns one.")
            return None

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warn_user(message)

    def _check_target(self, transport: Transport) -> None:
        import httpx  # already loaded by the transport

        try:
            self.server_info = transport.check(timeout=5.0)
        except (TrackioAuthError, TrackioServerError):
            transport.close()
            raise
        except httpx.HTTPError as exc:
            warn_user(
                f"Trackio {self.target} is not reachable ({type(exc).__name__}). Training goes "
                "on: points are kept on disk and sent when it answers."
            )

    def _start_writer(self, transport: Transport | None = None) -> None:
        """Open a spool folder and a sender for this process (again in a forked child)."""
        writer_id = secrets.token_hex(8)
        self._writer_id = writer_id.encode()
        fixed = {"v": 1, "kind": "metric", "project": self.project, "run": self.name}
        fixed["run_id"] = self.run_id
        self._prefix = orjson.dumps(fixed)[1:-1] + b',"timestamp":'
        meta = {
            "writer": writer_id,
            "target": self.target.public(),
            "project": self.project,
            "run": self.name,
            "run_id": self.run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "created": time.time(),
        }
        try:
            self._spool = Spool.create(self._spool_root, writer_id, meta)
        except OSError as exc:
            warn_user(
                f"Cannot write the trackio-integrations spool in {self._spool_root} ({exc}). "
                "Points are kept in memory only and are lost if this process dies: set "
                "TRACKIO_SPOOL_DIR (or spool_dir=) to a writable folder."
            )
            self._spool = Spool.in_memory(meta)
        if self.target.url:
            # A forked child comes here with no transport: its parent's connection is not its own.
            self._delivery = HttpDelivery(
                transport or Transport(self.target, transport=self._http_transport)
            )
        else:
            assert self.target.trackio_dir is not None
            self._delivery = InboxDelivery(Path(self.target.trackio_dir), writer_id)
        self._sender = Sender(
            self._spool,
            self._delivery,
            root=self._spool_root,
            interval=self._interval,
            max_points=2000 if self.target.url else 20_000,
            orphans=self._adopt_orphans,
            on_cycle=self._write_pending_config,
        )
        self._sender.ensure_started()

    def _adopt_orphans(self) -> list[tuple[Spool, Delivery]]:
        """Spools left by dead writers that this client can deliver: its own target, or local."""
        found: list[tuple[Spool, Delivery]] = []
        own = self._spool.path if self._spool is not None else None
        for folder in Spool.folders(self._spool_root):
            if folder == own:
                continue
            spool = Spool.adopt(folder)
            if spool is None:
                continue
            target = spool.meta.get("target") or {}
            if target.get("kind") == "local" and target.get("trackio_dir"):
                found.append((spool, InboxDelivery(Path(target["trackio_dir"]), spool.writer_id)))
            elif self.target.url and target.get("url") == self.target.url:
                assert self._delivery is not None
                found.append((spool, self._delivery))
            else:
                if spool.pending:
                    logger.warning(
                        "trackio-integrations: %d point(s) for %s wait in %s; send them with "
                        "`trackio-integrations sync`.",
                        spool.pending,
                        target.get("url"),
                        folder,
                    )
                spool.close()
        return found

    def _reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        if self._spool is not None:
            self._spool.abandon_after_fork()
        self._spool = None  # the child opens its own spool and sender when it first logs
        self._sender = None
        self._delivery = None  # the parent's connection is not ours to use or close


def _as_config(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    safe = json_safe(value)
    if isinstance(safe, dict):
        return safe
    warn_user(
        f"config must be a mapping (or dataclass, Namespace, ...), got {type(value).__name__}; "
        "it is stored under the key 'value'."
    )
    return {"value": safe}


_ADJECTIVES = (
    "amber bold brisk calm clever crisp dapper eager fair gentle glad keen lively lucid merry "
    "nimble noble quiet rapid sharp silent steady sunny swift tidy vivid warm witty"
).split()
_NOUNS = (
    "badger comet delta falcon fjord glacier harbor heron lagoon lynx maple meadow nebula otter "
    "pine quasar raven river sparrow summit tundra valley willow zephyr"
).split()


def new_run_name() -> str:
    """Readable and unique enough: ``swift-otter-3f9a``."""
    pick = secrets.choice
    return f"{pick(_ADJECTIVES)}-{pick(_NOUNS)}-{secrets.token_hex(2)}"


def _after_fork_in_child() -> None:
    for client in list(_live):
        client._reset_after_fork()


def _finish_all_at_exit() -> None:
    """Process exit never hangs on the client: all runs share one short, bounded flush."""
    deadline = time.monotonic() + EXIT_FLUSH_TIMEOUT
    for client in list(_live):
        if client._sender is not None and client._sender._pid == os.getpid():
            client.finish(timeout=max(deadline - time.monotonic(), 0.0))


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_finish_all_at_exit)
