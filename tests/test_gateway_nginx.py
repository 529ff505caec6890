"""Behind the company's gateway: Debian's nginx with TLS from a private CA, client certificates,
basic auth, an access header and a sub-path, in front of a real ``trackio show``.

Everything a run sends goes through it (points, media, system samples, alerts, artifacts), and so
do ``doctor``, ``status`` and ``sync``; each missing piece gets the message that names its fix; no
secret appears in any output, repr, log or spool file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.gateway import HostileGateway
from tests.harness import REPO, TOKEN, TrackioServer, wait_until
from tests.nginx import Certificates, ForwardProxy, NginxGateway, require_nginx
from trackio_integrations import Image, TrackioClient
from trackio_integrations.core.target import resolve_target

_TARGET_ENV = (
    "TRACKIO_SERVER_URL",
    "TRACKIO_WRITE_TOKEN",
    "TRACKIO_CA_BUNDLE",
    "TRACKIO_CLIENT_CERT",
    "TRACKIO_CLIENT_KEY",
    "TRACKIO_HEADERS",
    "TRACKIO_TLS_VERIFY",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackioServer]:
    require_nginx()
    server = TrackioServer(tmp_path_factory.mktemp("behind-gateway"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def nginx(
    backend: TrackioServer, certs: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NginxGateway]:
    gateway = NginxGateway(backend.port, certs, tmp_path_factory.mktemp("nginx"))
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture
def job_env(monkeypatch: pytest.MonkeyPatch, nginx: NginxGateway) -> dict[str, str]:
    """This process configured as a job behind the gateway is, through the environment only."""
    for name in _TARGET_ENV:
        monkeypatch.delenv(name, raising=False)
    env = nginx.client_env(TOKEN)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in _TARGET_ENV}
    full.update(env or {}, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "trackio_integrations.cli", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _secrets(nginx: NginxGateway) -> list[str]:
    from urllib.parse import quote

    return [TOKEN, nginx.password, quote(nginx.password, safe=""), nginx.header_value]


def _spool_text() -> list[str]:
    root = Path(os.environ["TRACKIO_SPOOL_DIR"])
    texts = []
    for path in [p for p in root.rglob("*") if p.is_file()]:
        # The run's watcher process ends a moment after finish() and removes its state file
        # then: a file listed here may be gone when it is read.
        with contextlib.suppress(FileNotFoundError):
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return texts


def test_a_run_through_the_gateway_arrives_whole_and_no_secret_shows(
    nginx: NginxGateway,
    backend: TrackioServer,
    job_env: dict[str, str],
    project: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG, logger="trackio_integrations")
    checkpoint = tmp_path / "model.bin"
    checkpoint.write_bytes(os.urandom(300_000))
    shown: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = TrackioClient(project, "gw", system_metrics=False, flush_interval=0.2)
        shown += [repr(run), str(run.target), repr(run.target), str(run.target.public())]
        for step in range(5):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.log({"sample": Image(np.zeros((8, 8, 3), dtype=np.uint8), caption="c")}, step=5)
        run.log_system({"cpu/utilization": 12.5})
        run.alert("gateway check", "through nginx", level="info", step=5)
        artifact = run.log_artifact(checkpoint, name="model", type="model")
        assert run.finish(timeout=60) is True
        assert artifact.wait(60)
    shown += [str(w.message) for w in caught]
    assert backend.wait_for_steps(project, "gw", "loss", 5) == list(range(5))
    rows = backend.wait_for_logs(project, "gw", 6)
    assert any("sample" in row for row in rows)
    wait_until(lambda: backend.api("get_system_logs", project, "gw"), 60)
    # A write the server queued while its database was busy is readable a little later.
    alerts = wait_until(lambda: backend.api("get_alerts", project), 60)
    assert [a["title"] for a in alerts] == ["gateway check"]
    assert [a["name"] for a in backend.api("get_artifacts", project)] == ["model"]
    log = nginx.access_log
    for path in ("/trackio/version", "/trackio/api/bulk_log", "/trackio/api/upload"):
        assert path in log
    assert "/trackio/api/bulk_log_system" in log and "/trackio/api/bulk_alert" in log
    assert "/trackio/api/artifact_log" in log

    doctor = _cli("doctor", env=job_env)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "Logging would work." in doctor.stdout
    status = _cli("status", env=job_env)
    assert status.returncode == 0, status.stderr
    out, err = capfd.readouterr()
    shown += [doctor.stdout, doctor.stderr, status.stdout, status.stderr, out, err, caplog.text]
    shown += _spool_text()
    for text in shown:
        for secret in _secrets(nginx):
            assert secret not in text, text


def test_a_killed_job_s_points_are_sent_by_sync_through_the_gateway(
    nginx: NginxGateway, backend: TrackioServer, job_env: dict[str, str], project: str
) -> None:
    # The job logs, then dies before its sender ran (os._exit, as a SIGKILL would leave it).
    script = (
        "import os\n"
        "from trackio_integrations import TrackioClient\n"
        f"run = TrackioClient({project!r}, 'killed', system_metrics=False, flush_interval=3600)\n"
        "for step in range(7):\n"
        "    run.log({'loss': float(step)}, step=step)\n"
        "os._exit(0)\n"
    )
    env = {
        **os.environ,
        **job_env,
        "PYTHONPATH": str(REPO),
        "TRACKIO_WATCHER": "0",
    }  # a whole job killed: its watcher too
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not backend.values(project, "killed", "loss")
    synced = _cli("sync", env=job_env)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert backend.wait_for_steps(project, "killed", "loss", 7) == list(range(7))
    again = _cli("sync", env=job_env)
    assert again.returncode == 0
    for secret in _secrets(nginx):
        assert secret not in synced.stdout + synced.stderr + again.stdout + again.stderr


def _without(env: dict[str, str], *names: str, **changes: str) -> dict[str, str]:
    out = {k: v for k, v in env.items() if k not in names}
    out.update(changes)
    return out


@pytest.mark.parametrize(
    ("piece", "expected"),
    [
        ("ca", "not trusted here"),
        ("client_cert", "wants a client certificate"),
        ("other_client_cert", "refused the client certificate"),
        ("basic_auth", "asks for a login (HTTP 401"),
        ("access_header", "refused access (HTTP 403"),
    ],
)
def test_each_missing_piece_gets_its_message_and_the_points_wait_on_disk(
    nginx: NginxGateway,
    certs: Certificates,
    job_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    project: str,
    piece: str,
    expected: str,
) -> None:
    env = dict(job_env)
    if piece == "ca":
        env = _without(env, "TRACKIO_CA_BUNDLE")
    elif piece == "client_cert":
        env = _without(env, "TRACKIO_CLIENT_CERT", "TRACKIO_CLIENT_KEY")
    elif piece == "other_client_cert":
        env.update(
            TRACKIO_CLIENT_CERT=str(certs.cert("other-client")),
            TRACKIO_CLIENT_KEY=str(certs.key("other-client")),
        )
    elif piece == "basic_auth":
        env["TRACKIO_SERVER_URL"] = nginx.url
    elif piece == "access_header":
        env = _without(env, "TRACKIO_HEADERS")
    for name in _TARGET_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.warns(UserWarning, match=re.escape(expected)) as caught:
        run = TrackioClient(project, f"missing-{piece}", system_metrics=False)
    run.log({"loss": 1.0}, step=0)
    assert run.finish(timeout=2) is False  # kept on disk, for sync once the setting is fixed
    assert any(f"missing-{piece}" in text and '"loss"' in text for text in _spool_text())
    doctor = _cli("doctor", env=env)
    assert doctor.returncode == 1
    assert expected in doctor.stdout, doctor.stdout
    for text in [doctor.stdout, doctor.stderr, *(str(w.message) for w in caught)]:
        for secret in _secrets(nginx):
            assert secret not in text, text


@pytest.mark.parametrize(
    ("cert", "expected"), [("wrong-host", "not for this host name"), ("expired", "has expired")]
)
def test_a_bad_server_certificate_is_named(
    backend: TrackioServer,
    certs: Certificates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    project: str,
    cert: str,
    expected: str,
) -> None:
    gateway = NginxGateway(backend.port, certs, tmp_path / "nginx", server_cert=cert)
    gateway.start()
    try:
        env = gateway.client_env(TOKEN)
        for name in _TARGET_ENV:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with pytest.warns(UserWarning, match=re.escape(expected)):
            run = TrackioClient(project, f"bad-{cert}", system_metrics=False)
        run.log({"loss": 1.0}, step=0)
        assert run.finish(timeout=1) is False
        doctor = _cli("doctor", env=env)
        assert doctor.returncode == 1 and expected in doctor.stdout, doctor.stdout
    finally:
        gateway.stop()


def test_a_redirect_is_not_followed_and_names_the_url_to_use(
    backend: TrackioServer, project: str
) -> None:
    hostile = HostileGateway(backend.port)
    try:
        elsewhere = f"{hostile.url}/moved/"
        hostile.fail(308, times=5, path="/version", headers={"Location": elsewhere})
        with pytest.raises(Exception, match=r"redirects to .*/moved/.* use that URL") as raised:
            TrackioClient(project, "r", server_url=hostile.url, write_token=TOKEN)
        assert TOKEN not in str(raised.value)
        assert hostile.count("/moved") == 0  # never followed
    finally:
        hostile.close()


def test_headers_go_to_that_server_only(
    nginx: NginxGateway, job_env: dict[str, str], capture: Any, project: str
) -> None:
    # The alert webhook gets the alert, never the gateway's header or the write token.
    run = TrackioClient(
        project, "webhook", system_metrics=False, alert_webhook=f"{capture.url}/hook"
    )
    run.alert("to the webhook", level="error")
    assert run.finish(timeout=30) is True
    wait_until(lambda: capture.requests, 30)
    for request in capture.requests:
        names = {k.lower() for k in request.headers}
        assert nginx.header_name.lower() not in names
        assert "x-trackio-write-token" not in names and "authorization" not in names
    space = resolve_target(space_id="owner/space", env={**job_env, "HF_TOKEN": "hf_x"})
    assert nginx.header_name not in space.headers()


def test_a_forward_proxy_from_the_environment_carries_the_run(
    nginx: NginxGateway,
    backend: TrackioServer,
    job_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    project: str,
) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        run = TrackioClient(project, "proxied", system_metrics=False, flush_interval=0.2)
        run.log({"loss": 0.5}, step=0)
        assert run.finish(timeout=30) is True
        assert backend.wait_for_steps(project, "proxied", "loss", 1) == [0]
        assert f"127.0.0.1:{nginx.port}" in proxy.connects
        before = len(proxy.connects)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        direct = TrackioClient(project, "direct", system_metrics=False)
        direct.log({"loss": 0.25}, step=0)
        assert direct.finish(timeout=30) is True
        assert len(proxy.connects) == before  # NO_PROXY: straight to the gateway


def test_tls_verification_off_works_with_a_warning_at_every_start(
    nginx: NginxGateway, job_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, project: str
) -> None:
    monkeypatch.delenv("TRACKIO_CA_BUNDLE")
    monkeypatch.setenv("TRACKIO_TLS_VERIFY", "0")
    for name in ("first", "second"):
        with pytest.warns(UserWarning, match="TLS verification is off"):
            run = TrackioClient(project, name, system_metrics=False)
        run.log({"loss": 1.0}, step=0)
        assert run.finish(timeout=30) is True


def test_bad_gateway_settings_are_value_errors_at_construction(
    project: str, tmp_path: Path
) -> None:
    url = "https://127.0.0.1:1/trackio/"
    with pytest.raises(ValueError, match="TRACKIO_HEADERS must be a JSON object"):
        resolve_target(server_url=url, env={"TRACKIO_HEADERS": "X-Token: abc"})
    with pytest.raises(ValueError, match="CA bundle"):
        TrackioClient(project, server_url=url, ca_bundle=tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="client certificate"):
        TrackioClient(project, server_url=url, client_cert=str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="string values"):
        TrackioClient(project, server_url=url, headers={"X-Token": 3})  # type: ignore[dict-item]
    target = resolve_target(server_url=url, headers={"X-Token": "abcd-secret"}, env={})
    assert "abcd-secret" not in repr(target) + str(target.public())
    assert json.dumps(target.public())  # what a spool records: no header, no certificate
    assert httpx.URL(target.url or "").path == "/trackio"
