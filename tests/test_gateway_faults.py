"""What a user meets in the wild, against a real ``trackio show`` behind a hostile gateway:
a proxy's 502/503/504/429 at start, a URL copied from the browser, a password in the URL, a point
the gateway never takes, the upload path's error handling, lists."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.gateway import HostileGateway, nginx_page
from tests.harness import REPO, TOKEN, TrackioServer, free_port
from trackio_integrations import Image, TrackioClient, TrackioServerError
from trackio_integrations.artifacts.server import ServerStore, StoreError, Throttle
from trackio_integrations.core.target import resolve_target
from trackio_integrations.core.transport import Outcome, Transport


@pytest.fixture
def gateway(shared_server: TrackioServer) -> Iterator[HostileGateway]:
    gw = HostileGateway(shared_server.port)
    yield gw
    gw.close()


def _quiet_client(url: str, project: str, **kwargs: object) -> TrackioClient:
    return TrackioClient(
        project, "r", server_url=url, system_metrics=False, flush_interval=0.2, **kwargs
    )


@pytest.mark.parametrize(
    ("status", "body", "retry_after"),
    [
        (502, None, None),
        (503, None, None),
        (504, None, None),
        (503, b"", None),  # an empty body from a proxy
        (429, None, "1"),
    ],
)
def test_a_gateway_that_answers_away_at_start_does_not_stop_the_run(
    gateway: HostileGateway,
    shared_server: TrackioServer,
    project: str,
    status: int,
    body: bytes | None,
    retry_after: str | None,
) -> None:
    # The server behind the gateway restarts: /version and the first writes answer `status`.
    gateway.fail(status, times=4, body=body, retry_after=retry_after)
    with pytest.warns(UserWarning, match="away for now"):
        run = _quiet_client(gateway.url, project, write_token=TOKEN)
    for step in range(20):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    assert run.finish(timeout=60) is True
    assert shared_server.wait_for_steps(project, "r", "loss", 20) == list(range(20))
    assert gateway.count("/version", status) == 1


def test_an_answer_that_is_certainly_not_trackio_fails_fast(
    gateway: HostileGateway, project: str
) -> None:
    gateway.fail(200, times=10, path="/version", body=b"<html><title>Grafana</title></html>")
    with pytest.raises(TrackioServerError, match="not answer /version like a Trackio server"):
        _quiet_client(gateway.url, project, write_token=TOKEN)


def test_a_wrong_sub_path_fails_fast_and_names_the_path(
    shared_server: TrackioServer, project: str
) -> None:
    gw = HostileGateway(shared_server.port, prefix="/trackio")
    try:
        with pytest.raises(TrackioServerError, match="sub-path"):
            _quiet_client(f"http://127.0.0.1:{gw.port}/", project, write_token=TOKEN)
    finally:
        gw.close()


@pytest.mark.parametrize(
    "shape",
    [
        "{base}/?project={project}&write_token={token}&sidebar=collapsed",
        "{base}?write_token={token}&project={project}#metrics",
        "  {base}/?sidebar=collapsed&write_token={token}  ",
        "{base}/?write_token={token}&runs=a,b&smoothing=0.6&navbar=hidden",
    ],
)
def test_a_url_copied_from_the_dashboard_works(
    shared_server: TrackioServer, project: str, shape: str
) -> None:
    url = shape.format(base=shared_server.url, project=project, token=TOKEN)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either: this URL is fine
        run = _quiet_client(url, project)
    assert run.target.url == shared_server.url
    run.log({"loss": 0.5}, step=0)
    assert run.finish(timeout=30) is True
    assert shared_server.wait_for_steps(project, "r", "loss", 1) == [0]


def test_a_copied_url_behind_a_sub_path_keeps_the_sub_path(
    shared_server: TrackioServer, project: str
) -> None:
    gw = HostileGateway(shared_server.port, prefix="/ml/trackio")
    try:
        url = f"http://127.0.0.1:{gw.port}/ml/trackio/?project={project}&write_token={TOKEN}&sidebar=collapsed"
        run = _quiet_client(url, project)
        run.log({"loss": 0.5, "img": Image(np.zeros((4, 4, 3), dtype=np.uint8))}, step=0)
        assert run.finish(timeout=30) is True
        assert shared_server.wait_for_steps(project, "r", "loss", 1) == [0]
        assert gw.count("/ml/trackio/api/upload", 200) == 1  # the media file went the same way
        assert gw.count("/ml/trackio/api/bulk_log", 200) >= 1
    finally:
        gw.close()


def test_a_password_in_the_url_is_sent_as_basic_auth_and_shown_nowhere(
    shared_server: TrackioServer,
    project: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    password = "pa@ss:w0rd/x"  # percent-encoded in the URL, as a browser would
    gw = HostileGateway(shared_server.port, basic_auth=("alice", password))
    caplog.set_level(logging.DEBUG, logger="trackio_integrations")
    url = f"http://alice:pa%40ss%3Aw0rd%2Fx@127.0.0.1:{gw.port}/?write_token={TOKEN}"
    shown: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = _quiet_client(url, project)
            run.log({"loss": 0.25}, step=0)
            shown += [repr(run), str(run), str(run.target), repr(run.target)]
            assert run.finish(timeout=30) is True
            # The same URL to a closed port: the "not reachable" warning must not show it either.
            dead = f"http://alice:pa%40ss%3Aw0rd%2Fx@127.0.0.1:{free_port()}/?write_token={TOKEN}"
            other = _quiet_client(dead, project)
            other.log({"loss": 1.0}, step=0)
            other.finish(timeout=0.5)
        shown += [str(w.message) for w in caught]
        assert any("not reachable" in text for text in shown)
        assert shared_server.wait_for_steps(project, "r", "loss", 1) == [0]
        with pytest.raises(TrackioServerError) as raised:
            _quiet_client(url.replace(f"{gw.port}/", f"{gw.port}/nowhere/"), project)
        shown.append(str(raised.value))
        doctor = subprocess.run(
            [sys.executable, "-m", "trackio_integrations.cli", "doctor"],
            env={**os.environ, "PYTHONPATH": str(REPO), "TRACKIO_SERVER_URL": dead},
            capture_output=True,
            text=True,
            timeout=120,
        )
        shown += [doctor.stdout, doctor.stderr]
        out, err = capfd.readouterr()
        shown += [out, err, caplog.text]
        files = [p for p in Path(os.environ["TRACKIO_SPOOL_DIR"]).rglob("*") if p.is_file()]
        assert files
        for path in files:  # the watcher of `other` removes its state file as it ends
            with contextlib.suppress(FileNotFoundError):
                shown.append(path.read_bytes().decode("utf-8", "replace"))
        for text in shown:
            for secret in (password, "pa%40ss%3Aw0rd%2Fx", "w0rd", TOKEN):
                assert secret not in text, text
        assert "Basic " in gw.headers_seen[0].get("Authorization", "")
    finally:
        gw.close()


def test_a_point_the_gateway_never_takes_is_reported_and_the_rest_arrives(
    shared_server: TrackioServer, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    gw = HostileGateway(shared_server.port, max_body=300_000)  # nginx client_max_body_size
    noise = np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8)
    try:
        run = _quiet_client(gw.url, project, write_token=TOKEN)
        for step in range(6):
            run.log({"loss": float(step)}, step=step)
        run.log({"big": Image(noise), "acc": 0.9}, step=6)  # about 1.4 MB of PNG
        run.log({"small": Image(noise[:8, :8]), "acc": 0.95}, step=7)
        assert run.flush(timeout=60) is False
        assert run.finish(timeout=30) is False
    finally:
        gw.close()
    assert shared_server.wait_for_steps(project, "r", "loss", 6) == list(range(6))
    assert shared_server.wait_for_steps(project, "r", "acc", 1) == [7]  # only the small image's
    assert gw.count("/api/upload", 413) >= 1
    refused = [r for r in caplog.records if "can never be delivered" in r.getMessage()]
    assert len(refused) == 1, caplog.text
    message = refused[0].getMessage()
    assert "step 6" in message and "'big'" in message and "413" in message
    dead = Path(os.environ["TRACKIO_SPOOL_DIR"]) / "dead-letter"
    assert str(dead) in message
    assert len(list(dead.glob("*.files/*"))) == 1  # the image is kept beside the point


def test_a_batch_over_the_body_limit_is_split_and_arrives_whole(
    shared_server: TrackioServer, project: str
) -> None:
    gw = HostileGateway(shared_server.port, max_body=40_000)
    try:
        # No cycle of the sender before finish(): every point is in its one batch, even where
        # a loaded machine logs the 400 points slower than a short interval's cycles take them.
        run = TrackioClient(
            project,
            "r",
            server_url=gw.url,
            write_token=TOKEN,
            system_metrics=False,
            flush_interval=3600,
        )
        for step in range(400):  # one batch of about 100 kB: refused, then sent in halves
            run.log({f"metric_{i}": float(step) for i in range(6)}, step=step)
        assert run.finish(timeout=60) is True
    finally:
        gw.close()
    assert gw.count("/api/bulk_log", 413) >= 1
    assert shared_server.wait_for_steps(project, "r", "metric_5", 400) == list(range(400))


def _closed_port_target() -> object:
    return resolve_target(server_url=f"http://127.0.0.1:{free_port()}", write_token=TOKEN, env={})


def test_every_network_error_path_of_the_transport_answers_retry_or_raises_cleanly() -> None:
    transport = Transport(_closed_port_target(), timeout=2.0)  # type: ignore[arg-type]
    try:
        assert transport.call("logs:/api/bulk_log", b"[]").outcome is Outcome.RETRY
        assert transport.send([b'{"kind":"metric"}']).outcome is Outcome.RETRY
        reply, paths = transport.upload([("a.png", b"x" * 10)])
        assert reply.outcome is Outcome.RETRY and paths == []
        with pytest.raises(httpx.TransportError):
            transport.version()
        with pytest.raises(httpx.TransportError):
            transport.check()
        with pytest.raises(httpx.TransportError):
            transport.read("get_all_projects")
    finally:
        transport.close()


def test_every_error_path_of_the_uploader_store_answers_a_store_error(tmp_path: Path) -> None:
    store = ServerStore(_closed_port_target(), Throttle(None), timeout=2.0)  # type: ignore[arg-type]
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"y" * 2048)
    entry = {"path": "blob.bin", "src": str(blob), "size": 2048, "digest": "0" * 64}
    rec = {"project": "p", "name": "a", "type": "model", "run": "r", "run_id": "i"}
    attempts = {
        "call": lambda: store.call("get_all_projects"),
        "present": lambda: store.present("p", ["0" * 64]),
        "put_blob (the streamed upload)": lambda: store.put_blob("p", "0" * 64, entry),
        "save_file": lambda: store.save_file("p", entry),
        "commit": lambda: store.commit(rec, []),
        "resolve": lambda: store.resolve("p", "a", None),
        "log_use": lambda: store.log_use("p", 1, "r", "i"),
        "fetch": lambda: store.fetch("p", entry, tmp_path / "out.bin"),
    }
    try:
        for name, attempt in attempts.items():
            with pytest.raises(StoreError) as raised:
                attempt()
            assert raised.value.reply.outcome is Outcome.RETRY, name
    finally:
        store.close()


def test_a_connection_cut_mid_answer_is_retried(
    gateway: HostileGateway, shared_server: TrackioServer, project: str
) -> None:
    run = _quiet_client(gateway.url, project, write_token=TOKEN)
    gateway.fail(502, times=2, path="/api/bulk_log", close_mid_body=True)
    gateway.fail(503, times=2, path="/api/upload")
    for step in range(10):
        run.log({"loss": float(step), "img": Image(np.zeros((4, 4, 3), np.uint8))}, step=step)
    assert run.finish(timeout=60) is True
    assert shared_server.wait_for_steps(project, "r", "loss", 10) == list(range(10))


def test_sync_with_media_waiting_and_the_server_down_exits_cleanly(
    tmp_path: Path, project: str
) -> None:
    server = TrackioServer(tmp_path / "data")
    server.start()
    run = _quiet_client(server.url, project, write_token=TOKEN)
    server.stop()
    run.log({"img": Image(np.zeros((8, 8, 3), np.uint8)), "loss": 1.0}, step=0)
    assert run.finish(timeout=1.0) is False
    env = {**os.environ, "PYTHONPATH": str(REPO), "TRACKIO_SERVER_URL": server.url}
    env["TRACKIO_WRITE_TOKEN"] = TOKEN
    done = subprocess.run(
        [sys.executable, "-m", "trackio_integrations.cli", "sync", "--retries", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "NameError" not in done.stderr, done.stderr
    server.start()
    again = subprocess.run(
        [sys.executable, "-m", "trackio_integrations.cli", "sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert server.wait_for_steps(project, "r", "loss", 1) == [0]
    server.stop()


def test_a_list_value_is_dropped_with_one_warning_and_the_point_arrives(
    shared_server: TrackioServer, project: str
) -> None:
    run = _quiet_client(shared_server.url, project, write_token=TOKEN)
    with pytest.warns(UserWarning, match="'pair' was not logged: a list") as caught:
        for step in range(3):
            run.log({"pair": [4, 5], "loss": float(step)}, step=step)
    assert sum("'pair'" in str(w.message) for w in caught) == 1
    assert run.finish(timeout=30) is True
    rows = shared_server.wait_for_logs(project, "r", 3)
    assert [row.get("loss") for row in rows] == [0.0, 1.0, 2.0]
    assert all("pair" not in row for row in rows)


def test_the_gateway_page_is_recognised(gateway: HostileGateway) -> None:
    # The test gateway answers as nginx does: the page the client must not take for Trackio's.
    gateway.fail(503, path="/version")
    answer = httpx.get(f"{gateway.url}/version")
    assert answer.status_code == 503 and answer.content == nginx_page(503)
