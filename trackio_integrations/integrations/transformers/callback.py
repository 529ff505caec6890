"""``TrackioCallback``: the Hugging Face ``Trainer``'s metrics on top of ``TrackioClient``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import CallbackHandler, ExportableState

from trackio_integrations.artifacts.model import safe_name
from trackio_integrations.client import DEFAULT_FINISH_TIMEOUT, TrackioClient
from trackio_integrations.core.metadata import trial_run
from trackio_integrations.core.target import resolve_target, split_basic_auth, split_write_token
from trackio_integrations.errors import warn_user
from trackio_integrations.integrations.common import Monitoring, ending_status, slurm_run
from trackio_integrations.integrations.transformers.args import SUMMARY_KEYS as SUMMARY_KEYS
from trackio_integrations.integrations.transformers.args import (
    checkpoint_metadata,
    final_checkpoint,
    is_summary,
    kept_secrets,
    log_checkpoints_setting,
    metric_names,
    resolve_settings,
    run_config,
    saved_run,
)
from trackio_integrations.integrations.transformers.ending import report_train_failures
from trackio_integrations.integrations.transformers.handler import (
    calling_handler,
    calling_trainer,
    is_builtin_trackio,
    pruning_now,
    retire,
)
from trackio_integrations.integrations.watch import Watcher, watch_mode
from trackio_integrations.monitoring.health import HealthChecks
from trackio_integrations.monitoring.system import DEFAULT_INTERVAL

__all__ = ["ReportToTrackioCallback", "TrackioCallback"]


class TrackioCallback(TrainerCallback, ExportableState):
    """Send ``Trainer`` metrics to a Trackio server, a Space, or local storage.

    Examples:
        >>> from transformers import Trainer, TrainingArguments  # doctest: +SKIP
        >>> from trackio_integrations import TrackioCallback
        >>> trainer = Trainer(
        ...     model=model,
        ...     args=TrainingArguments("out", project="my-project", eval_strategy="epoch"),
        ...     train_dataset=train, eval_dataset=val,
        ...     callbacks=[TrackioCallback(server_url="http://127.0.0.1:7860")],
        ... )
        >>> trainer.train()  # train/loss, eval/loss, ... at step = global_step

    Each setting not given here is read from ``TrainingArguments`` where the installed
    transformers has the field (``project``, ``run_name``, ``trackio_space_id``), then from the
    environment (``TRACKIO_PROJECT``, ``TRACKIO_SPACE_ID``, ``TRACKIO_SERVER_URL``,
    ``TRACKIO_WRITE_TOKEN``), with the client's rule that a Space wins over a server URL.
    ``TrainingArguments.project``'s default (``"huggingface"``) counts only when nothing else
    names a project.

    Only the world process zero creates a run and sends. The run's name and id are saved in every
    checkpoint, so ``trainer.train(resume_from_checkpoint=...)`` continues the same run, and steps
    logged again after the resume are stored once. The end-of-training aggregates
    (``train_runtime``, ``train_loss``, ...) go to the run's config under ``"summary"``.
    ``evaluate()`` / ``predict()`` outside ``train()`` log to the same run. If ``report_to`` also
    names trackio, transformers' own TrackioCallback is switched off (with a warning), and so is
    the ``ReportToTrackioCallback`` that ``report_to`` adds after ``install()``, so that each
    point is logged once.

    ``trainer.hyperparameter_search(backend="optuna")`` gives each trial its own run,
    ``<run name>-trial-<number>`` (``hp_name(trial)`` if given; a search with no run name is
    named after its study), all in one group (``group``, else ``TRACKIO_GROUP``, else the run
    name), with the trial's number and parameters in the config and the evaluation the search
    runs after ``train()`` in the trial's run. The config's ``status`` is ``running``, then
    ``success`` at the end of ``train()``, or ``pruned`` for a trial Optuna stopped.

    Setup errors (no project, a malformed URL or Space id) raise at ``Trainer(...)``; a rejected
    token raises when ``train()`` starts, before the first step. A server that does not answer is
    not an error: points wait in the spool and are sent when it does.

    Args:
        project: Trackio project.
        name: run name (else ``TrainingArguments.run_name``, else a generated one).
        server_url: a self-hosted server, may carry ``?write_token=`` (``TRACKIO_SERVER_URL``).
        space_id: a Hugging Face Space ``owner/name`` (``TRACKIO_SPACE_ID``); wins over a URL.
        write_token: the server's write token (else from the URL, else ``TRACKIO_WRITE_TOKEN``).
        hf_token: Hugging Face token, sent to Hugging Face hosts only (else ``HF_TOKEN``).
        ca_bundle: a PEM file or folder of CAs to trust (else ``TRACKIO_CA_BUNDLE``, then the
            machine's trust store); see the gateway page of the docs.
        client_cert: a client certificate for mTLS: a path, or (certificate, key) (else
            ``TRACKIO_CLIENT_CERT`` / ``TRACKIO_CLIENT_KEY``).
        headers: headers for that server only, e.g. a gateway's access token (else
            ``TRACKIO_HEADERS``, a JSON object). Like the tokens, never saved in checkpoints.
        spool_dir: where unsent points wait (``TRACKIO_SPOOL_DIR``, else the user cache).
        finish_timeout: how long the end of training waits for points still in flight; what is
            left stays in the spool and is sent by the next run or ``trackio-integrations sync``.
        watch: ``"gradients"``, ``"parameters"`` or ``"all"``: histograms of the model's
            gradients and/or weights (``gradients/<name>``, ``parameters/<name>``) every
            ``watch_every`` optimizer steps, taken before the gradients are zeroed. Defaults to
            ``TRACKIO_WATCH``; None (or ``"false"``) is off.
        watch_every: steps between two histograms of each tensor.
        system_metrics: sample the machine in the background (as for ``TrackioClient``); in a
            multi-node job each node's local process zero samples its node into the same run
            (``node<k>/...``).
        system_interval: seconds between two samples.
        alert_webhook: a Slack, Discord or plain URL each alert is also posted to
            (``TRACKIO_WEBHOOK_URL``).
        alert_webhook_min_level: the lowest level posted there (``TRACKIO_WEBHOOK_MIN_LEVEL``).
        provenance: record git commit, diff, packages, command (see ``TrackioClient``).
        health: the training-health alerts (``HealthChecks``, ``False`` for none): a NaN or
            infinite ``loss`` / ``grad_norm``, a loss spike, a stall (no step ended within
            ``stall_after``), an exception out of ``trainer.train()`` (via ``sys.excepthook``).
        log_checkpoints: ``"all"``: each ``checkpoint-N`` folder the Trainer saves becomes a
            version of the artifact ``model-<run>`` (alias ``step-N``); ``"end"``: the final one
            (the best when ``load_best_model_at_end``), alias ``final``; ``None``: none. Default:
            ``TRACKIO_LOG_MODEL`` (``all``/``checkpoint``, ``end``/``true``). Uploaded in the
            background, never holding up a step.
        save_code: save the training script and the config files on its command line to the
            project's Files, once per run.
        mode: ``"online"``, ``"offline"`` or ``"disabled"`` (see ``TrackioClient``).
        group: the run's group (else ``TRACKIO_GROUP``), shown together in the dashboard's
            Group-by view; kept as trackio keeps it (config ``_Group``).

    Attributes:
        client: the run's ``TrackioClient`` while training (world process zero), else None.
        run_name, run_id: the run, once one started on this process.
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
        spool_dir: str | os.PathLike[str] | None = None,
        finish_timeout: float = DEFAULT_FINISH_TIMEOUT,
        _restored: bool = False,
        watch: str | None = None,
        watch_every: int = 100,
        system_metrics: bool = True,
        system_interval: float = DEFAULT_INTERVAL,
        alert_webhook: str | None = None,
        alert_webhook_min_level: str | None = None,
        health: HealthChecks | bool | Mapping[str, Any] = True,
        provenance: bool | None = None,
        log_checkpoints: str | None = None,
        save_code: bool = False,
        ca_bundle: str | os.PathLike[str] | None = None,
        client_cert: str | os.PathLike[str] | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        mode: str | None = None,
        group: str | None = None,
    ) -> None:
        login_url = None
        if server_url:
            resolve_target(server_url=server_url, env={})  # a malformed URL fails here, now
            server_url, url_token = split_write_token(server_url)
            write_token = write_token or url_token
            public_url, login = split_basic_auth(server_url)
            login_url, server_url = (server_url if login else None), public_url
        self.project = project
        self.name = name
        self.server_url = server_url  # never with a password: state() saves it in checkpoints
        self.space_id = space_id
        self.spool_dir = os.fspath(spool_dir) if spool_dir is not None else None
        self.finish_timeout = finish_timeout
        self.group = group
        key = (project, name, server_url, space_id)
        secrets = kept_secrets(
            key,
            _restored,
            {
                "write_token": write_token,
                "hf_token": hf_token,
                "alert_webhook": alert_webhook,
                "login_url": login_url,
                "ca_bundle": os.fspath(ca_bundle)
                if isinstance(ca_bundle, os.PathLike)
                else ca_bundle,
                "client_cert": client_cert,
                "headers": dict(headers) if headers else None,
            },
        )
        self._write_token, self._hf_token = secrets.get("write_token"), secrets.get("hf_token")
        alert_webhook = secrets.get("alert_webhook")
        # How this process reaches the server: the URL with its password, the gateway's settings.
        self._reach: dict[str, Any] = {
            "server_url": secrets.get("login_url") or server_url,
            "write_token": self._write_token,
            "hf_token": self._hf_token,
            "ca_bundle": secrets.get("ca_bundle"),
            "client_cert": secrets.get("client_cert"),
            "headers": secrets.get("headers"),
        }
        self.client: TrackioClient | None = None
        self._run: dict[str, str] | None = None  # project, name, run_id: saved in checkpoints
        self._run_trained = False  # a run opened by evaluate() before train() continues in it
        self._last_log: tuple[int, frozenset[str]] | None = None
        self._clash_warned = False
        self.watch = watch_mode(watch if watch is not None else os.environ.get("TRACKIO_WATCH"))
        self.watch_every = watch_every
        self._watcher: Watcher | None = None
        self.monitoring = Monitoring(
            system_metrics,
            system_interval,
            alert_webhook,
            alert_webhook_min_level,
            health,
            provenance,
            mode=mode,
        )
        self.log_checkpoints = log_checkpoints_setting(log_checkpoints)
        self.save_code = save_code
        self._last_checkpoint: str | None = None
        self._code_saved_for: str | None = None
        report_train_failures()  # the Trainer has no event for a train() that raised

    @property
    def run_name(self) -> str | None:
        """The run's name once training started on this process (None on other ranks)."""
        return self._run["name"] if self._run else None

    @property
    def run_id(self) -> str | None:
        return self._run["run_id"] if self._run else None

    # --- Trainer events ------------------------------------------------------------------------

    def on_init_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self._retire_duplicates(args):
            return  # another TrackioCallback of this Trainer logs
        self._settings(args)  # a setup error stops the Trainer here, on every rank, offline

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        if self._retire_duplicates(args):
            return
        project, name, space_id = self._settings(args)
        if not state.is_world_process_zero:
            if state.is_local_process_zero:  # another node: sample it into rank 0's run
                target = {**self._reach, "space_id": space_id}
                self.monitoring.follow(
                    {**target, "spool_dir": self.spool_dir},
                    rank=args.process_index,
                    local_rank=args.local_process_index,
                )
            return
        run_id = None
        group, config = self.group, run_config(args, state, model)
        trial = getattr(calling_trainer(), "_trial", None) if state.is_hyper_param_search else None
        saved = saved_run(state, type(self).__name__) if state.global_step > 0 else None
        if saved is not None and saved.get("project") == project:
            name, run_id = saved.get("name") or name, saved.get("run_id")
        elif trial is not None:  # a search's trial: a run of its own, in the search's group
            name, group, trial_config = trial_run(trial, name, group)
            name = state.trial_name or name  # hp_name= chose the trial's name
            config.update(trial_config)
        elif (
            state.global_step == 0
            and (opened := self._run) is not None
            and not self._run_trained
            and opened["project"] == project
        ):
            name, run_id = opened["name"], opened["run_id"]  # a run an evaluate() opened
        elif (slurm := slurm_run(project, name)) is not None:
            name, run_id = slurm  # a requeued SLURM job before its first checkpoint: same run
        self._close()
        self.client = TrackioClient(
            project,
            name,
            space_id=space_id,
            **self._reach,
            config={**config, "status": "running"},
            group=group,
            run_id=run_id,
            spool_dir=self.spool_dir,
            step_ids=True,  # a step logged again after a resume is stored once
            **self.monitoring.client_options(),
        )
        self._run = {"project": project, "name": self.client.name, "run_id": self.client.run_id}
        self._run_trained = True
        if self.watch and model is not None:
            self._watcher = Watcher(model, self.watch, self.watch_every, state.global_step)
        self.monitoring.started(self.client)
        if self.save_code and self._code_saved_for != self.client.run_id:
            self._code_saved_for = self.client.run_id
            self.client.save_code()

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        client = self._client(args, state, model)
        if is_summary(logs):
            client.update_config({"summary": dict(logs)})
            return
        named = metric_names(logs)
        client.log(named, step=state.global_step)
        self._last_log = (state.global_step, frozenset(logs))
        self.monitoring.observe(named, state.global_step)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, Any] | None = None,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        # ``Trainer.evaluate`` passes the same metrics to ``on_log`` just before; log them here
        # only when that did not happen (a Trainer subclass that does not call ``log``).
        if not state.is_world_process_zero or not metrics:
            return
        last = self._last_log
        if last is not None and last[0] == state.global_step and metrics.keys() <= last[1]:
            return
        self._client(args, state, model).log(metric_names(metrics), step=state.global_step)

    def on_predict(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, Any] | None = None,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        if state.is_world_process_zero and metrics:
            self._client(args, state, model).log(metric_names(metrics), step=state.global_step)

    def on_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        # After the step, before the gradients are zeroed: the step about to be counted.
        watcher, client = self._watcher, self.client
        if watcher is not None and client is not None:
            histograms = watcher.histograms(state.global_step + 1)
            if histograms:
                client.log(histograms, step=state.global_step + 1)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.monitoring.beat(state.global_step)  # a step ended: not stalled, between logs too

    def on_prediction_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.monitoring.beat()

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or self.client is None:
            return
        self._last_checkpoint = os.path.join(
            args.output_dir or "", f"checkpoint-{state.global_step}"
        )
        if self.log_checkpoints == "all":
            self._log_model(self._last_checkpoint, state, f"step-{state.global_step}")

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.log_checkpoints == "end" and state.is_world_process_zero and self.client:
            final = final_checkpoint(args, state, self._last_checkpoint)
            if final is not None:
                self._log_model(final, state, "final")
            else:
                warn_user(
                    "log_checkpoints='end' found no checkpoint to log: set save_strategy so "
                    "that the Trainer saves one (it saves the last step when it saves at all)."
                )
        if self.client is not None:  # the Trainer calls this just before it raises TrialPruned
            self.client.update_config({"status": "pruned" if pruning_now() else "success"})
        self._close()
        self.monitoring.unfollow(self.finish_timeout)

    def train_raised(self, exc: BaseException) -> None:
        """``train()`` raised (an error, a Ctrl-C): the run ends as failed or interrupted, with one
        alert; its threads stop and nothing more is sent to it. A ``sys.exit`` is no failure: the
        exit hook finishes the run."""
        if isinstance(exc, SystemExit):
            return
        if self.client is not None:
            status = ending_status(exc)
            if status != "pruned":  # a search's pruned trial is no failure (on_train_end ended it)
                self.monitoring.failed(type(exc), exc)
            self.client.update_config({"status": status})
        self._close()
        self.monitoring.unfollow(self.finish_timeout)

    def alert(
        self, title: str, text: str | None = None, level: str = "warn", step: int | None = None
    ) -> None:
        """Raise an alert in the run (see ``TrackioClient.alert``); world process zero only."""
        if self.client is not None:
            self.client.alert(title, text, level, step)

    # --- checkpoint state (``ExportableState``) ------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What ``Trainer`` saves in each checkpoint: the settings given here and the run's id.

        Never a token: ``trainer_state.json`` is often shared or pushed to the Hub.
        """
        return {
            "args": {
                "project": self.project,
                "name": self.name,
                "server_url": self.server_url,
                "space_id": self.space_id,
                "spool_dir": self.spool_dir,
                "finish_timeout": self.finish_timeout,
                "group": self.group,
                "_restored": True,
                "watch": self.watch,
                "watch_every": self.watch_every,
                **self.monitoring.settings(),
                "log_checkpoints": self.log_checkpoints,
                "save_code": self.save_code,
            },
            "attributes": {"_run": self._run},
        }

    # --- internals -----------------------------------------------------------------------------

    def _settings(self, args: TrainingArguments) -> tuple[str, str | None, str | None]:
        """(project, run name, space id): see ``args.resolve_settings``."""
        return resolve_settings(args, self.project, self.name, self.space_id, self.server_url)

    def _client(self, args: TrainingArguments, state: TrainerState, model: Any) -> TrackioClient:
        """The training run's client. Outside ``train()`` (evaluate, predict), reopen the last
        run for a moment's logging, or start one that the next ``train()`` continues."""
        if self.client is not None:
            return self.client
        project, name, space_id = self._settings(args)
        run = self._run if self._run and self._run.get("project") == project else None
        self.client = TrackioClient(
            project,
            run["name"] if run else name,
            space_id=space_id,
            **self._reach,
            # An existing run keeps the config it has; a new one (evaluate first) gets one.
            config=None if run else run_config(args, state, model),
            group=None if run else self.group,
            run_id=run["run_id"] if run else None,
            spool_dir=self.spool_dir,
            check=run is None,
            **self.monitoring.client_options(),
        )
        if run is None:
            self._run = {"project": project, "name": self.client.name, "run_id": self.client.run_id}
            self._run_trained = False
        return self.client

    def _log_model(self, folder: str, state: TrainerState, alias: str) -> None:
        assert self.client is not None
        self.client.log_artifact(
            folder,
            name=safe_name(f"model-{self.client.name}"),
            type="model",
            aliases=[alias],
            metadata=checkpoint_metadata(state, folder),
        )

    def _close(self) -> None:
        self._watcher = None
        self.monitoring.ended()
        if self.client is not None:
            self.client.finish(timeout=self.finish_timeout)
            self.client = None

    def _retire_duplicates(self, args: TrainingArguments) -> bool:
        """Leave one callback that logs to Trackio in this Trainer; True if that is not this one.

        With ``report_to`` naming trackio, transformers' own TrackioCallback would log every point
        a second time (to local trackio storage or a Space), and the one ``report_to`` adds after
        ``install()`` would open a second run: a TrackioCallback given in ``callbacks`` wins."""
        handler = calling_handler()
        if handler is None:
            return False
        ours = [cb for cb in handler.callbacks if isinstance(cb, TrackioCallback)]
        given = [cb for cb in ours if not isinstance(cb, ReportToTrackioCallback)]
        added = [cb for cb in ours if isinstance(cb, ReportToTrackioCallback)]
        spare = added if given else added[1:]
        builtins = []
        if "trackio" in (getattr(args, "report_to", None) or ()):
            builtins = [cb for cb in handler.callbacks if is_builtin_trackio(cb)]
        if spare:
            retire(handler, spare)
        if builtins:
            self._retire_builtin(handler, builtins)
        return self in spare

    def _retire_builtin(self, handler: CallbackHandler, builtins: list[Any]) -> None:
        if not self._clash_warned:
            self._clash_warned = True
            warn_user(
                "report_to includes 'trackio': transformers' built-in TrackioCallback would log "
                "every point a second time. It is switched off for this Trainer and "
                "trackio_integrations.TrackioCallback logs them. Remove 'trackio' from report_to "
                "(e.g. report_to='none') to silence this warning."
            )
        retire(handler, builtins)


class ReportToTrackioCallback(TrackioCallback):
    """The callback ``report_to="trackio-integrations"`` adds (and ``report_to="trackio"`` after
    ``trackio_integrations.install()``): a ``TrackioCallback()`` configured from
    ``TrainingArguments`` and the environment, which steps aside for a ``TrackioCallback`` given
    in ``callbacks``."""
