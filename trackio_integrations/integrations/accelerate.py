"""``TrackioTracker``: Hugging Face Accelerate's tracker interface, on top of ``TrackioClient``."""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any, TypeVar

from accelerate import Accelerator
from accelerate.tracking import GeneralTracker
from accelerate.tracking import on_main_process as accelerate_on_main_process

from trackio_integrations.artifacts.model import Artifact, UsedArtifact
from trackio_integrations.client import DEFAULT_FINISH_TIMEOUT, TrackioClient
from trackio_integrations.core.runs import Resume, check_resume, run_to_resume
from trackio_integrations.core.target import TARGET_OPTIONS
from trackio_integrations.errors import TrackioConfigError, warn_user
from trackio_integrations.integrations.common import Monitoring
from trackio_integrations.media.kinds import Image, Table, each
from trackio_integrations.monitoring.health import HealthChecks
from trackio_integrations.monitoring.nodes import launched_rank
from trackio_integrations.monitoring.system import DEFAULT_INTERVAL

__all__ = ["InitTrackersTracker", "TrackioTracker"]

Method = TypeVar("Method", bound=Callable[..., Any])


def on_main_process(method: Method) -> Method:
    """accelerate's ``on_main_process``, and world rank 0 where the launcher says so.

    Under ``torchrun`` on a machine without GPUs, an ``Accelerator()`` made without ``cpu=True``
    takes each process for a job of one, each its own main process: ``RANK`` / ``WORLD_SIZE``
    still say which one is rank 0, and only that one sends (one run, rank 0's points).
    """
    guarded = accelerate_on_main_process(method)

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if launched_rank() not in (None, 0):
            return None
        return guarded(self, *args, **kwargs)

    return call  # type: ignore[return-value]


class TrackioTracker(GeneralTracker):
    """Send ``accelerator.log(...)`` to a Trackio server, a Space, or local storage.

    Examples:
        >>> from accelerate import Accelerator  # doctest: +SKIP
        >>> from trackio_integrations import TrackioTracker
        >>> accelerator = Accelerator(log_with=TrackioTracker(server_url="http://127.0.0.1:7860"))
        >>> accelerator.init_trackers("my-project", config={"lr": 3e-4})
        >>> for step in range(100):
        ...     accelerator.log({"train": {"loss": 1 / (step + 1)}}, step=step)  # "train/loss"
        >>> accelerator.end_training()

    Constructing the tracker is free and never connects: the run (a ``TrackioClient``) is created
    by ``init_trackers``, which accelerate runs on the main process only. There,
    ``accelerator.get_tracker("trackio")`` is this tracker and ``get_tracker("trackio",
    unwrap=True)`` its client; on the other processes both are accelerate's blank tracker.

    The project is the first of: ``project=``, the ``project_name`` given to
    ``Accelerator.init_trackers``, ``TRACKIO_PROJECT``. The run name is the first of ``name=``,
    ``init_kwargs={"trackio": {"name": ...}}`` given to ``init_trackers``, a generated one. Other
    ``init_kwargs["trackio"]`` keys and ``log_kwargs["trackio"]`` are ignored with one warning.
    accelerate hands a tracker instance neither, so they are read from the ``init_trackers`` call
    itself; ``log_with="trackio-integrations"`` (accelerate 1.15 and later) instead has accelerate
    build an ``InitTrackersTracker`` with them, nothing read.

    Media as accelerate's W&B tracker takes them: ``tracker.log_images({"samples": batch})``
    (each item of a list or batch under ``samples/0``, ``samples/1``, ...) and
    ``tracker.log_table("preds", columns=..., data=...)`` (or ``dataframe=``).

    Args:
        project: Trackio project (see above for the fallback).
        name: run name.
        server_url: a self-hosted server, may carry ``?write_token=`` (``TRACKIO_SERVER_URL``).
        space_id: a Hugging Face Space ``owner/name`` (``TRACKIO_SPACE_ID``); wins over a URL.
        write_token: the server's write token (else from the URL, else ``TRACKIO_WRITE_TOKEN``).
        hf_token: Hugging Face token, sent to Hugging Face hosts only (else ``HF_TOKEN``).
        ca_bundle: a PEM file or folder of CAs to trust (else ``TRACKIO_CA_BUNDLE``, then the
            machine's trust store); see the gateway page of the docs.
        client_cert: a client certificate for mTLS: a path, or (certificate, key) (else
            ``TRACKIO_CLIENT_CERT`` / ``TRACKIO_CLIENT_KEY``).
        headers: headers for that server only, e.g. a gateway's access token (else
            ``TRACKIO_HEADERS``, a JSON object).
        run_id: a stable id for the run; pass the same one to continue a run after a restart.
        spool_dir: where unsent points wait (``TRACKIO_SPOOL_DIR``, else the user cache).
        check: check the server version and write access when the run starts.
        step_ids: store each (step, metric names) once, as for ``TrackioClient``.
        config: initial config, merged with the ``config`` given to ``init_trackers``.
        resume: ``"never"`` (a new run), ``"allow"`` or ``"must"`` continue the latest run called
            ``name``, as ``trackio.init(resume=...)`` does (``"must"`` raises if there is none).
        finish_timeout: how long ``accelerator.end_training()`` waits for pending points.
        system_metrics: sample the machine in the background (as for ``TrackioClient``); in a
            multi-node job each node's local rank 0 samples its node into the same run
            (``node<k>/...``).
        system_interval: seconds between two samples.
        alert_webhook: a Slack, Discord or plain URL each alert is also posted to
            (``TRACKIO_WEBHOOK_URL``).
        alert_webhook_min_level: the lowest level posted there (``TRACKIO_WEBHOOK_MIN_LEVEL``).
        provenance: record git commit, diff, packages, command (see ``TrackioClient``).
        health: the training-health alerts (``HealthChecks``, ``False`` for none): a NaN or
            infinite loss or gradient norm among the logged values, a loss spike, a stall (nothing
            logged within ``stall_after``), an exception that ends the program before
            ``end_training()`` (via ``sys.excepthook``).
        save_code: save the training script and the config files on its command line to the
            project's Files, once per run.
        group: the run's group (else ``TRACKIO_GROUP``), shown together in the dashboard's
            Group-by view; kept as trackio keeps it (config ``_Group``).

    Artifacts: ``tracker.log_artifact(dir, name="state", type="checkpoint")`` after
    ``accelerator.save_state(dir)`` logs a version in the background (see
    ``TrackioClient.log_artifact``); ``use_artifact`` and ``save`` are the client's too.
    """

    name = "trackio"
    requires_logging_directory = False
    main_process_only = True

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
        resume: Resume = "never",
        finish_timeout: float = DEFAULT_FINISH_TIMEOUT,
        system_metrics: bool = True,
        system_interval: float = DEFAULT_INTERVAL,
        alert_webhook: str | None = None,
        alert_webhook_min_level: str | None = None,
        health: HealthChecks | bool | Mapping[str, Any] = True,
        provenance: bool | None = None,
        save_code: bool = False,
        ca_bundle: str | os.PathLike[str] | None = None,
        client_cert: str | os.PathLike[str] | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        mode: str | None = None,
        group: str | None = None,
    ) -> None:
        super().__init__()
        self.save_code = save_code
        self.project = project
        self._name = name
        self._resume = resume
        self.finish_timeout = finish_timeout
        self._built_by_accelerate = False  # True: init_trackers' arguments came to __init__
        self._options: dict[str, Any] = {
            "server_url": server_url,
            "space_id": space_id,
            "write_token": write_token,
            "hf_token": hf_token,
            "ca_bundle": ca_bundle,
            "client_cert": client_cert,
            "headers": headers,
            "config": config,
            "run_id": run_id,
            "spool_dir": spool_dir,
            "check": check,
            "step_ids": step_ids,
            "group": group,
        }
        self._client: TrackioClient | None = None
        self._finished = False
        self._ignored_kwargs: set[str] = set()
        self._monitoring = Monitoring(
            system_metrics,
            system_interval,
            alert_webhook,
            alert_webhook_min_level,
            health,
            provenance,
            mode=mode,
        )
        # accelerate calls a tracker on the main process only: on another node's local rank 0
        # (known from the launcher's variables) a thread waits for the run to be announced.
        target = (*TARGET_OPTIONS, "spool_dir")
        self._monitoring.follow({k: self._options[k] for k in target})

    @property
    def tracker(self) -> TrackioClient | None:
        """The run's ``TrackioClient`` (main process, after ``init_trackers``), else ``None``."""
        return self._client

    @on_main_process
    def start(self) -> None:
        """Create the run. Called by ``Accelerator.init_trackers`` on the main process."""
        if self._client is not None and not self._finished:
            return  # init_trackers() called again: keep the run
        given_project, given_kwargs = (
            (None, {}) if self._built_by_accelerate else _init_trackers_arguments()
        )
        project = self.project or given_project or os.environ.get("TRACKIO_PROJECT")
        if not project:
            raise TrackioConfigError(
                "No Trackio project: pass TrackioTracker(project=...), call "
                "accelerator.init_trackers(project_name) or set TRACKIO_PROJECT."
            )
        name = self._name or given_kwargs.pop("name", None)
        group = self._options["group"] or given_kwargs.pop("group", None)
        if given_kwargs:
            warn_user(
                f"TrackioTracker ignores init_kwargs['trackio'] keys {sorted(given_kwargs)}: pass "
                "them to TrackioTracker(...) instead."
            )
        check_resume(self._resume, name)
        options = {**self._options, "group": group}
        if options["run_id"] is None and self._monitoring.online:  # offline: no lookup
            where = {key: options[key] for key in TARGET_OPTIONS}
            options["run_id"] = run_to_resume(project, name, self._resume, **where)
        self._client = TrackioClient(project, name, **options, **self._monitoring.client_options())
        self._finished = False
        self._monitoring.started(self._client)
        if self.save_code:
            self._client.save_code()

    @on_main_process
    def store_init_configuration(self, values: Mapping[str, Any]) -> None:
        """Merge ``values`` into the run's config (``init_trackers(..., config=...)``)."""
        if self._client is not None:
            self._client.update_config(values)

    @on_main_process
    def log(self, values: Mapping[str, Any], step: int | None = None, **kwargs: Any) -> None:
        """Record one point; never raises. Extra ``kwargs`` (``log_kwargs``) are ignored."""
        if kwargs and not self._ignored_kwargs.issuperset(kwargs):
            self._ignored_kwargs.update(kwargs)
            warn_user(f"TrackioTracker.log() ignores the keyword arguments {sorted(kwargs)}.")
        if self._client is None:
            warn_user("TrackioTracker.log() before init_trackers(): the point is not recorded.")
            return
        self._client.log(values, step=step)
        self._monitoring.observe(values, step)

    @on_main_process
    def log_images(self, values: Mapping[str, Any], step: int | None = None, **kwargs: Any) -> None:
        """``{key: images}``: each key a list (or batch) of tensors, arrays, PIL images or paths."""
        self.log({key: each(Image, images, {}, batch=True) for key, images in values.items()}, step)

    @on_main_process
    def log_table(
        self,
        table_name: str,
        columns: list[str] | None = None,
        data: list[list[Any]] | None = None,
        dataframe: Any = None,
        step: int | None = None,
        **kwargs: Any,
    ) -> None:
        """A table, from ``columns`` and ``data`` or from a pandas ``dataframe``."""
        self.log({table_name: Table(columns=columns, data=data, dataframe=dataframe)}, step)

    @on_main_process
    def log_artifact(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Artifact | None:
        """Log a file or folder (e.g. what ``accelerator.save_state(dir)`` wrote) as a new
        version of ``name``; returns at once, uploads in the background. Main process only."""
        if self._client is None:
            warn_user("TrackioTracker.log_artifact() before init_trackers(): nothing is logged.")
            return None
        return self._client.log_artifact(path, name, type, aliases, metadata=metadata)

    @on_main_process
    def use_artifact(self, name_or_ref: Any) -> UsedArtifact | None:
        """Record that this run consumed an artifact; ``.download(dest)`` fetches it."""
        return self._client.use_artifact(name_or_ref) if self._client is not None else None

    @on_main_process
    def save(self, glob: str | os.PathLike[str]) -> int:
        """Save files matching ``glob`` to the project's Files (as ``trackio.save``)."""
        return self._client.save(glob) if self._client is not None else 0

    @on_main_process
    def finish(self) -> None:
        """Deliver what is pending within ``finish_timeout`` (``accelerator.end_training()``)."""
        if self._client is not None:
            self._finished = True  # the client stays readable; a new start() opens a new run
            self._monitoring.ended()
            self._client.finish(timeout=self.finish_timeout)

    @on_main_process
    def alert(
        self, title: str, text: str | None = None, level: str = "warn", step: int | None = None
    ) -> None:
        """Raise an alert in the run (see ``TrackioClient.alert``); main process only."""
        if self._client is not None:
            self._client.alert(title, text, level, step)

    def __repr__(self) -> str:
        return f"TrackioTracker(project={self.project!r}, run={self._client!r})"


class InitTrackersTracker(TrackioTracker):
    """The tracker that ``Accelerator(log_with="trackio-integrations")`` builds, and
    ``log_with="trackio"`` after ``trackio_integrations.install()``.

    >>> accelerator = Accelerator(log_with="trackio-integrations")  # doctest: +SKIP
    >>> accelerator.init_trackers(
    ...     "my-project", init_kwargs={"trackio-integrations": {"name": "lr-3e-4"}}
    ... )

    accelerate builds it in ``init_trackers`` with ``project_name`` and ``init_kwargs[<name>]``.
    Those may be ``trackio.init`` options: ``name``, ``server_url``, ``space_id``, ``config``,
    ``resume`` and ``group`` are used, as are
    this package's own (``write_token``, ``spool_dir``, ...); the others (``embed``,
    ``private``, ``auto_log_gpu``, ...) are ignored with one warning.
    """

    name = "trackio-integrations"

    def __init__(self, project_name: str | None = None, **init_kwargs: Any) -> None:
        options = dict(init_kwargs)
        accepted = set(inspect.signature(TrackioTracker.__init__).parameters) - {"self", "project"}
        ignored = sorted(set(options) - accepted)
        if ignored:
            warn_user(
                f"{type(self).__name__} ignores the trackio.init options {ignored}: it sends "
                "scalar metrics and config only (no Space creation, system metrics or webhooks)."
            )
        super().__init__(
            project_name or None, **{k: v for k, v in options.items() if k in accepted}
        )
        self._built_by_accelerate = True


class LogWithTrackioTracker(InitTrackersTracker):
    """``InitTrackersTracker`` under accelerate's own name, for ``log_with="trackio"``."""

    name = "trackio"


def _init_trackers_arguments() -> tuple[str | None, dict[str, Any]]:
    """``project_name`` and ``init_kwargs["trackio"]`` of the ``init_trackers`` call running us.

    accelerate builds its own trackers with these but hands a tracker instance nothing: it only
    calls ``start()``. Reading them from the caller's frame lets ``init_trackers("my-project")``
    mean the same project for our tracker as for the built-in ones.
    """
    frame: FrameType | None = sys._getframe(1)
    for _ in range(16):  # start() sits a few decorator frames below init_trackers
        if frame is None:
            break
        if frame.f_code.co_name == "init_trackers" and isinstance(
            frame.f_locals.get("self"), Accelerator
        ):
            project = frame.f_locals.get("project_name")
            init_kwargs = frame.f_locals.get("init_kwargs")
            kwargs = init_kwargs.get("trackio") if isinstance(init_kwargs, Mapping) else None
            return (
                project if isinstance(project, str) and project else None,
                dict(kwargs) if isinstance(kwargs, Mapping) else {},
            )
        frame = frame.f_back
    return None, {}
