"""``TrackioClient``: one run, logged durably to a Trackio server, a Space, or local storage."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
import zlib
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from trackio_integrations.artifacts.methods import ArtifactMethods, _has_queued_uploads
from trackio_integrations.core.media_files import FileStager
from trackio_integrations.core.metadata import resolve_group, run_metadata
from trackio_integrations.core.mode import DISABLED, OFFLINE, ONLINE, resolve_mode
from trackio_integrations.core.process import (
    after_fork_in_child,
    clear_current,
    finish_all_at_exit,
    new_run_name,
    set_current,
)
from trackio_integrations.core.process import live as _live
from trackio_integrations.core.records import RunFields
from trackio_integrations.core.sender import (
    Delivery,
    Sender,
    close_quietly,
)
from trackio_integrations.core.spool import Spool, default_root
from trackio_integrations.core.target import Target, resolve_target
from trackio_integrations.core.transport import Transport, check_at_start
from trackio_integrations.core.values import Kept, as_config, encode_metrics
from trackio_integrations.core.watcher import Watcher, save_config
from trackio_integrations.core.watcher import enabled as watcher_enabled
from trackio_integrations.core.watcher import wait_seconds as watcher_wait
from trackio_integrations.core.writer import (
    adopt_orphans,
    close_offline,
    delivery_for,
    open_spool,
    report_undelivered,
)
from trackio_integrations.errors import (
    TrackioConfigError,
    warn_user,
)
from trackio_integrations.media.kinds import is_media
from trackio_integrations.monitoring.alerts import AlertMethods
from trackio_integrations.monitoring.system import DEFAULT_INTERVAL, SystemSampler
from trackio_integrations.monitoring.webhook import WebhookPoster
from trackio_integrations.provenance.recorder import Recorder
from trackio_integrations.provenance.recorder import enabled as provenance_enabled

if TYPE_CHECKING:
    import httpx  # loaded only for a server or a Space (in transport.py)

    from trackio_integrations.artifacts.uploader import Uploader

logger = logging.getLogger("trackio_integrations")

DEFAULT_FINISH_TIMEOUT = 10.0
SERVER_INTERVAL = 1.0  # seconds between the sender's cycles (see __init__)
INBOX_INTERVAL = 5.0
CONFIG_WAIT = 10.0  # seconds a config update waits for a point to ride on

# The config of each run this process opened, by (project, run id). The server replaces a run's
# config as a whole, so a client that reopens one of them without a config of its own (a
# Trainer's predict() after train()) starts from it: its first update (provenance, recorded
# again) then adds to the run's config instead of replacing it.
_run_configs: dict[tuple[str, str], dict[str, Any]] = {}


class TrackioClient(AlertMethods, ArtifactMethods):
    """A run on a Trackio target. ``log()`` costs microseconds and never touches the network.

    Every point is appended to a local spool before ``log()`` returns, then sent in the background
    in batches; a point survives a server outage, a network flap, or the death of this process.

    Examples:
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
            A run this process opened before, reopened without ``config``, keeps its config.
        last_step: the last step a continued run reached: a point without a step follows it.
        config_saved: the target already holds ``config`` (a run this process continues): it is
            sent again only with a change.
        spool_dir: where unsent points wait (``TRACKIO_SPOOL_DIR``, else the user cache).
        check: check the server version and write access now (a wrong token raises here).
        step_ids: derive each point's id from (run id, step, metric names), so that a step logged
            again after resuming from a checkpoint is stored once. Needs explicit steps.
        system_metrics: sample CPU, memory, disk, network (psutil) and NVIDIA GPUs (nvidia-ml-py)
            in the background into the System Metrics tab, under trackio's names.
        system_interval: seconds between system samples.
        alert_webhook: also post every ``alert()`` to this Slack, Discord or plain JSON webhook
            (else ``TRACKIO_WEBHOOK_URL``), from the background, retried.
        alert_webhook_min_level: the lowest level posted (else ``TRACKIO_WEBHOOK_MIN_LEVEL``,
            else all).
        mode: ``"online"`` (the default), ``"offline"`` (no network: the whole run is kept in
            the spool folder for ``trackio-integrations sync``) or ``"disabled"`` (every call
            does nothing); else ``TRACKIO_MODE``. See ``core/mode.py``.
        ca_bundle: a PEM file or folder of CAs to trust for an https server (else
            ``TRACKIO_CA_BUNDLE``, ``SSL_CERT_FILE``, ..., then the machine's trust store).
        client_cert: a client certificate for a gateway that asks for one (mTLS): a PEM path
            holding certificate and key, or a ``(certificate, key)`` pair (else
            ``TRACKIO_CLIENT_CERT`` and ``TRACKIO_CLIENT_KEY``).
        headers: headers sent with every request to that server and nothing else, e.g. a
            gateway's access token (else ``TRACKIO_HEADERS``, a JSON object). Never shown or
            written to disk.
        provenance: record git commit, diff, packages, command line (secrets redacted) and
            machine in the background (``provenance/`` in the config, Files); else
            ``TRACKIO_PROVENANCE`` (``0`` is off), else on.
        group: the run's group (else ``TRACKIO_GROUP``): the dashboard's Group-by view shows the
            runs of one group together. Kept as trackio keeps it, in the config as ``_Group``,
            beside ``_Username`` and ``_Created``; a run continued by ``run_id`` without a
            config keeps the config it has.
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
        last_step: int | None = None,
        config_saved: bool = False,
        spool_dir: str | os.PathLike[str] | None = None,
        check: bool = True,
        step_ids: bool = False,
        flush_interval: float | None = None,
        _http_transport: httpx.BaseTransport | None = None,
        system_metrics: bool = True,
        system_interval: float = DEFAULT_INTERVAL,
        alert_webhook: str | None = None,
        alert_webhook_min_level: str | None = None,
        mode: str | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        client_cert: str | os.PathLike[str] | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        provenance: bool | None = None,
        group: str | None = None,
    ) -> None:
        self.mode: str = resolve_mode(mode)
        project = project or os.environ.get("TRACKIO_PROJECT")
        if not project and self.mode == DISABLED:
            project = "disabled"  # a disabled run needs no project: it records nothing
        if not project:
            raise TrackioConfigError("No Trackio project: pass project=... or set TRACKIO_PROJECT.")
        self.target: Target = resolve_target(
            server_url=server_url,
            space_id=space_id,
            write_token=write_token,
            hf_token=hf_token,
            ca_bundle=ca_bundle,
            client_cert=client_cert,
            headers=headers,
        )
        self.project: str = project
        self.name: str = name or new_run_name()
        self.run_id: str = run_id or uuid.uuid4().hex
        self.server_info: dict[str, Any] | None = None
        known = _run_configs.get((self.project, self.run_id)) if config is None else None
        self._config: dict[str, Any] = dict(known) if known is not None else as_config(config)
        # Worth a row of its own when no point carries it: a config given or updated, not only
        # the metadata below (a run that logs nothing does not appear for it).
        self._config_alone = bool(self._config)
        continued = run_id is not None and config is None and group is None
        if known is None and not continued:  # a new run, or one given its config again
            self._config.update(run_metadata(resolve_group(group), self._config))
        self._config_pending = bool(self._config) and not config_saved and known is None
        self._config_since = time.monotonic()
        self._spool_root = Path(spool_dir) if spool_dir else default_root()
        # A server: the dashboard refreshes about every second, so one request a second shows
        # points as soon as it can draw them. The inbox: `trackio show` imports it every 5 s at
        # the most often, so a fragment every 5 s is as fresh as it can be shown.
        self._interval = flush_interval or (SERVER_INTERVAL if self.target.url else INBOX_INTERVAL)
        self._http_transport = _http_transport
        self._step_ids = step_ids
        self._warned: set[str] = set()
        self._plain_keys: set[tuple[Any, ...]] = set()
        self._lock = threading.Lock()
        self._seq = 0
        self._last_step: int | None = last_step
        # The last point (body, step, log_id): a config line repeats it (see below); a media
        # point's body references its files by path, so its copy is a plain line.
        self._last_point: tuple[bytes, int | None, bytes] | None = None
        self._finished = False
        self._finish_result = True
        self._spool: Spool | None = None
        self._sender: Sender | None = None
        self._delivery: Delivery | None = None
        self._fields = RunFields(self.project, self.name, self.run_id)
        self._uploader: Uploader | None = None
        self._code_saved = False
        self._sampler: SystemSampler | None = None
        self._webhook: WebhookPoster | None = None
        self._provenance: Recorder | None = None
        self._watcher: Watcher | None = None
        if self.mode == DISABLED:  # every call returns at its first line; nothing is written
            self._finished = True
            set_current(self)  # trackio.log() after trackio.init() does nothing too
            return
        online = self.mode == ONLINE
        # One connection serves the checks below and then the sender (offline: none at all).
        transport = (
            Transport(self.target, transport=_http_transport)
            if self.target.url and online
            else None
        )
        if transport is not None and check:
            self.server_info = check_at_start(transport)
        self._start_writer(transport)
        if online and _has_queued_uploads(self._spool_root, self.target):  # a dead run's
            self._uploads()
        _live.add(self)
        _run_configs[(self.project, self.run_id)] = self._config  # the same dict: updates too
        set_current(self)  # the run trackio.log() writes to (adopt/module_api.py)
        if online:
            self._webhook = WebhookPoster.configured(alert_webhook, alert_webhook_min_level)
            self._watch()
        if system_metrics:
            self._sampler = SystemSampler(self.log_system, system_interval).start()
        if provenance_enabled(provenance):
            secrets = (self.target.write_token, self.target.hf_token)
            folder = self._spool_root / "provenance" / self.run_id
            self._provenance = Recorder(self, folder, [s for s in secrets if s]).start()

    # --- public API ----------------------------------------------------------------------------

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Record one point. Never raises and never waits on the network.

        Bad values drop only themselves, with one warning naming the key (see ``values``).
        Media values (``Image``, ``Table``, ``Histogram``, ... see ``media``) are encoded now and
        their files written beside the spool before this returns.
        """
        try:
            if self._finished:
                self._warn("finished", "log() after finish() is ignored: start a new client.")
                return
            if type(metrics) is not dict and not isinstance(metrics, Mapping):
                self._warn("mapping", f"log() takes a mapping, got {type(metrics).__name__}.")
                return
            body = encode_metrics(metrics, self._warn, self._plain_keys, is_media)
            if step is not None and type(step) is not int:
                step = self._as_step(step)
            log_id = None
            if self._step_ids and step is not None:  # an explicit step only
                # Same run, step and metric names -> same id: a step re-logged after resuming
                # from a checkpoint is stored once (the server ignores a known log_id).
                names = "\0".join(sorted(str(k) for k in metrics)).encode()
                log_id = b"%s-s%d-%08x" % (self.run_id.encode(), step, zlib.crc32(names))
            with self._lock:
                if self._spool is None:  # first point in a forked child
                    self._start_writer()
                if step is None:  # as trackio numbers it: the run's last step plus one
                    step = 0 if self._last_step is None else self._last_step + 1
                if type(body) is bytes:
                    self._append(body, step, self._config_pending, log_id=log_id)
                else:  # media values, kept for their encoder
                    self._append_media(cast(Kept, body), step, log_id)
        except Exception:  # a tracker must never break a training loop
            logger.exception("trackio-integrations: log() failed; the point was not recorded")

    def log_system(self, metrics: Mapping[str, Any], timestamp: float | None = None) -> None:
        """Record one system sample (plotted against time in the System Metrics tab).

        Durable and delivered exactly once like a point; never raises, never waits.

        Examples:
            >>> run.log_system({"gpu/0/utilization": 97.0, "memory/used": 12.5})  # doctest: +SKIP
        """
        try:
            if self._finished or not isinstance(metrics, Mapping):
                return
            body = encode_metrics(metrics, self._warn, self._plain_keys)
            with self._lock:
                if self._spool is None:
                    self._start_writer()
                assert self._spool is not None
                self._spool.append(
                    self._fields.system(body, self._next_id(), timestamp or time.time())
                )
        except Exception:
            logger.exception("trackio-integrations: log_system() failed; the sample was dropped")

    def update_config(self, mapping: Mapping[str, Any] | Any) -> None:
        """Merge ``mapping`` into the run's config, which the server replaces as a whole."""
        try:
            if self.mode == DISABLED:
                return
            with self._lock:
                update = as_config(mapping)
                if all(key in self._config and self._config[key] == update[key] for key in update):
                    return  # nothing changes: nothing to send
                self._config.update(update)
                self._config_alone = True
                if self._spool is None:
                    self._start_writer()
                # The config rides on the next point; if none comes soon, the sender writes it
                # with a copy of the last point (``_write_pending_config``): durable either way.
                if not self._config_pending:
                    self._config_pending = True
                    self._config_since = time.monotonic()
        except Exception:
            logger.exception("trackio-integrations: update_config() failed")

    @property
    def config(self) -> dict[str, Any]:
        """A copy of the run's config: what it was given and what ``update_config`` merged."""
        return dict(self._config)

    # --- trackio's Run: the same names, for code written against trackio.init()'s run ------------

    @property
    def id(self) -> str:
        """The run's id (``run_id``), as trackio's ``Run.id``."""
        return self.run_id

    @property
    def group(self) -> str | None:
        """The run's group (``config["_Group"]``, where trackio keeps it), as ``Run.group``."""
        group = self._config.get("_Group")
        return None if group is None else str(group)

    @property
    def url(self) -> str | None:
        """The Space id or the server URL the run goes to (``None`` for local storage), as
        trackio's ``Run.url``."""
        return self.target.space_id or self.target.url

    def link_artifact(
        self,
        artifact: Any,
        target_path: str,
        aliases: list[str] | None = None,
        bucket_id: str | None = None,
    ) -> None:
        """trackio's registry link: not supported (registries live in trackio's own storage or
        a bucket); warns once and links nothing. The artifact stays in the run's project."""
        self._warn(
            "link_artifact",
            f"link_artifact(..., {target_path!r}) is not supported by trackio-integrations: "
            "nothing is linked; the artifact stays in the project.",
        )

    def _project_files_folder(self) -> Path | None:
        """Local storage, online: the project's Files folder, where a file is saved by writing
        it (provenance does, in its thread); else None: files are uploaded (``save``)."""
        if self.mode != ONLINE or self.target.trackio_dir is None:
            return None
        from trackio_integrations.artifacts.paths import layout

        return Path(layout(Path(self.target.trackio_dir), self.project)["files"])

    @property
    def last_step(self) -> int | None:
        """The highest step logged so far (a point without a step gets the next one)."""
        return self._last_step

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

    def finish(
        self, timeout: float = DEFAULT_FINISH_TIMEOUT, artifact_timeout: float | None = None
    ) -> bool:
        """Deliver what is pending within ``timeout`` and close the run. Idempotent.

        True when every point logged was delivered. Points still pending stay in the spool; the
        warning says how to send them, and how many were dropped if the spool could not be written.
        Then uploads in progress are waited for while they progress, at most ``artifact_timeout``
        (600 s); a target that fails them is not waited for: they resume with ``sync`` or the next
        run.
        """
        if self.mode == DISABLED:
            clear_current(self)
            return True
        deadline = time.monotonic() + timeout
        if self._provenance is not None:  # its config and files belong to this run
            self._provenance.wait(min(timeout / 2, 5.0))
        if self._sampler is not None and not self._finished:  # its last sample goes out too
            self._sampler.stop(min(timeout / 4, 1.0))
        with self._lock:
            if self._finished:
                return self._finish_result
            self._finished = True
        self._write_pending_config(stale_after=0.0)
        _live.discard(self)
        clear_current(self)
        if self.mode == OFFLINE:
            self._finish_result = self._finish_offline()
            return self._finish_result
        if self._spool is None or self._sender is None:
            return self._finish_uploads(artifact_timeout)
        ok = self._sender.flush(max(deadline - time.monotonic(), 0.0))
        if self._webhook is not None:
            self._webhook.close(max(deadline - time.monotonic(), 0.0))
        # The thread only syncs and ends now, unless a request of its is still in flight.
        stopped = self._sender.stop(max(deadline - time.monotonic(), 0.2))
        # A request in flight when the flush gave up may have been confirmed since.
        ok = ok or (stopped and self._spool.pending == 0)
        dropped = report_undelivered(self._spool, self._sender, self.target, ok)
        if self._watcher is not None:  # a clean end: what is left waits for `sync`, as ever
            self._watcher.finished()
        if stopped:  # else a request is still in flight: the daemon thread keeps its files
            self._spool.close()
            if self._delivery is not None:
                close_quietly(self._delivery)
        ok = ok and not dropped
        uploaded = self._finish_uploads(artifact_timeout)
        if uploaded and self._provenance is not None:
            self._provenance.discard()  # its files are on the target now
        ok = uploaded and ok
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
        mode = f", mode={self.mode!r}" if self.mode != ONLINE else ""
        return (
            f"TrackioClient(project={self.project!r}, name={self.name!r}, "
            f"run_id={self.run_id!r}, target={self.target!s}{mode})"
        )

    # --- internals -----------------------------------------------------------------------------

    def _append(
        self,
        body: bytes,
        step: int | None,
        with_config: bool,
        advance: bool = True,
        log_id: bytes | None = None,
        files: bytes | None = None,
    ) -> None:
        """Write one point's spool line (caller holds the lock); ``advance=False``: a config
        line repeating the last point."""
        assert self._spool is not None
        if advance and step is not None:  # the highest step so far, as trackio keeps it
            last = self._last_step
            self._last_step = step if last is None or step > last else last
        if with_config:
            self._config_pending = False
            if self._watcher is not None:  # the watcher adds a status to it, never replaces it
                save_config(self._spool.path, self._config)
        log_id = log_id or self._next_id()
        if advance:  # a later config line may repeat it (a run of media points only too)
            self._last_point = (body, step, log_id)
        if files is not None:
            line = self._fields.media(body, step, log_id, time.time(), files)
            self._spool.append(line)
            return
        self._spool.append(
            self._fields.metric(
                body,
                step,
                log_id,
                time.time(),
                self._config if with_config else None,
                repeat=not advance,
            )
        )

    def _append_media(self, kept: Kept, step: int, log_id: bytes | None) -> None:
        """A point with media values: their files into the spool, then the point (lock held).

        The files' step folder is the point's step (``log()`` numbered a point given none).
        """
        from trackio_integrations.media.encode import (
            encode_point,  # NumPy, PIL, torch: only where a value needs them
        )

        assert self._spool is not None
        stager = FileStager(self._spool, self.project, self.name, step)
        body = encode_point(kept, stager.store, self._warn)
        if not stager.files:  # tables, histograms, reports: JSON only
            self._append(body, step, self._config_pending, log_id=log_id)
        else:  # the config rides on a point without files (a config line is never ``media``)
            self._config_alone = True
            self._append(body, step, False, log_id=log_id, files=stager.files_json())

    def _next_id(self) -> bytes:
        """A record id unique to this writer (caller holds the lock)."""
        seq = self._seq
        self._seq = seq + 1
        return b"%s-%010d" % (self._writer_id, seq)

    def _write_pending_config(self, stale_after: float = CONFIG_WAIT) -> None:
        """Write a config no point has carried for ``stale_after`` seconds as a line of its own.

        The server takes a config only inside ``bulk_log``, beside a metrics row, and stores a
        row whose ``log_id`` it knows only once (``INSERT OR IGNORE``). So the line repeats this
        run's last point, its id included: the server keeps the config and one copy of
        the point, whichever arrives first. A client that has logged no point sends no
        metric under one id per run: one row with no metric at most (docs/guarantees.md).
        """
        with self._lock:
            if (
                self._config_pending
                and self._config_alone
                and self._spool is not None
                and time.monotonic() - self._config_since >= stale_after
            ):
                body, step, log_id = self._last_point or (
                    b"{}",
                    self._last_step or 0,
                    b"%s-config" % self.run_id.encode(),
                )
                self._append(body, step, True, advance=False, log_id=log_id)

    def _as_step(self, step: Any) -> int | None:
        try:
            return int(step)
        except (TypeError, ValueError):
            self._warn("step", f"step must be an integer, got {step!r}; the server assigns one.")
            return None

    def _warn(self, key: str, message: str) -> None:
        if self.mode == DISABLED:  # a disabled run is silent too: its calls are not mistakes
            return
        if key not in self._warned:
            self._warned.add(key)
            warn_user(message)

    def _start_writer(self, transport: Transport | None = None) -> None:
        """Open a spool folder and a sender for this process (again in a forked child)."""
        writer_id = os.urandom(8).hex()
        self._writer_id = writer_id.encode()
        self._spool = open_spool(
            self._spool_root,
            writer_id,
            self.target,
            self.project,
            self.name,
            self.run_id,
            self.mode,
        )
        if self.mode == OFFLINE:
            return  # no sender: the spool waits for `trackio-integrations sync`
        # A forked child comes here with no transport: its parent's connection is not its own.
        self._delivery = delivery_for(self.target, writer_id, transport, self._http_transport)
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

    def _watch(self) -> None:
        """Start this run's watcher (``core/watcher.py``): should this process die before
        ``finish()``, it delivers the spool and says how the run ended."""
        if self._spool is None or self._spool.path is None or not watcher_enabled():
            return
        webhook = self._webhook
        handoff = {
            "target": self.target,
            "webhook": (webhook.url, webhook.min_level) if webhook is not None else None,
            "wait": watcher_wait(),
            "meta": self._spool.meta,
        }
        self._watcher = Watcher.start(self._spool.path, handoff)
        save_config(self._spool.path, self._config)

    def _finish_offline(self) -> bool:
        """Close the spool and the artifact queue at once; print the command that sends them."""
        uploader, self._uploader = self._uploader, None
        if uploader is not None:
            uploader.finish(0.0)
        return close_offline(self._spool, self._spool_root, self.project, self.name)

    def _adopt_orphans(self) -> list[tuple[Spool, Delivery]]:
        """Spools left by dead writers that this client can deliver: its own target, or local."""
        own = self._spool.path if self._spool is not None else None
        return adopt_orphans(self._spool_root, own, self.target, self._delivery)

    def _reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        if self._spool is not None:
            self._spool.abandon_after_fork()
        self._spool = None  # the child opens its own spool and sender when it first logs
        self._sender = None
        self._last_point = None  # in the parent's spool: a child's config line cannot repeat it
        self._delivery = None  # the parent's connection is not ours to use or close
        if self._watcher is not None:  # the parent's watcher: neither ours to end nor to copy
            self._watcher.abandon_after_fork()
            self._watcher = None
        self._sampler = None  # a child (a DataLoader worker) does not sample; its parent does
        self._provenance = None  # nor record provenance: the parent's run has it
        if self._webhook is not None:  # nor post its parent's queued alerts a second time
            self._webhook = WebhookPoster.configured(self._webhook.url, self._webhook.min_level)
        uploader = getattr(self, "_uploader", None)
        if uploader is not None:
            uploader.abandon_after_fork()  # the parent's uploads and lock stay the parent's
        self._uploader = None


os.register_at_fork(after_in_child=after_fork_in_child)
atexit.register(finish_all_at_exit)
