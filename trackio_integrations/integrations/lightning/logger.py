"""PyTorch Lightning: ``TrackioLogger`` for ``L.Trainer``, ``pytorch_lightning.Trainer`` and Fabric.

Lightning ships twice, as ``lightning`` (``lightning.pytorch``) and as the standalone
``pytorch_lightning``, each with its own ``Logger`` base. ``TrackioLogger`` subclasses the base of
each package the program has already imported (both if both), so ``isinstance`` checks against
either package's ``Logger`` (and Fabric's) hold for the package in use; when neither is imported yet it imports
``lightning`` (else ``pytorch_lightning``). It never imports the other one: importing a Lightning
package re-routes Lightning's rank-zero log messages to that package's logger and patches modules,
which a program using only the other package should not get from its logger. The Trainers
themselves call a logger's methods without checking its type, so either Trainer runs with either
kind.
"""

from __future__ import annotations

import atexit
import importlib
import inspect
import os
import sys
import uuid
import weakref
from argparse import Namespace
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

# The same function object that lightning and pytorch_lightning re-export: its ``rank`` attribute
# is the one their strategies set, whichever package launched the processes.
from lightning_utilities.core.rank_zero import rank_zero_only

from trackio_integrations.artifacts.model import safe_name
from trackio_integrations.client import TrackioClient, new_run_name
from trackio_integrations.core.metadata import trial_run
from trackio_integrations.core.runs import Resume, check_resume, run_name, run_to_resume
from trackio_integrations.core.target import TARGET_OPTIONS
from trackio_integrations.core.values import json_safe
from trackio_integrations.errors import TrackioConfigError, warn_user
from trackio_integrations.integrations.common import Monitoring, ending_status, slurm_run
from trackio_integrations.integrations.lightning.checkpoints import (
    checkpoint_metadata,
    checkpoint_record,
    checkpoints_to_log,
)
from trackio_integrations.integrations.lightning.cli import (
    building_cli,
    cli_config,
    cli_root,
    save_config_in_run_folder,
)
from trackio_integrations.integrations.watch import Watcher
from trackio_integrations.media.kinds import Audio, Image, Table, Video, each
from trackio_integrations.monitoring.health import HealthChecks
from trackio_integrations.monitoring.system import DEFAULT_INTERVAL

_PACKAGES = {
    # package: (module with its Logger, module with its rank_zero_experiment)
    "lightning": ("lightning.pytorch.loggers", "lightning.fabric.loggers.logger"),
    "pytorch_lightning": ("pytorch_lightning.loggers", "lightning_fabric.loggers.logger"),
}


def _lightning_bases() -> tuple[tuple[type, ...], Callable[[Any], Any]]:
    """The ``Logger`` bases to subclass and the ``rank_zero_experiment`` decorator to use."""
    imported = [package for package in _PACKAGES if package in sys.modules]
    bases: list[type] = []
    decorators: list[Callable[[Any], Any]] = []
    for package in imported or list(_PACKAGES):
        loggers, logger = _PACKAGES[package]
        try:
            bases.append(importlib.import_module(loggers).Logger)
            decorators.append(importlib.import_module(logger).rank_zero_experiment)
        except ImportError:
            continue
        if not imported:
            break  # nothing imported yet: one package is enough
    if not bases:
        raise ImportError(
            "TrackioLogger needs PyTorch Lightning: pip install 'trackio-integrations[lightning]'"
        )
    return tuple(bases), decorators[0]


if TYPE_CHECKING:
    from lightning.fabric.loggers.logger import rank_zero_experiment as _rank_zero_experiment
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import Logger as _LightningLoggers
else:
    _bases, _rank_zero_experiment = _lightning_bases()

    class _LightningLoggers(*_bases):
        pass


class TrackioLogger(_LightningLoggers):
    """Log a Lightning run to a Trackio server, a Hugging Face Space, or local storage.

    Examples:
        >>> import lightning as L  # doctest: +SKIP
        >>> from trackio_integrations import TrackioLogger
        >>> logger = TrackioLogger("my-project", server_url="http://127.0.0.1:7860")
        >>> trainer = L.Trainer(logger=logger, max_epochs=3)
        >>> trainer.fit(model, train_loader, val_loader)

    The same object works as ``pytorch_lightning.Trainer(logger=...)`` and as
    ``Fabric(loggers=[...])`` (then call ``logger.finalize("success")`` at the end).

    It also takes the arguments of Lightning's own ``lightning.pytorch.loggers.TrackioLogger``
    (``project``, ``name``, ``resume``, and ``trackio.init`` options as keywords), so a script
    written for that class runs on this one by changing only the import.

    Metrics go to the run named ``version`` in the project ``name``; hyperparameters, the final
    ``status`` (``success``, ``failed``, or ``pruned`` for an Optuna trial its pruning callback
    stopped) and the checkpoint paths and scores go to the run's config. Only global rank zero
    creates the run and sends anything. The logger writes nothing locally apart from the client's
    spool of unsent points: ``save_dir`` is None unless given (or built by ``LightningCLI``, see
    below), and checkpoints default to ``<default_root_dir>/<project>/<run>/checkpoints``.

    In a ``LightningCLI`` YAML (or ``--trainer.logger`` on the command line) it is
    ``trainer.logger: {class_path: trackio_integrations.TrackioLogger, init_args: {...}}``; every
    init argument is typed, so the CLI rejects a misspelt one. The CLI's whole configuration
    (secrets masked) goes to the run's config under ``cli``, and ``save_dir`` is the Trainer's
    ``default_root_dir``; the CLI saves its ``config.yaml`` in the run's folder under it
    (``<default_root_dir>/<project>/<run>/config.yaml``), never over the YAML it was given.

    For an Optuna search, one logger per trial: ``TrackioLogger(project, "search", trial=trial)``
    logs to the run ``search-trial-<number>`` in the group ``search``, with the trial's number and
    parameters in its config.

    Media take ``WandbLogger``'s signatures: ``log_image``, ``log_table``, ``log_text``,
    ``log_audio``, ``log_video`` (several values under one key become ``key/0``, ``key/1``, ...),
    and ``watch(model, log="gradients" | "parameters" | "all", log_freq=100)`` logs histograms of
    the gradients and weights with the metrics, every ``log_freq`` steps, until ``unwatch``.

    Args:
        project: Trackio project; defaults to ``TRACKIO_PROJECT``.
        name: run name; defaults to a readable, unique one.
        resume: as ``trackio.init``'s, for a run given by ``name``: ``"never"`` starts a new run
            even if one of that name exists, ``"allow"`` (the default, as in Lightning's class)
            continues the latest run of that name if there is one, ``"must"`` raises (when the
            run starts, before the first step) unless there is one.
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
        spool_dir: where unsent points wait (``TRACKIO_SPOOL_DIR``, else the user cache).
        prefix: put at the start of every metric name, joined with ``-`` as Lightning's loggers do.
        run_id: continue the run with this id (``logger.run_id`` of the earlier run); without
            ``name``, the run keeps its name (looked up when the run starts).
        step_ids: store each (step, metric names) once, so that steps logged again after resuming
            from a checkpoint are not duplicated. Leave off if you log the same metrics twice at
            one step on purpose (e.g. ``trainer.test`` of two checkpoints).
        finish_timeout: how long ``finalize`` waits for pending points; what is left is sent by the
            next run or ``trackio-integrations sync``.
        system_metrics: sample the machine in the background (as for ``TrackioClient``); in a
            multi-node job each node's local rank 0 samples its node into the same run
            (``node<k>/...``).
        system_interval: seconds between two samples.
        alert_webhook: a Slack, Discord or plain URL each alert is also posted to
            (``TRACKIO_WEBHOOK_URL``).
        alert_webhook_min_level: the lowest level posted there (``TRACKIO_WEBHOOK_MIN_LEVEL``).
        provenance: record git commit, diff, packages, command (see ``TrackioClient``).
        health: the training-health alerts (``HealthChecks``, ``False`` for none): a NaN or
            infinite loss or gradient norm among the logged metrics, a loss spike, a stall (nothing
            logged within ``stall_after``), and a ``finalize("failed")`` (with the exception type).
        log_model: upload ``ModelCheckpoint``'s checkpoints as versions of the artifact
            ``model-<run>``, with ``WandbLogger``'s meaning: ``True``, the best and the last at
            the end of a successful fit; ``"all"``, each one as it is saved; ``False``, none.
            Aliases ``best`` (and trackio's ``latest``); the score in the version's metadata.
            Uploads run in the background and never hold up a step.
        save_code: save the training script and the config files on its command line to the
            project's Files, once per run.
        mode: ``"online"``, ``"offline"`` or ``"disabled"`` (see ``TrackioClient``).
        group: the run's group (else ``TRACKIO_GROUP``), shown together in the dashboard's
            Group-by view; kept as trackio keeps it (config ``_Group``).
        trial: an Optuna trial: the run is ``<name>-trial-<number>`` (a new run, never resumed)
            in the group ``group``, else ``<name>``; a search with no ``name`` is named after the
            study. ``config`` gets ``trial_number`` and ``trial_params``.
        save_dir: what Lightning takes as the logger's folder (``trainer.log_dir``: profiler
            reports; checkpoints go to ``<save_dir>/<project>/<run>/checkpoints``, the CLI's
            ``config.yaml`` to ``<save_dir>/<project>/<run>``). The logger writes nothing there
            itself (under the CLI it creates the run's folder for that file).
        config: the run's first config (a dict, dataclass, Namespace, ...), as ``trackio.init``'s.
        **trackio_options: other ``trackio.init`` keywords (``embed``, ``private``,
            ``auto_log_gpu``, ...), ignored with one warning.
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        resume: Resume = "allow",
        *,
        server_url: str | None = None,
        space_id: str | None = None,
        write_token: str | None = None,
        hf_token: str | None = None,
        prefix: str = "",
        run_id: str | None = None,
        step_ids: bool = False,
        spool_dir: str | os.PathLike[str] | None = None,
        finish_timeout: float = 10.0,
        system_metrics: bool = True,
        system_interval: float = DEFAULT_INTERVAL,
        alert_webhook: str | None = None,
        alert_webhook_min_level: str | None = None,
        health: HealthChecks | bool | Mapping[str, Any] = True,
        provenance: bool | None = None,
        log_model: bool | Literal["all"] = False,
        save_code: bool = False,
        ca_bundle: str | os.PathLike[str] | None = None,
        client_cert: str | os.PathLike[str] | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        mode: Literal["online", "offline", "disabled"] | None = None,
        group: str | None = None,
        trial: Any = None,
        save_dir: str | None = None,
        config: dict[str, Any] | None = None,
        **trackio_options: Any,
    ) -> None:
        super().__init__()
        self._log_model = log_model
        self._save_code = save_code
        self._checkpoint_callbacks: dict[int, Any] = {}  # log_model=True: logged at the end
        self._logged_checkpoints: dict[str, float] = {}  # path -> mtime when logged
        project = project or os.environ.get("TRACKIO_PROJECT")
        if not project:
            raise TrackioConfigError("No Trackio project: pass project=... or set TRACKIO_PROJECT.")
        check_resume(resume, name)
        trial_config: dict[str, Any] = {}
        if trial is not None:  # its own run, in the search's group
            name, group, trial_config = trial_run(trial, name, group)
            resume = "never"
        self._group = group
        cli = building_cli()  # a LightningCLI YAML named this logger
        if cli is not None:
            save_dir = save_dir or cli_root(cli)
        self._save_dir = os.fspath(save_dir) if save_dir is not None else None
        self._project: str = project
        # Decided now, so that `version` (and the checkpoint folder) is known before the run starts.
        # Under SLURM, from the job: a requeued job (auto-requeue) logs into the run it started.
        slurm = slurm_run(project, name) if not run_id and resume != "never" else None
        self._name: str = slurm[0] if slurm else (name or new_run_name())
        if cli is not None and save_dir is not None:
            save_config_in_run_folder(cli, os.fspath(save_dir), project, self._name)
        self._run_id: str = run_id or (slurm[1] if slurm else uuid.uuid4().hex)
        # A named run may continue one that exists (resume): looked up once, when the run starts.
        self._resume: str | None = resume if name and not run_id and resume != "never" else None
        # A run continued by its id alone keeps its name: looked up once, when the run starts.
        self._name_by_id = bool(run_id and not name)
        self._prefix = prefix
        self._finish_timeout = finish_timeout
        self._options: dict[str, Any] = {
            "server_url": server_url,
            "space_id": space_id,
            "write_token": write_token,
            "hf_token": hf_token,
            "ca_bundle": ca_bundle,
            "client_cert": client_cert,
            "headers": headers,
            "spool_dir": spool_dir,
            "step_ids": step_ids,
        }
        self._config: dict[str, Any] = {**_trackio_config(config, trackio_options), **trial_config}
        if cli is not None and (whole := cli_config(cli)) is not None:
            self._config["cli"] = whole
        self._client: TrackioClient | None = None
        # After finalize(): the run's status and last step, for the client that reopens it.
        self._ended: tuple[str, int | None] | None = None
        self._watchers: dict[int, Watcher] = {}
        self._monitoring = Monitoring(
            system_metrics,
            system_interval,
            alert_webhook,
            alert_webhook_min_level,
            health,
            provenance,
            mode=mode,
        )

    # --- what Lightning reads --------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The Trackio project."""
        return self._project

    @property
    def version(self) -> str:
        """The Trackio run name (a run continued by ``run_id`` alone: its own, once started)."""
        return self._name

    @property
    def run_id(self) -> str:
        """The run's stable id: pass it as ``run_id=`` to continue this run after a restart.

        With ``resume`` and a ``name``, it is the resumed run's once the run started.
        """
        return self._run_id

    @property
    def save_dir(self) -> str | None:
        return self._save_dir

    @property
    def log_dir(self) -> str | None:
        return None

    @property
    @_rank_zero_experiment
    def experiment(self) -> TrackioClient:
        """The run's ``TrackioClient`` (created on first use), e.g. ``experiment.log({...})``."""
        if self._client is None:
            if self._resume is not None and self._monitoring.online:  # offline: no lookup
                found = run_to_resume(self._project, self._name, self._resume, **self._target())
                self._run_id = found or self._run_id
                self._resume = None
            if self._name_by_id and self._monitoring.online:
                self._name = run_name(self._project, self._run_id, **self._target()) or self._name
                self._name_by_id = False
            # Reopened after finalize() (a metric logged after fit, a later test()): the run
            # keeps the status it ended with, its config and its steps; a Lightning stage that
            # starts says "running" again (log_graph) and ends with its own status (finalize).
            ended = self._ended
            self._client = TrackioClient(
                self._project,
                self._name,
                run_id=self._run_id,
                config=self._config if ended else {**self._config, "status": "running"},
                config_saved=ended is not None,
                last_step=ended[1] if ended else None,
                group=self._group,
                **self._options,
                **self._monitoring.client_options(),
            )
            # Lightning reports a failure itself, through finalize("failed").
            self._monitoring.started(self._client, excepthook=False)
            if self._save_code:
                self._client.save_code()
        return self._client

    # --- what Lightning sends --------------------------------------------------------------------

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        for watcher in list(self._watchers.values()):  # a histogram due rides on this point
            metrics = {**metrics, **watcher.histograms(step)}
        if self._prefix:
            join = f"{self._prefix}{self.LOGGER_JOIN_CHAR}"
            metrics = {f"{join}{key}": value for key, value in metrics.items()}
        self.experiment.log(metrics, step=step)
        self._monitoring.observe(metrics, step)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Merge ``params`` (dict, Namespace, dataclass, OmegaConf, ...) into the run's config."""
        if isinstance(params, Namespace):
            params = vars(params)
        params = _plain(params)
        if isinstance(params, dict):  # also AttributeDict, what save_hyperparameters() makes
            params = {key: _plain(value) for key, value in params.items()}
        self.experiment.update_config(params)

    @rank_zero_only
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """No graphs here. Lightning calls this as each fit/validate/test starts: a run that an
        earlier stage ended is running again (until this stage's ``finalize``)."""
        if self._ended is not None:
            self.experiment.update_config({"status": "running"})

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        """Record where the checkpoints are and their scores (no upload) under ``checkpoints``."""
        record = checkpoint_record(checkpoint_callback)
        key = getattr(checkpoint_callback, "monitor", None) or "latest"
        checkpoints = {**self.experiment.config.get("checkpoints", {}), key: record}
        self.experiment.update_config({"checkpoints": checkpoints})
        if self._log_model == "all" or (
            self._log_model is True and getattr(checkpoint_callback, "save_top_k", None) == -1
        ):
            self._log_checkpoints(checkpoint_callback, every=True)
        elif self._log_model is True:
            self._checkpoint_callbacks[id(checkpoint_callback)] = checkpoint_callback

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Record ``status`` in the config and deliver what is pending (bounded wait).

        Lightning calls this at the end of every ``fit``/``validate``/``test``, with "failed" when
        one raises; a later call reopens the same run.
        """
        if status == "success" and self._client is not None:  # as WandbLogger: success only
            for callback in self._checkpoint_callbacks.values():
                self._log_checkpoints(callback, every=False)
        client, self._client = self._client, None
        if client is None:
            if status == "failed" and self.__dict__.get("_handed_off"):
                self._failed_in_spawned_process()
            return
        if status == "failed":  # called from Lightning's `except`: the exception is at hand
            exc_type, exc = sys.exc_info()[:2]
            status = ending_status(exc)  # a Ctrl-C: "interrupted"; Optuna's pruning: "pruned"
            if status != "pruned":  # a pruned trial is no failure: no alert
                self._monitoring.failed(exc_type, exc)
        self._monitoring.ended()
        client.update_config({"status": status})
        client.finish(self._finish_timeout)
        self._config = client.config
        self._ended = (status, client.last_step)

    def _target(self) -> dict[str, Any]:
        return {key: self._options[key] for key in TARGET_OPTIONS}

    # --- media, as WandbLogger takes them --------------------------------------------------------

    @rank_zero_only
    def log_image(self, key: str, images: Any, step: int | None = None, **kwargs: Any) -> None:
        """Images (tensors, arrays, PIL images, paths); kwargs are lists, one item per image
        (``caption=[...]``). Several images become ``key/0``, ``key/1``, ..."""
        self.log_metrics({key: each(Image, images, kwargs)}, step)

    @rank_zero_only
    def log_table(
        self,
        key: str,
        columns: list[str] | None = None,
        data: list[list[Any]] | None = None,
        dataframe: Any = None,
        step: int | None = None,
    ) -> None:
        """A table, from ``columns`` and ``data`` or from a pandas ``dataframe``."""
        self.log_metrics({key: Table(columns=columns, data=data, dataframe=dataframe)}, step)

    @rank_zero_only
    def log_text(
        self,
        key: str,
        columns: list[str] | None = None,
        data: list[list[str]] | None = None,
        dataframe: Any = None,
        step: int | None = None,
    ) -> None:
        """Text, as a table (as ``WandbLogger`` logs it)."""
        self.log_table(key, columns, data, dataframe, step)

    @rank_zero_only
    def log_audio(self, key: str, audios: Any, step: int | None = None, **kwargs: Any) -> None:
        """Sounds (arrays or paths); kwargs are lists (``sample_rate=[...]``, ``caption=[...]``)."""
        self.log_metrics({key: each(Audio, audios, kwargs)}, step)

    @rank_zero_only
    def log_video(self, key: str, videos: Any, step: int | None = None, **kwargs: Any) -> None:
        """Videos (TxCxHxW arrays or paths); kwargs are lists (``fps=[...]``, ``format=[...]``)."""
        self.log_metrics({key: each(Video, videos, kwargs)}, step)

    @rank_zero_only
    def watch(
        self, model: Any, log: str | None = "gradients", log_freq: int = 100, log_graph: bool = True
    ) -> None:
        """Histograms of ``model``'s gradients and/or parameters, every ``log_freq`` steps, logged
        with the metrics of that step. ``log_graph`` is accepted and ignored (no graphs here)."""
        self._watchers[id(model)] = Watcher(model, log, log_freq)

    @rank_zero_only
    def unwatch(self, model: Any = None) -> None:
        """Stop the histograms of ``model`` (of every watched model when None)."""
        if model is None:
            self._watchers.clear()
        else:
            self._watchers.pop(id(model), None)

    @rank_zero_only
    def alert(
        self, title: str, text: str | None = None, level: str = "warn", step: int | None = None
    ) -> None:
        """Raise an alert in the run (see ``TrackioClient.alert``); global rank zero only."""
        self.experiment.alert(title, text, level, step)

    def save(self) -> None:
        """Called on every rank as training starts and at each logging step: on another node's
        local rank 0, start sampling that node into the run (once)."""
        super().save()
        rank = getattr(rank_zero_only, "rank", 0)
        if rank:
            target = {k: self._options[k] for k in (*TARGET_OPTIONS, "spool_dir")}
            self._monitoring.follow(target, rank=rank)

    def _log_checkpoints(self, callback: Any, every: bool) -> None:
        """Each checkpoint file not logged since it was last written, oldest first."""
        for path, score, aliases in checkpoints_to_log(callback, every, self._logged_checkpoints):
            self.experiment.log_artifact(
                path,
                name=safe_name(f"model-{self._name}"),
                type="model",
                aliases=aliases,
                metadata=checkpoint_metadata(callback, path, score),
                file_name="model.ckpt",  # as WandbLogger: the same weights are the same version
            )

    def _failed_in_spawned_process(self) -> None:
        """ddp_spawn: fit() raised in the spawned process that wrote the run (which marked it
        failed as it exited); here, where the error arrived, the alert that names it."""
        options = {**self._options, **self._monitoring.client_options()}
        options.update(system_metrics=False, provenance=False)
        client = TrackioClient(
            self._project, self._name, run_id=self._run_id, check=False, **options
        )
        self._monitoring.failed_elsewhere(client, *sys.exc_info()[:2])
        client.finish(self._finish_timeout)

    def __getstate__(self) -> dict[str, Any]:
        # ddp_spawn pickles the Trainer's loggers: a live client (threads, files) stays behind.
        self._handed_off = True  # the run may now be written in another process
        state = self.__dict__.copy()
        state["_client"] = None
        state["_watchers"] = {}
        state["_handed_off"] = False
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        # A spawned process (ddp_spawn) whose fit() raised exits without finalize("failed"):
        # Lightning reports the error in the main process only. Its exit ends the run as failed.
        atexit.register(_failed_at_exit, weakref.ref(self))


def _failed_at_exit(ref: weakref.ReferenceType[TrackioLogger]) -> None:
    """A spawned process exits with its run still open: fit() did not end (it raised)."""
    logger = ref()
    client = logger._client if logger is not None else None
    if logger is None or client is None:
        return
    logger._client = None
    logger._monitoring.ended()
    client.update_config({"status": "failed"})
    client.finish(logger._finish_timeout)


def _trackio_config(config: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The config that ``trackio.init``'s ``config`` gives a run; warn about the other options."""
    given = json_safe(config or {})  # a dict, dataclass, Namespace, ...
    config = dict(given) if isinstance(given, dict) else {"config": given}
    if options:
        warn_user(
            f"TrackioLogger ignores the trackio.init options {sorted(options)}: this logger sends "
            "scalar metrics and config only (no Space creation, system metrics or webhooks)."
        )
    return config


def _plain(value: Any) -> Any:
    """A hyperparameter as the config should show it.

    ``activation=nn.ReLU`` becomes ``torch.nn.modules.activation.ReLU`` rather than a repr.
    """
    if inspect.isclass(value) or inspect.isfunction(value) or inspect.isbuiltin(value):
        module = getattr(value, "__module__", None)
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", repr(value))
        return f"{module}.{name}" if module and module != "builtins" else name
    return value  # the client's json_safe does the rest (OmegaConf, dataclasses, tensors, ...)
