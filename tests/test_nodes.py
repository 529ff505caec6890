"""A multi-node job shows every node's machine in one run: each node's local rank 0 samples it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.harness import BIN, REPO, TrackioServer, free_port
from trackio_integrations.monitoring.nodes import role

SCRIPT = REPO / "tests" / "scripts" / "transformers_train.py"


@pytest.mark.parametrize(
    ("env", "explicit", "node"),
    [
        # torchrun, 2 nodes x 2 processes: only node 1's local rank 0 samples for rank 0
        ({"RANK": "2", "LOCAL_RANK": "0", "GROUP_RANK": "1", "LOCAL_WORLD_SIZE": "2"}, {}, 1),
        ({"RANK": "3", "LOCAL_RANK": "1", "GROUP_RANK": "1", "LOCAL_WORLD_SIZE": "2"}, {}, None),
        ({"RANK": "0", "LOCAL_RANK": "0", "GROUP_RANK": "0", "LOCAL_WORLD_SIZE": "2"}, {}, None),
        ({"RANK": "1", "LOCAL_RANK": "1", "GROUP_RANK": "0", "LOCAL_WORLD_SIZE": "2"}, {}, None),
        ({"RANK": "4", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "4"}, {}, 1),  # no GROUP_RANK
        ({"SLURM_PROCID": "16", "SLURM_LOCALID": "0", "SLURM_NODEID": "2"}, {}, 2),  # srun
        ({"NODE_RANK": "1"}, {"rank": 4}, 1),  # Lightning's launcher, in the process it runs
        ({"RANK": "4", "LOCAL_RANK": "0"}, {"rank": 4, "local_rank": 1}, None),  # told better
        ({}, {}, None),  # not a distributed job
    ],
)
def test_each_process_knows_whether_it_samples_a_node_for_rank_0(
    env: dict[str, str], explicit: dict[str, int], node: int | None
) -> None:
    assert role(env, **explicit) == node


def test_two_torchrun_nodes_show_both_machines_in_one_run(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    env = shared_server.job_env(project, OMP_NUM_THREADS="1")
    port = free_port()
    nodes = [
        subprocess.Popen(
            [
                str(BIN / "torchrun"),
                "--nnodes=2",
                f"--node_rank={node}",
                "--nproc_per_node=1",
                "--master_addr=127.0.0.1",
                f"--master_port={port}",
                str(SCRIPT),
                *("--output-dir", str(tmp_path / f"node{node}"), "--max-steps", "12"),
                *("--save-steps", "100", "--step-sleep", "0.5", "--system-interval", "0.5"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for node in (0, 1)
    ]
    outputs = [process.communicate(timeout=300) for process in nodes]
    for process, (_, stderr) in zip(nodes, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
    reports = [
        json.loads(path.read_text())
        for node in (0, 1)
        for path in (tmp_path / f"node{node}").glob("rank*.json")
    ]  # each rank writes its own (lines on a shared pipe could interleave)
    by_rank = {entry["rank"]: entry for entry in reports}
    assert by_rank[1]["run_name"] is None  # node 1 opened no run of its own
    run = by_rank[0]["run_name"]

    assert [r["name"] for r in shared_server.runs(project)] == [run]
    assert shared_server.steps(project, run, "train/loss") == list(range(1, 13))
    rows: list[dict[str, Any]] = shared_server.api("get_system_logs", project, run)
    node0 = [row for row in rows if "cpu/utilization" in row]
    node1 = [row for row in rows if "node1/cpu/utilization" in row]
    assert len(node0) >= 2 and len(node1) >= 2 and len(node0) + len(node1) == len(rows)
    assert all(not key.startswith("node") for row in node0 for key in row if "/" in key)
    assert all(
        key.startswith("node1/") for row in node1 for key in row if "/" in key
    )  # one node per sample, named for its node
    assert all(0.0 <= row["node1/cpu/utilization"] <= 100.0 for row in node1)
