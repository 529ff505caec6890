"""trackio's module API (``trackio.init``, ``log``, ``finish``, ``config``, ``alert``...) on our client.

After ``install()`` these functions replace trackio's own (``adopt/install.py``), so a library that
calls ``trackio.log`` directly (TRL's profiling, its completions table, async GRPO's rollouts)
writes to a ``TrackioClient``, with its guarantees: durable before ``log()`` returns, exactly once,
``sync`` after a crash, a server down at start. Without trackio installed, the same functions are
``trackio_integrations.api``:

>>> import trackio_integrations.api as trackio
>>> trackio.init(project="my-project", config={"lr": 3e-4})  # doctest: +SKIP
>>> trackio.log({"train/loss": 0.25})  # doctest: +SKIP
>>> trackio.finish()  # doctest: +SKIP

One run per process: ``log()`` writes to the run opened last and not finished, whoever opened it
(``init()``, ``TrackioCallback``, ``TrackioLogger``, ``TrackioTracker``), from any thread and from
inside ``contextvars.copy_context().run``. Nothing here raises into a training loop: a call with no
run, or an argument we cannot honour, warns once.
"""

from __future__ import annotations

import enum
import os
import threading
import weakref
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from trackio_integrations.client import TrackioClient
from trackio_integrations.core.process import current
from trackio_integrations.core.values import as_config
from trackio_integrations.errors import warn_user
from trackio_integrations.monitoring.system import DEFAULT_INTERVAL

__all__ = [
    "AlertLevel",
    "Config",
    "Run",
    "alert",
    "config",
    "context_vars",
    "finish",
    "init",
    "log",
    "log_artifact",
    "log_system",
    "save",
    "use_artifact",
]


class AlertLevel(str, enum.Enum):
    """The levels of ``alert()``, as trackio's ``AlertLevel`` (whose values are accepted too)."""

    INFO = "info"
    WARN = "warn"
    ERROR = "error"


_warned: set[str] = set()
_lock = threading.Lock()
_opened_by_init: weakref.WeakSet[TrackioClient] = weakref.WeakSet()
_TRACKIO_INTERVAL = 10.0  # trackio.init's default gpu_log_interval / cpu_log_interval
# init() arguments we cannot honour, with the value that means "not asked for".
_IGNORED = {
    "dataset_id": None,
    "bucket_id": None,
    "settings": None,
    "private": None,
    "embed": True,
}


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warn_user(message)


def _run(function: str) -> TrackioClient | None:
    client = current()
    if client is None:
        _warn_once(
            f"no-run:{function}",
            f"trackio.{function}() with no run open (no trackio.init(), no Trainer, Lightning "
            "or Accelerate run): ignored. Call trackio.init(project=...) first.",
        )
    return client


# --- the run -------------------------------------------------------------------------------------


def init(
    project: str | None = None,
    name: str | None = None,
    group: str | None = None,
    space_id: str | None = None,
    server_url: str | None = None,
    dataset_id: str | None = None,
    bucket_id: str | None = None,
    config: Mapping[str, Any] | None = None,
    resume: str = "never",
    settings: Any = None,
    private: bool | None = None,
    embed: bool = True,
    auto_log_gpu: bool | None = None,
    gpu_log_interval: float = _TRACKIO_INTERVAL,
    auto_log_cpu: bool | None = None,
    cpu_log_interval: float = _TRACKIO_INTERVAL,
    webhook_url: str | None = None,
    webhook_min_level: Any = None,
) -> Run:
    """Open the run that ``log()`` writes to, as ``trackio.init`` (same arguments).

    The target is ``space_id``, else ``server_url``, else the environment (``TRACKIO_SPACE_ID``,
    ``TRACKIO_SERVER_URL``, else local storage); the write token comes from the URL or
    ``TRACKIO_WRITE_TOKEN``. ``resume`` is trackio's ("never", "allow", "must" continue a run by
    its name). ``group`` (else ``TRACKIO_GROUP``) is kept as trackio keeps it, in the config as
    ``_Group``. When a Trainer, Lightning logger or Accelerate tracker already has a run of this
    project open (and ``name`` is not another one), that run is returned: one run per process
    (a ``group`` given here is that run's group then). ``dataset_id``, ``bucket_id``,
    ``settings``, ``private`` and ``embed`` are not supported: each warns once when given and is
    ignored.
    """
    given: dict[str, Any] = {"dataset_id": dataset_id, "bucket_id": bucket_id}
    given.update(settings=settings, private=private, embed=embed)
    for key, value in given.items():
        if value != _IGNORED[key]:
            _warn_once(f"init:{key}", f"trackio.init({key}=...) is not supported here: ignored.")
    project = project or os.environ.get("TRACKIO_PROJECT")
    with _lock:
        open_run = current()
        if (
            open_run is not None
            and open_run not in _opened_by_init
            and open_run.project == (project or open_run.project)
            and name in (None, open_run.name)
        ):  # the run a Trainer / logger / tracker opened: one run per process
            if config:
                open_run.update_config(config)
            if group:
                open_run.update_config({"_Group": group})
            _apply_pending_config(open_run)
            return Run(open_run)
        from trackio_integrations.core.mode import ONLINE, resolve_mode
        from trackio_integrations.core.runs import last_step, run_to_resume
        from trackio_integrations.core.target import resolve_target

        run_id = last = None
        if project and resolve_mode() == ONLINE:  # TRACKIO_MODE offline/disabled: no look-ups
            run_id = run_to_resume(project, name, resume, server_url=server_url, space_id=space_id)
        if run_id is not None and project:  # continued: step-less points follow its last step
            target = resolve_target(server_url=server_url, space_id=space_id)
            last = last_step(target, project, run_id)
        intervals = [i for i in (gpu_log_interval, cpu_log_interval) if i != _TRACKIO_INTERVAL]
        level = getattr(webhook_min_level, "value", webhook_min_level)
        client = TrackioClient(
            project,
            name,
            server_url=server_url,
            space_id=space_id,
            config=config,
            group=group,
            run_id=run_id,
            last_step=last,
            system_metrics=not (auto_log_gpu is False and auto_log_cpu is False),
            system_interval=min(intervals) if intervals else DEFAULT_INTERVAL,
            alert_webhook=webhook_url,
            alert_webhook_min_level=None if level is None else str(level),
        )
        _opened_by_init.add(client)
        _apply_pending_config(client)
        return Run(client)


def log(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Log one point to the process's run; without ``step``, the run's last step plus one."""
    client = _run("log")
    if client is not None:
        client.log(metrics, step)


def log_system(metrics: Mapping[str, Any]) -> None:
    """Log one system sample (the System Metrics tab) to the process's run."""
    client = _run("log_system")
    if client is not None:
        client.log_system(metrics)


def finish() -> None:
    """Deliver what is pending (bounded) and close the process's run."""
    client = current()
    if client is not None:
        client.finish()


def alert(
    title: str, text: str | None = None, level: Any = "warn", webhook_url: str | None = None
) -> None:
    """Raise an alert on the process's run (``level``: an ``AlertLevel`` or its value)."""
    if webhook_url is not None:
        _warn_once(
            "alert:webhook_url",
            "trackio.alert(webhook_url=...) is not supported here: pass webhook_url to "
            "trackio.init() (or set TRACKIO_WEBHOOK_URL) instead.",
        )
    client = _run("alert")
    if client is not None:
        client.alert(title, text, level=str(getattr(level, "value", level)))


def log_artifact(
    artifact_or_path: Any,
    name: str | None = None,
    type: str | None = None,
    aliases: list[str] | None = None,
    overwrite: bool = False,
) -> Any:
    """Log a file or folder as an artifact of the process's run (uploaded in the background)."""
    if overwrite:
        _warn_once("artifact:overwrite", "log_artifact(overwrite=True) is not supported: ignored.")
    client = _run("log_artifact")
    if client is None:
        return None
    path = getattr(artifact_or_path, "path", artifact_or_path)  # a path, or trackio's Artifact
    return client.log_artifact(path, name=name, type=type, aliases=aliases)


def use_artifact(artifact_or_name: Any, type: str | None = None) -> Any:
    """Record that the process's run used an artifact (``name``, ``name:v3``, ``name:alias``)."""
    client = _run("use_artifact")
    if client is None:
        return None
    return client.use_artifact(getattr(artifact_or_name, "name", artifact_or_name))


def save(glob_str: Any, project: str | None = None) -> int:
    """Save files matching ``glob_str`` to the project's Files (the run's project)."""
    client = _run("save")
    if client is None:
        return 0
    if project not in (None, client.project):
        _warn_once("save:project", "save(project=...) saves to the run's own project here.")
    return client.save(glob_str)


# --- what libraries read: the run, its config, trackio's context variables ----------------------


class Run:
    """What ``init()`` returns and ``context_vars.current_run.get()`` gives: the client, plus the
    attributes trackio's ``Run`` has that libraries read (``id``, ``config``, ``_space_id``).
    Everything else (``log``, ``finish``, ``alert``...) is the ``TrackioClient``'s."""

    def __init__(self, client: TrackioClient) -> None:
        self.client = client

    @property
    def id(self) -> str:
        return self.client.run_id

    @property
    def config(self) -> Config:
        return Config(self.client)

    @property
    def _space_id(self) -> str | None:  # TRL's model-card link; None for a self-hosted run
        return self.client.target.space_id

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.client, attribute)

    def __repr__(self) -> str:
        return f"Run({self.client!r})"


_pending_config: dict[str, Any] = {}  # set before any run: the next init() carries it


def _apply_pending_config(client: TrackioClient) -> None:
    if _pending_config:
        client.update_config(dict(_pending_config))
        _pending_config.clear()


class Config(MutableMapping[str, Any]):
    """trackio's ``config``: the process's run config as a mapping. ``config["k"] = v`` and
    ``config.update(d, allow_val_change=True)`` merge into the run's config; before any run,
    they wait for the next ``init()``."""

    def __init__(self, client: TrackioClient | None = None) -> None:
        self._client = client

    def _target(self) -> TrackioClient | None:
        return self._client if self._client is not None else current()

    def _values(self) -> dict[str, Any]:
        client = self._target()
        return client.config if client is not None else dict(_pending_config)

    def update(self, *args: Any, allow_val_change: bool = True, **values: Any) -> None:
        merged: dict[str, Any] = {}
        for arg in args:  # a mapping, or anything a run config takes (dataclass, Namespace...)
            merged.update(arg if isinstance(arg, Mapping) else as_config(arg))
        merged.update(values)
        client = self._target()
        if client is not None:
            client.update_config(merged)
        else:
            _pending_config.update(merged)

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __getitem__(self, key: str) -> Any:
        return self._values()[key]

    def __delitem__(self, key: str) -> None:
        _warn_once("config:del", "A run's config keys cannot be deleted: ignored.")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())

    def __repr__(self) -> str:
        return f"Config({self._values()!r})"


config = Config()


class _Variable:
    """A read-only stand-in for one of trackio's context variables: the process's run, seen
    from any thread or context. ``set`` is accepted and ignored (the run is the client's)."""

    def __init__(self, read: Any) -> None:
        self._read = read

    def get(self, default: Any = None) -> Any:
        client = current()
        value = self._read(client) if client is not None else None
        return default if value is None else value

    def set(self, value: Any) -> None:
        return None

    def reset(self, token: Any) -> None:
        return None


class _ContextVars:
    """``trackio.context_vars`` as libraries read it (the write token always reads None)."""

    current_run = _Variable(Run)
    current_project = _Variable(lambda c: c.project)
    current_space_id = _Variable(lambda c: c.target.space_id)
    current_server = _Variable(lambda c: c.target.url if not c.target.space_id else None)
    current_server_write_token = _Variable(lambda c: None)  # a secret: never handed out


context_vars = _ContextVars()
