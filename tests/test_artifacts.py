"""Artifacts and project files against a real ``trackio show``: versions read back with the
server's own calls, downloads byte-identical, no blob sent twice, nothing lost to a SIGKILL, and
a file that changed after it was logged reported instead of uploaded."""

from __future__ import annotations

import filecmp
import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import REPO, TrackioServer, cli_process, counting_proxy, wait_until
from trackio_integrations import TrackioClient
from trackio_integrations.artifacts import files as artifact_files
from trackio_integrations.artifacts.local import LocalStore, layout
from trackio_integrations.artifacts.server import Throttle
from trackio_integrations.artifacts.uploader import ARTIFACTS, UPLOADER_THREAD


def checkpoint(folder: Path, size: int = 2_000_000, seed: bytes = b"w") -> Path:
    """A checkpoint folder: weights (pseudo-random, ``size`` bytes) and a small config."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "weights.bin").write_bytes(random.Random(seed).randbytes(size))
    (folder / "config.json").write_text('{"hidden": 8}')
    return folder


def digests_present(server: TrackioServer, project: str, digests: list[str]) -> list[str]:
    """``check_artifact_blobs`` is a write call: it needs the token."""
    response = httpx.post(
        f"{server.url}/api/check_artifact_blobs",
        json={"kwargs": {"project": project, "digests": digests, "hf_token": None}},
        headers={"X-Trackio-Write-Token": server.token},
        timeout=30,
    )
    return list(response.json()["data"]["present"])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_checkpoint_comes_back_byte_identical_with_its_lineage(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    ckpt = checkpoint(tmp_path / "ckpt")
    with TrackioClient(project, "producer", server_url=shared_server.write_url) as run:
        art = run.log_artifact(
            ckpt, name="model", type="model", aliases=["best"], metadata={"score": 0.25}
        )
        assert art is not None and art.wait(60), art.error
        assert art.version == "v0"
        assert run.save(ckpt / "config.json", base_path=ckpt) == 1

    [listed] = shared_server.api("get_artifacts", project)
    assert (listed["name"], listed["type"], listed["num_versions"]) == ("model", "model", 1)
    assert listed["aliases"] == ["best", "latest"]
    record = shared_server.api("get_artifact_manifest", project, "model", "best")
    assert record["metadata"] == {"score": 0.25}
    assert record["producer_run_name"] == "producer"
    assert {e["path"]: e["digest"] for e in record["manifest"]} == {
        "config.json": sha256(ckpt / "config.json"),
        "weights.bin": sha256(ckpt / "weights.bin"),
    }

    with TrackioClient(project, "consumer", server_url=shared_server.write_url) as run:
        used = run.use_artifact("model:latest")
        assert used is not None and used.version == "v0"
        folder = used.download(tmp_path / "download")
    for name in ("weights.bin", "config.json"):
        assert filecmp.cmp(folder / name, ckpt / name, shallow=False)
    lineage = shared_server.api("get_run_artifacts", project, "consumer")
    assert [(a["name"], a["version"]) for a in lineage["input"]] == [("model", 0)]
    produced = shared_server.api("get_run_artifacts", project, "producer")
    assert [a["name"] for a in produced["output"]] == ["model"]
    files = shared_server.api("get_project_files", project)
    assert [f["name"].split("/")[0] for f in files] == ["config.json"]  # the name stays visible
    tabs = shared_server.api("get_tab_availability", project)
    assert tabs["artifacts"] and tabs["files"]


def test_a_second_identical_checkpoint_sends_no_blob_bytes(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    proxy = counting_proxy(shared_server.port)
    url = f"{proxy.url}?write_token={shared_server.token}"
    first, second = checkpoint(tmp_path / "a"), checkpoint(tmp_path / "b")  # same content
    try:
        with TrackioClient(project, "dedup", server_url=url, flush_interval=30) as run:
            start = proxy.sent_bytes
            assert run.log_artifact(first, name="model").wait(60)  # type: ignore[union-attr]
            sent_first = proxy.sent_bytes - start
            start = proxy.sent_bytes
            again = run.log_artifact(second, name="model-copy")
            assert again is not None and again.wait(60), again.error
            sent_second = proxy.sent_bytes - start
    finally:
        proxy.close()
    size = 2_000_000 + len('{"hidden": 8}')
    assert sent_first > size  # the blobs went up once...
    assert sent_second < 20_000  # ...and then only the calls that name them
    assert shared_server.api("get_artifact_manifest", project, "model-copy", None)["version"] == 0


def test_a_killed_upload_is_resumed_by_sync_without_resending_blobs(
    shared_server: TrackioServer, project: str, tmp_path: Path, spool_dir: Path
) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "a.bin").write_bytes(os.urandom(1_000_000))  # sent first (manifest order)
    (folder / "b.bin").write_bytes(os.urandom(24_000_000))
    proxy = counting_proxy(shared_server.port)
    code = (
        "import sys, time\n"
        "from trackio_integrations import TrackioClient\n"
        f"run = TrackioClient({project!r}, 'killed', server_url={proxy.url!r})\n"
        f"run.log_artifact({str(folder)!r}, name='model', type='model')\n"
        "print('logged', flush=True)\n"
        "time.sleep(600)\n"
    )
    # b.bin takes ~8 s: time to kill it, with its whole job (the watcher too): sync resumes it
    env = shared_server.job_env(TRACKIO_UPLOAD_MBPS="3", TRACKIO_WATCHER="0")
    child = subprocess.Popen(
        [sys.executable, "-c", code], env=env, cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "logged"
        a_digest = sha256(folder / "a.bin")
        wait_until(lambda: digests_present(shared_server, project, [a_digest]), 60, 0.2)
        wait_until(lambda: proxy.sent_bytes > 4_000_000, 60, 0.05)  # well into b.bin
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert shared_server.api("get_artifacts", project) == []
        status = cli_process(["status"])
        assert "Uploads: 1 request(s), 25.0 MB" in status.stdout

        before = proxy.sent_bytes
        done = cli_process(["sync"], env={"TRACKIO_WRITE_TOKEN": shared_server.token})
        resent = proxy.sent_bytes - before
    finally:
        if child.poll() is None:
            child.kill()
        proxy.close()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Uploads: 1 request(s) delivered" in done.stdout
    assert 24_000_000 < resent < 24_500_000  # b.bin again, a.bin not
    [listed] = shared_server.api("get_artifacts", project)
    assert listed["num_versions"] == 1
    with TrackioClient(project, "reader", server_url=shared_server.write_url) as run:
        used = run.use_artifact("model")
        assert used is not None
        out = used.download(tmp_path / "back")
    assert filecmp.cmp(out / "b.bin", folder / "b.bin", shallow=False)
    assert not list((spool_dir / ARTIFACTS).glob("*/meta.json"))  # the queue is empty and gone


def test_a_file_changed_after_logging_is_reported_and_not_uploaded(
    shared_server: TrackioServer,
    project: str,
    tmp_path: Path,
    spool_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACKIO_UPLOAD_MBPS", "2")  # the first upload keeps the worker busy
    slow = checkpoint(tmp_path / "slow", size=3_000_000, seed=b"slow")
    changing = checkpoint(tmp_path / "changing", seed=b"changing")
    with TrackioClient(project, "edits", server_url=shared_server.write_url) as run:
        first = run.log_artifact(slow, name="slow")
        second = run.log_artifact(changing, name="changing")
        with open(changing / "weights.bin", "r+b") as f:  # rewritten in place, same size
            f.write(b"\0" * 1000)
        assert first is not None and second is not None
        assert first.wait(60) and not second.wait(60)
    assert second.error is not None and "weights.bin was modified" in second.error
    assert [a["name"] for a in shared_server.api("get_artifacts", project)] == ["slow"]
    [set_aside] = (spool_dir / ARTIFACTS / "dead-letter").glob("*.jsonl")
    assert "changing" in set_aside.read_text()


def test_a_checkpoint_deleted_right_after_logging_is_still_uploaded(
    shared_server: TrackioServer, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``save_total_limit`` deletes old checkpoint folders: the logged version survives."""
    monkeypatch.setenv("TRACKIO_UPLOAD_MBPS", "2")
    slow = checkpoint(tmp_path / "slow", size=3_000_000, seed=b"slow")
    rotated = checkpoint(tmp_path / "checkpoint-100", seed=b"rotated")
    expected = sha256(rotated / "weights.bin")
    with TrackioClient(project, "rotation", server_url=shared_server.write_url) as run:
        run.log_artifact(slow, name="slow")
        art = run.log_artifact(rotated, name="model")
        for file in rotated.iterdir():
            file.unlink()
        rotated.rmdir()
        assert art is not None and art.wait(60), art.error
    manifest = shared_server.api("get_artifact_manifest", project, "model", None)["manifest"]
    assert {e["path"]: e["digest"] for e in manifest}["weights.bin"] == expected


def test_a_version_the_server_refuses_is_set_aside_not_retried_forever(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    ckpt = checkpoint(tmp_path / "ckpt", size=10_000)
    with TrackioClient(project, "types", server_url=shared_server.write_url) as run:
        assert run.log_artifact(ckpt, name="thing", type="model").wait(60)  # type: ignore[union-attr]
        (ckpt / "config.json").write_text('{"hidden": 9}')
        clash = run.log_artifact(ckpt, name="thing", type="dataset")
        after = run.log_artifact(ckpt / "config.json", name="next")
        assert clash is not None and after is not None
        assert not clash.wait(120) and after.wait(60)  # the queue goes on past it
    assert clash.error is not None and "already exists with type 'model'" in clash.error


def test_uploads_keep_to_the_bandwidth_cap(
    shared_server: TrackioServer, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKIO_UPLOAD_MBPS", "2")
    ckpt = checkpoint(tmp_path / "ckpt", size=4_000_000)
    with TrackioClient(project, "capped", server_url=shared_server.write_url) as run:
        # From before the call: the uploader starts at once, and this thread may be descheduled
        # between the call and a clock read after it while the upload goes on.
        started = time.monotonic()
        art = run.log_artifact(ckpt / "weights.bin", name="model")
        assert art is not None and art.wait(120)
        took = time.monotonic() - started
    assert took >= 1.4  # 4 MB at 2 MB/s, less the first 1 MiB burst: at least ~1.5 s


def test_the_uploader_hands_the_core_back_after_each_chunk(
    shared_server: TrackioServer, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the uploader shares a core with the training loop, a step waits for one chunk at
    most: the uploader yields the core after each chunk it hashes and each chunk it sends, on its
    own thread, never on the caller's."""
    yielded: list[str] = []
    monkeypatch.setattr(
        artifact_files, "_YIELD", lambda: yielded.append(threading.current_thread().name)
    )
    ckpt = checkpoint(tmp_path / "ckpt", size=5 * artifact_files.CHUNK + 7, seed=b"paced")
    with TrackioClient(project, "paced", server_url=shared_server.write_url) as run:
        art = run.log_artifact(ckpt / "weights.bin", name="model")
        assert art is not None and art.wait(120)
    assert set(yielded) == {UPLOADER_THREAD}
    assert len(yielded) >= 2 * 6  # six chunks hashed, six sent


def test_memory_stays_flat_while_a_large_file_streams_up(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(256 << 20)  # sparse: 256 MiB that cost no disk
    code = (
        "import resource\n"
        "from trackio_integrations import TrackioClient\n"
        f"run = TrackioClient({project!r}, 'big', server_url={shared_server.write_url!r})\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"art = run.log_artifact({str(big)!r}, name='big')\n"
        "assert art.wait(300), art.error\n"
        "run.finish()\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    growth_mib = int(done.stdout.strip().splitlines()[-1])
    assert growth_mib < 64, f"peak RSS grew by {growth_mib} MiB for a 256 MiB upload"
    assert shared_server.api("get_artifacts", project)[0]["size_bytes"] == 256 << 20


def test_the_embedded_default_stores_what_trackio_show_lists(project: str, tmp_path: Path) -> None:
    ckpt = checkpoint(tmp_path / "ckpt", size=300_000)
    with TrackioClient(project, "local-producer") as run:
        art = run.log_artifact(ckpt, name="model", type="model", aliases=["best"])
        assert art is not None and art.wait(120), art.error
        run.save(ckpt / "config.json", base_path=ckpt)
        run.log({"loss": 1.0}, step=0)
    with TrackioClient(project, "local-consumer") as run:
        used = run.use_artifact("model:best")
        assert used is not None and used.version == "v0"
        out = used.download(tmp_path / "back")
    assert filecmp.cmp(out / "weights.bin", ckpt / "weights.bin", shallow=False)

    server = TrackioServer(Path(os.environ["TRACKIO_DIR"]))  # `trackio show` on that folder
    server.start()
    try:
        [listed] = server.api("get_artifacts", project)
        assert (listed["name"], listed["aliases"]) == ("model", ["best", "latest"])
        lineage = server.api("get_run_artifacts", project, "local-consumer")
        assert [a["name"] for a in lineage["input"]] == ["model"]
        assert [f["name"] for f in server.api("get_project_files", project)] == ["config.json"]
        tabs: dict[str, Any] = server.api("get_tab_availability", project)
        assert tabs["artifacts"] and tabs["files"]
    finally:
        server.stop()


@pytest.mark.parametrize("project", ["plain", "my.model", "with space/and:colon", "é-ü_9", "..."])
def test_local_storage_folders_are_where_trackio_itself_puts_them(
    project: str, tmp_path: Path
) -> None:
    # Saving a project file reads no trackio (an interpreter that imports it costs 0.4 s at
    # finish()); the copy of trackio's path rules must still give trackio's own answer.
    store = LocalStore(tmp_path / "trackio", Throttle(None))
    assert layout(tmp_path / "trackio", project) == store._helper("layout", project=project)


def test_the_next_run_to_the_same_server_resumes_what_an_outage_left(
    server: TrackioServer, project: str, tmp_path: Path
) -> None:
    ckpt = checkpoint(tmp_path / "ckpt", size=500_000)
    server.stop()
    with pytest.warns(UserWarning, match="not reachable"):
        run = TrackioClient(project, "during-outage", server_url=server.write_url)
    art = run.log_artifact(ckpt, name="model")
    assert not run.finish(timeout=1, artifact_timeout=5)  # kept, not waited for
    assert art is not None and not art.done

    server.start()
    with TrackioClient(project, "after-outage", server_url=server.write_url) as later:
        wait_until(lambda: server.api("get_artifacts", project), 60, 0.2)
        assert later.uploads_pending == 0
    record = server.api("get_artifact_manifest", project, "model", None)
    assert record["producer_run_name"] == "during-outage"  # recorded for the run that logged it
