"""What each integration adds to its run besides points: system metrics, alerts, health checks.

One ``Monitoring`` per adapter keeps its settings and the live parts (the ``Health`` checks of the
run, the ``NodeFollower`` of another node), so that the three adapters only say *when*: a run
started, a point was logged, a step ended, the run ended.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from trackio_integrations.client import TrackioClient
from trackio_integrations.core.metadata import is_pruned
from trackio_integrations.core.mode import ONLINE, resolve_mode
from trackio_integrations.monitoring.health import Health, HealthChecks
from trackio_integrations.monitoring.nodes import NodeFollower, announce
from trackio_integrations.monitoring.system import DEFAULT_INTERVAL


class Monitoring:
    """The settings every integration takes (see ``TrackioClient`` and ``HealthChecks``)."""

    def __init__(
        self,
        system_metrics: bool = True,
        system_interval: float = DEFAULT_INTERVAL,
        alert_webhook: str | None = None,
        alert_webhook_min_level: str | None = None,
        health: HealthChecks | bool | Mapping[str, Any] | None = True,
        provenance: bool | None = None,
        mode: str | None = None,
    ) -> None:
        resolve_mode(mode)  # a mode that is not one fails here, when the adapter is made
        self.mode = mode  # None: TRACKIO_MODE where the run starts (e.g. the compute node)
        self.system_metrics = system_metrics
        self.system_interval = system_interval
        self.alert_webhook = alert_webhook
        self.alert_webhook_min_level = alert_webhook_min_level
        self.health = HealthChecks.of(health)
        self.provenance = provenance
        self.checks: Health | None = None
        self.node: NodeFollower | None = None
        self._announced = False
        self._following = False

    def client_options(self) -> dict[str, Any]:
        """The ``TrackioClient`` keyword arguments these settings stand for."""
        return {
            "system_metrics": self.system_metrics,
            "system_interval": self.system_interval,
            "alert_webhook": self.alert_webhook,
            "alert_webhook_min_level": self.alert_webhook_min_level,
            "provenance": self.provenance,
            "mode": self.mode,
        }

    @property
    def online(self) -> bool:
        """Whether runs talk to the target now (a resume may look runs up: not offline)."""
        return resolve_mode(self.mode) == ONLINE

    def settings(self) -> dict[str, Any]:
        """The settings without the webhook URL (a secret), e.g. for a checkpoint."""
        return {
            "system_metrics": self.system_metrics,
            "system_interval": self.system_interval,
            "alert_webhook_min_level": self.alert_webhook_min_level,
            "health": self.health.as_dict() if self.health is not None else False,
            "provenance": self.provenance,
            "mode": self.mode,
        }

    # --- global rank zero ----------------------------------------------------------------------

    def started(self, client: Any, excepthook: bool = True) -> None:
        """The run ``client`` started: tell the other nodes, start the health checks."""
        self.ended()
        announce(client)
        self._announced = True
        if self.health is not None:
            self.checks = Health(client, self.health, excepthook=excepthook)

    def observe(self, metrics: Mapping[str, Any], step: int | None) -> None:
        if self.checks is not None:
            self.checks.observe(metrics, step)

    def beat(self, step: int | None = None) -> None:
        if self.checks is not None:
            self.checks.beat(step)

    def failed(self, exc_type: type[BaseException] | None, exc: BaseException | None) -> None:
        if self.checks is not None:
            self.checks.failed(exc_type, exc)

    def failed_elsewhere(
        self, client: Any, exc_type: type[BaseException] | None, exc: BaseException | None
    ) -> None:
        """The run's training failed in another process (ddp_spawn): its failure alert, from
        here, where the error arrived (the last line of a spawned process's traceback)."""
        if self.health is None:
            return
        if exc is not None and "Traceback" in str(exc):  # torch's ProcessRaisedException
            name, _, message = str(exc).strip().splitlines()[-1].partition(": ")
            exc_type = type(name.rsplit(".", 1)[-1] or "Exception", (Exception,), {})
            exc = exc_type(message)
        Health(client, replace(self.health, stall_after=None), excepthook=False).failed(
            exc_type, exc
        )

    def ended(self) -> None:
        """The run ended (or is about to be replaced): stop its checks, release the other nodes."""
        if self.checks is not None:
            self.checks.close()
            self.checks = None
        if self._announced:
            self._announced = False
            announce(None)

    # --- the other nodes -------------------------------------------------------------------------

    def follow(
        self, target: Mapping[str, Any], rank: int | None = None, local_rank: int | None = None
    ) -> None:
        """On another node's local rank 0: sample this node into the run rank 0 announces.

        ``target``: the ``TrackioClient`` keyword arguments naming the target (URL, tokens...).
        """
        if self.system_metrics and not self._following:
            self._following = True  # asked once per run: the answer does not change
            options = dict(target)

            def open_client(run: Mapping[str, Any]) -> TrackioClient:
                return TrackioClient(
                    run["project"],
                    run["name"],
                    run_id=run["run_id"],
                    check=False,  # rank 0 checked the target; a node only adds samples
                    system_metrics=False,  # the node's sampler names this node
                    provenance=False,  # rank 0 records it for the run
                    mode=self.mode,
                    **options,
                )

            self.node = NodeFollower.start_if_needed(
                open_client, self.system_interval, rank=rank, local_rank=local_rank
            )

    def unfollow(self, timeout: float) -> None:
        self._following = False
        node, self.node = self.node, None
        if node is not None:
            node.stop(timeout)

    def __getstate__(self) -> dict[str, Any]:
        # A pickled copy (Lightning's ddp_spawn) keeps the settings, not the live parts.
        state = self.__dict__.copy()
        state.update(checks=None, node=None, _announced=False, _following=False)
        return state


def ending_status(exc: BaseException | None) -> str:
    """The status of a run whose training call raised ``exc``: pruned (Optuna's
    ``TrialPruned``, a search stopping a trial), interrupted (Ctrl-C) or failed."""
    if is_pruned(exc):
        return "pruned"
    return "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"


_SLURM_RUNS: dict[tuple[str, str], int] = {}  # runs this process started, per (project, name)
_SLURM_LOCK = threading.Lock()


def slurm_run(
    project: str, name: str | None, env: Mapping[str, str] | None = None
) -> tuple[str, str] | None:
    """(name, run id) of a run under a SLURM job, the same when the job is requeued; else None.

    A requeued job (Lightning's SLURM auto-requeue, ``scontrol requeue``) keeps its job id and
    runs the script again from the top, so the n-th run this process starts is the n-th run the
    first attempt started: the id is made from the cluster, the job (an array job's task), the
    project, the name (default ``<job name>-<job id>``) and n. Not for the plain client, which
    knows nothing of jobs: pass it ``run_id=`` (see docs/cluster.md).
    """
    env = os.environ if env is None else env
    job = env.get("SLURM_JOB_ID")
    if not job:
        return None
    array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    job = f"{array}_{task}" if array and task else job
    name = name or f"{env.get('SLURM_JOB_NAME') or 'slurm'}-{job}"
    with _SLURM_LOCK:
        n = _SLURM_RUNS.get((project, name), 0)
        _SLURM_RUNS[(project, name)] = n + 1
    key = "\0".join(("slurm", env.get("SLURM_CLUSTER_NAME", ""), job, project, name, str(n)))
    return (name if n == 0 else f"{name}-{n}"), hashlib.sha256(key.encode()).hexdigest()[:32]
