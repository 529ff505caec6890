"""Air-gapped compute nodes: an offline run touches no network, its spool travels to a login
node (another path, hostname and pid space) and `sync` sends it there exactly once."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.harness import REPO, TrackioServer, assert_each_step_once, counting_proxy, run_python
from tests.test_media import decoded, fetch, media_rows
from trackio_integrations import Image, TrackioClient
from trackio_integrations.errors import TrackioConfigError

OFFLINE_JOB = textwrap.dedent(
    """
    import numpy as np
    from pathlib import Path
    from trackio_integrations import Image, TrackioClient
    run = TrackioClient(name="air-gapped", config={{"lr": 0.01}}, system_metrics=False)
    for step in range(10):
        run.log({{"loss": 1 / (step + 1)}}, step=step)
    run.log({{"sample": Image(np.full((8, 8, 3), 200, dtype=np.uint8))}}, step=10)
    run.log_system({{"cpu/utilization": 42.0}})
    run.alert("Loss spike", "loss jumped", level="warn")
    ckpt = Path({ckpt!r})
    ckpt.mkdir()
    (ckpt / "weights.bin").write_bytes(b"w" * 4096)
    run.log_artifact(ckpt, name="model", type="model")
    print("FINISHED", run.finish())
    """
)


def test_an_offline_run_sends_nothing_while_it_runs(
    shared_server: TrackioServer, project: str, tmp_path: Path, spool_dir: Path
) -> None:
    proxy = counting_proxy(shared_server.port)
    try:
        run = TrackioClient(
            project,
            "no-network",
            server_url=proxy.url,
            write_token=shared_server.token,
            mode="offline",
            config={"lr": 0.1},
            alert_webhook=f"{proxy.url}/hook",
        )
        for step in range(50):
            run.log({"loss": float(step)}, step=step)
        run.log({"img": Image(np.zeros((4, 4, 3), dtype=np.uint8))}, step=50)
        run.log_system({"cpu/utilization": 1.0})
        run.update_config({"batch": 8})
        run.alert("Stalled", level="error")
        (tmp_path / "f.txt").write_text("x")
        assert run.log_artifact(tmp_path / "f.txt", name="notes") is not None
        assert run.use_artifact("notes:latest") is not None
        assert run.save(tmp_path / "f.txt", base_path=tmp_path) == 1
        assert run.finish() is True
        assert proxy.sent_bytes == 0  # not one request: no check, sender, uploader or webhook
        assert shared_server.runs(project) == []
        assert "mode='offline'" in repr(run) and shared_server.token not in repr(run)
    finally:
        proxy.close()
    # Everything waits in the spool, without the token.
    files = [p for p in spool_dir.rglob("*") if p.is_file()]
    assert any(p.parent.name == "blobs" for p in files)  # the image's bytes
    assert any("snapshots" in p.parts for p in files)  # the artifact's bytes
    assert all(shared_server.token.encode() not in p.read_bytes() for p in files)


def test_finish_prints_the_command_that_sends_an_offline_run(tmp_path: Path) -> None:
    result = run_python(
        "from trackio_integrations import TrackioClient\n"
        "run = TrackioClient('p', 'r', system_metrics=False)\n"
        "run.log({'a': 1}, step=0)\n"
        "run.finish()\n",
        env={"TRACKIO_MODE": "offline", "TRACKIO_SPOOL_DIR": str(tmp_path / "sp")},
    )
    assert result.returncode == 0, result.stderr
    assert f"trackio-integrations sync {tmp_path / 'sp'}" in result.stderr


def test_a_disabled_run_writes_nothing_and_says_nothing(
    spool_dir: Path, tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    run = TrackioClient(mode="disabled")  # no project needed
    run.log({"loss": 1.0}, step=0)
    run.log({"img": Image(np.zeros((4, 4, 3), dtype=np.uint8))})
    run.log_system({"cpu/utilization": 1.0})
    run.update_config({"lr": 1})
    run.alert("nothing")
    (tmp_path / "f.txt").write_text("x")
    assert run.log_artifact(tmp_path / "f.txt") is None
    assert run.flush() and run.finish() and run.pending == 0
    assert not spool_dir.exists() and not (tmp_path / "trackio").exists()
    assert not [w for w in recwarn if "trackio" in str(w.message).lower()]


def test_a_mode_that_is_not_one_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKIO_MODE", "ofline")
    with pytest.raises(TrackioConfigError, match="TRACKIO_MODE 'ofline' is not a mode"):
        TrackioClient("p")
    monkeypatch.setenv("TRACKIO_MODE", "disabled")
    assert TrackioClient("p", mode="OFFLINE", system_metrics=False).mode == "offline"


def _login_node_sync(path: Path, server: TrackioServer) -> subprocess.CompletedProcess[str]:
    """`sync PATH` in another hostname and pid space, with this machine's own settings."""
    script = (
        "hostname login-node && "
        f"exec {sys.executable} -m trackio_integrations.cli sync {path} --server-url {server.url}"
    )
    env = {**os.environ, "TRACKIO_WRITE_TOKEN": server.token, "PYTHONPATH": str(REPO)}
    env.pop("TRACKIO_SPOOL_DIR", None)
    return subprocess.run(
        ["unshare", "--uts", "--pid", "--fork", "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0, reason="needs root")
def test_a_spool_copied_to_a_login_node_is_sent_once_from_another_host_and_pid_space(
    server: TrackioServer, project: str, tmp_path: Path
) -> None:
    compute, login = tmp_path / "node-local-spool", tmp_path / "share" / "spool"
    ckpt = tmp_path / "ckpt"
    job = run_python(
        OFFLINE_JOB.format(ckpt=str(ckpt)),
        env={
            "TRACKIO_MODE": "offline",
            "TRACKIO_PROJECT": project,
            "TRACKIO_SERVER_URL": server.url,  # the job knows where, never the token
            "TRACKIO_SPOOL_DIR": str(compute),
        },
    )
    assert job.returncode == 0 and "FINISHED True" in job.stdout, job.stderr
    digest = hashlib.sha256((ckpt / "weights.bin").read_bytes()).hexdigest()
    shutil.copytree(compute, login)  # the share, mounted at another path
    shutil.rmtree(compute)  # the node's disk is gone, and so is the checkpoint
    shutil.rmtree(ckpt)

    status = subprocess.run(
        [sys.executable, "-m", "trackio_integrations.cli", "--spool-dir", str(login), "status"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "offline run, waiting" in status.stdout, status.stdout  # the points and the artifact
    assert "13 point(s) waiting, with 1 file(s)" in status.stdout, status.stdout
    assert "(1 offline run(s))" in status.stdout and "Uploads: 1 request(s)" in status.stdout

    result = _login_node_sync(login, server)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Sent 13 of 13 point(s) and 1 of 1 file(s)" in result.stdout, out
    assert "Uploads: 1 request(s) delivered" in result.stdout, out
    row = next(line for line in result.stdout.splitlines() if f"{project}/air-gapped" in line)
    assert row.split()[1:7] == ["10", "1", "1", "1", "1", "0"], result.stdout  # the table
    assert server.token not in out

    assert_each_step_once(server, project, "air-gapped", "loss", 10)
    assert [c.get("lr") for c in server.configs(project).values()] == [0.01]
    (image,) = media_rows(server, project, "air-gapped", "sample")
    assert decoded(fetch(server, image["sample"]["file_path"]))[0][0] == [200, 200, 200]
    alerts = server.api("get_alerts", project, "air-gapped")
    assert [(a["title"], a["level"]) for a in alerts] == [("Loss spike", "warn")]
    record = server.api("get_artifact_manifest", project, "model", "latest")
    assert [(e["path"], e["digest"]) for e in record["manifest"]] == [("weights.bin", digest)]
    assert record["producer_run_name"] == "air-gapped"

    again = _login_node_sync(login, server)
    assert again.returncode == 0 and "No points to send." in again.stdout, again.stdout
    assert "Uploads:" not in again.stdout
    assert_each_step_once(server, project, "air-gapped", "loss", 10)
    assert len(server.api("get_alerts", project, "air-gapped")) == 1


def test_a_disabled_log_costs_less_than_an_online_one(shared_server: TrackioServer) -> None:
    """bench/modes.py's measurement, small: each mode in a fresh interpreter."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import modes
    finally:
        sys.path.remove(str(REPO / "bench"))
    # 20,000 calls and the median of 3 rounds: a disabled log() costs so little that 2,000
    # calls take 0.3 ms, and one time slice lost to another process on a loaded machine
    # (5-10 ms) made it look as dear as an online one.
    cost = modes.measure(20_000, 3, shared_server.url, shared_server.token)
    assert cost["disabled"] < cost["online"] / 5, cost  # one attribute test against a spool line


REQUEUED_JOB = textwrap.dedent(
    """
    import sys
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from tests.test_lightning import QUIET, Regressor, loaders
    from trackio_integrations import TrackioLogger
    epochs, ckpt = int(sys.argv[1]), {ckpt!r}
    torch.serialization.add_safe_globals([torch.nn.Tanh])  # the model's hyperparameters
    logger = TrackioLogger(system_metrics=False)  # project, target and job from the environment
    save = ModelCheckpoint(dirpath=ckpt, save_last=True)
    trainer = L.Trainer(max_epochs=epochs, logger=logger, callbacks=[save], **QUIET)
    train, val = loaders()
    trainer.fit(Regressor(), train, val, ckpt_path="last" if epochs > 1 else None)
    print("RUN", logger.version, logger.run_id)
    """
)


def test_a_requeued_slurm_job_logs_into_the_run_it_started(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    script = REQUEUED_JOB.format(ckpt=str(tmp_path / "ckpt"))
    env = {
        "TRACKIO_PROJECT": project,
        "TRACKIO_SERVER_URL": shared_server.write_url,
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "pretrain",
    }
    runs = []
    for epochs in (1, 2):  # the first attempt, then the job requeued: same job id, a new process
        result = subprocess.run(
            [sys.executable, "-c", script, str(epochs)],
            env={**os.environ, **env},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        runs.append(result.stdout.split("RUN ")[1].split())
    assert runs[0] == runs[1] and runs[0][0] == "pretrain-4242"
    assert shared_server.wait_for_steps(project, "pretrain-4242", "train_loss", 8) == list(range(8))
    assert [r["name"] for r in shared_server.runs(project)] == ["pretrain-4242"]


def test_the_run_of_a_slurm_job_is_named_by_the_job_and_each_run_of_it_apart() -> None:
    from trackio_integrations.integrations.common import slurm_run

    env = {"SLURM_JOB_ID": "7", "SLURM_ARRAY_JOB_ID": "5", "SLURM_ARRAY_TASK_ID": "3"}
    first, second = slurm_run("p-unit", None, env), slurm_run("p-unit", None, env)
    assert first is not None and second is not None
    assert (first[0], second[0]) == ("slurm-5_3", "slurm-5_3-1")  # two runs in one job
    assert first[1] != second[1]
    assert slurm_run("p-unit", "x", {}) is None


@pytest.mark.skipif(shutil.which("script") is None, reason="needs util-linux script (a pty)")
def test_sync_draws_a_progress_bar_in_a_terminal_and_ends_with_a_table(
    tmp_path: Path, spool_dir: Path
) -> None:
    with TrackioClient("bar-project", "bar-run", mode="offline", system_metrics=False) as run:
        for step in range(40):
            run.log({"loss": float(step)}, step=step)
    command = (
        f"stty cols 100 rows 30; {sys.executable} -m trackio_integrations.cli sync {spool_dir}"
    )
    result = subprocess.run(
        ["script", "-qec", command, "/dev/null"],  # stderr is a terminal: tqdm draws
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout
    assert "sync:" in result.stdout and "40/40" in result.stdout, result.stdout  # tqdm's bar
    assert "bar-project/bar-run" in result.stdout and "Sent 40 of 40 point(s)" in result.stdout
    assert list((tmp_path / "trackio" / "inbox").glob("*/*.jsonl"))  # local storage here


def test_an_online_run_leaves_an_offline_run_to_sync(spool_dir: Path) -> None:
    from trackio_integrations.cli import main as cli_main
    from trackio_integrations.core.spool import Spool

    with TrackioClient("kept-for-sync", "offline-run", mode="offline", system_metrics=False) as run:
        for step in range(5):
            run.log({"loss": float(step)}, step=step)
    with TrackioClient("kept-for-sync", "online-run", system_metrics=False) as later:
        later.log({"loss": 0.0}, step=0)
        assert later.flush(30)

    def waiting() -> int:
        total = 0
        for folder in Spool.folders(spool_dir):
            found = Spool.inspect(folder)
            if found is not None:
                total += found[0].pending if found[0].meta.get("mode") == "offline" else 0
                found[0].close()
        return total

    assert waiting() == 5  # the online client adopted no offline spool
    assert cli_main(["sync"]) == 0
    assert waiting() == 0


def test_trackio_init_after_install_honours_trackio_mode_offline(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    proxy = counting_proxy(shared_server.port)
    try:
        result = run_python(
            "import trackio_integrations\n"
            "trackio_integrations.install()\n"
            "import trackio\n"
            f"trackio.init(project={project!r}, name='via-trackio', resume='allow')\n"
            "trackio.log({'loss': 0.5})\n"
            "trackio.alert('x', 'y')\n"
            "trackio.finish()\n",
            env={
                "TRACKIO_MODE": "offline",
                "TRACKIO_SERVER_URL": proxy.url,
                "TRACKIO_WRITE_TOKEN": shared_server.token,
                "TRACKIO_SPOOL_DIR": str(tmp_path / "spool"),
            },
        )
        assert result.returncode == 0, result.stderr
        assert proxy.sent_bytes == 0  # no resume look-up, no check, no sender
        assert f"trackio-integrations sync {tmp_path / 'spool'}" in result.stderr
    finally:
        proxy.close()
