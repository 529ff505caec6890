"""Every node of a multi-node job in one run: each node's local rank 0 samples its own machine.

Global rank 0 creates the run and samples node 0 under trackio's own names (``gpu/0/...``), so a
one-node job, a many-node job and trackio's own runs share names and charts. It also **announces**
the run (project, name, id) in the key-value store that ``torch.distributed`` already shares
between all processes of the job (the rendezvous ``TCPStore``). On every other node, the local
rank 0 runs a ``NodeFollower``: a background thread that waits for the process group and the
announcement, then opens a client on the same run that only sends system samples, named
``node<k>/...`` (``node1/gpu/3/utilization``). It creates no run of its own and logs no points.

The store works wherever ``torch.distributed`` does (torchrun, accelerate launch, Lightning, SLURM,
static or elastic rendezvous), and needs no shared disk and no job id. The follower only polls it
(``check``, then ``get``), so it never holds the store's connection while the training thread may
need it, and a job that never announces costs one short request every few seconds.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from trackio_integrations.core.worker import Worker
from trackio_integrations.monitoring.system import DEFAULT_INTERVAL, SystemSampler

logger = logging.getLogger("trackio_integrations")

KEY = "trackio_integrations/run"
POLL = 1.0  # seconds between looks at the store


def _store() -> Any:
    """The job's shared store, or None outside an initialised ``torch.distributed`` job."""
    torch = sys.modules.get("torch")  # never import torch for this: a job using it has it
    if torch is None:
        return None
    try:
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return None
        return dist.distributed_c10d._get_default_store()
    except Exception:
        return None


def announce(run: Any | None) -> None:
    """Global rank 0: name ``run`` (a ``TrackioClient``) to the other nodes; None: it ended."""
    store = _store()
    if store is None:
        return
    value = (
        orjson.dumps({"project": run.project, "name": run.name, "run_id": run.run_id})
        if run is not None
        else b""
    )
    try:
        store.set(KEY, value)
    except Exception:
        logger.debug("trackio-integrations: could not announce the run", exc_info=True)


def launched_rank(env: Mapping[str, str] | None = None) -> int | None:
    """This process's world rank as the launcher (torchrun, accelerate launch) set it in
    ``RANK`` / ``WORLD_SIZE``, or None outside a job of two processes or more.

    A framework may take each process of a job for a main process (accelerate on a CPU machine
    without ``cpu=True``); the launcher knows better.
    """
    env = os.environ if env is None else env
    world = _number(env, "WORLD_SIZE")
    return _number(env, "RANK") if world is not None and world > 1 else None


def _number(env: Mapping[str, str], *names: str) -> int | None:
    for name in names:
        try:
            return int(env[name])
        except (KeyError, ValueError):
            continue
    return None


def role(
    env: Mapping[str, str] | None = None, rank: int | None = None, local_rank: int | None = None
) -> int | None:
    """The node index this process samples for others, or None (rank 0, local rank > 0, or not
    a multi-process job). ``rank`` and ``local_rank`` win over the launcher's variables."""
    env = os.environ if env is None else env

    def number(*names: str) -> int | None:
        return _number(env, *names)

    rank = rank if rank is not None else number("RANK", "SLURM_PROCID")
    if local_rank is None:
        # Lightning's own launcher sets LOCAL_RANK in the processes it starts, not in its own.
        local_rank = number("LOCAL_RANK", "SLURM_LOCALID") or 0
    if not rank or local_rank != 0:  # rank 0 (or not launched) samples its node itself
        return None
    node = number("GROUP_RANK", "NODE_RANK", "SLURM_NODEID")
    per_node = number("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE")
    if node is None and per_node:
        node = rank // per_node
    return node if node else None


class NodeFollower:
    """Samples this node into the run global rank 0 announces, for as long as it is announced.

    Args:
        node: this node's index (``role()``), used in the ``node<k>/`` prefix.
        open_client: opens a client on the announced run (``{"project", "name", "run_id"}``) that
            sends system samples only: the integrations pass one that builds a ``TrackioClient``
            for their target, so this module never imports the client.
        interval: seconds between samples.
    """

    def __init__(
        self,
        node: int,
        open_client: Callable[[Mapping[str, Any]], Any],
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.node = node
        self.open_client = open_client
        self.interval = interval
        self.client: Any = None
        self.sampler: SystemSampler | None = None
        self._announced = b""
        self._worker = Worker(f"trackio-integrations-node{node}", self._cycle, retry=POLL)

    @classmethod
    def start_if_needed(
        cls,
        open_client: Callable[[Mapping[str, Any]], Any],
        interval: float = DEFAULT_INTERVAL,
        rank: int | None = None,
        local_rank: int | None = None,
    ) -> NodeFollower | None:
        """A started follower when this process is a local rank 0 away from rank 0, else None."""
        node = role(rank=rank, local_rank=local_rank)
        if node is None:
            return None
        follower = cls(node, open_client, interval)
        follower._worker.ensure_started()
        return follower

    def stop(self, timeout: float = 5.0) -> None:
        """Take a last sample, deliver what is pending (within ``timeout``), end the thread."""
        self._worker.stop(min(timeout, 2.0))
        self._leave(timeout)

    def _cycle(self, final: bool) -> float:
        if final:
            return 0.0
        store = _store()
        if store is None:
            return POLL
        announced = store.get(KEY) if store.check([KEY]) else b""
        if announced != self._announced:
            self._leave(5.0)
            self._announced = announced
            if announced:
                self._join(orjson.loads(announced))
        return POLL

    def _join(self, run: dict[str, Any]) -> None:
        self.client = self.open_client(run)
        self.sampler = SystemSampler(
            self.client.log_system, self.interval, prefix=f"node{self.node}/"
        ).start()

    def _leave(self, timeout: float) -> None:
        sampler, self.sampler = self.sampler, None
        client, self.client = self.client, None
        if sampler is not None:
            sampler.stop(1.0)
        if client is not None:
            client.finish(timeout=timeout)
