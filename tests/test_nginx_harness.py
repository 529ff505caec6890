"""The gateway harness itself (tests/nginx.py), checked with plain httpx, not our client: a real
nginx in front of a real ``trackio show`` refuses each missing piece the way nginx does, lets a
job with every credential through to Trackio under the sub-path, and the forward proxy carries
it. The client's own tests against this gateway build on these."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import nginx
from tests.harness import REPO, TOKEN, TrackioServer
from tests.nginx import Certificates, ForwardProxy, NginxGateway


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def gateway(
    shared_server: TrackioServer, certs: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NginxGateway]:
    """Every piece on: TLS from our CA, mTLS, basic auth, the access header, /trackio/."""
    with NginxGateway(shared_server.port, certs, tmp_path_factory.mktemp("nginx")) as gw:
        yield gw


def job(gateway: NginxGateway, client: str | None = "client", **overrides: object) -> httpx.Client:
    """An httpx client with the gateway's credentials (each replaceable), no proxy from the env."""
    options: dict[str, object] = {
        "verify": gateway.certs.ssl_context(client),
        "auth": gateway.auth,
        "headers": gateway.headers,
        "timeout": 30,
        "trust_env": False,
        "follow_redirects": False,
    }
    options.update(overrides)
    return httpx.Client(**options)  # type: ignore[arg-type]


def test_the_gateway_runs_the_one_nginx_block_of_the_docs(gateway: NginxGateway) -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    fences = [(p.name, b) for p in pages for b in nginx.NGINX_FENCE.findall(p.read_text())]
    assert fences == [("gateway.md", nginx.server_block())]
    template = nginx.server_block()
    for marker in nginx.PIECES.values():  # each piece can be turned off by its lines
        assert marker in template
    config = gateway.config(gateway.port)
    assert not nginx.PLACEHOLDER.findall(config)
    assert f"proxy_pass http://127.0.0.1:{gateway.trackio_port}/;" in config
    assert "ssl_verify_client on;" in config and "auth_basic_user_file" in config


def test_with_every_credential_trackio_answers_under_the_sub_path(gateway: NginxGateway) -> None:
    with job(gateway) as client:
        response = client.get(f"{gateway.url}version")
    assert response.status_code == 200
    assert response.json()["api_version"] == 1
    line = gateway.logged('"GET /trackio/version HTTP/1.1" 200')
    assert 'user="ml-team"' in line and "verify=SUCCESS" in line and "CN=ml-job" in line


def test_basic_auth_percent_encoded_in_the_url_gets_through(gateway: NginxGateway) -> None:
    assert "%40" in gateway.url_with_auth and "%3A" in gateway.url_with_auth  # "@" and ":"
    with job(gateway, auth=None) as client:
        response = client.get(f"{gateway.url_with_auth}version")  # httpx takes the URL's userinfo
    assert response.status_code == 200
    env = gateway.client_env(TOKEN)
    assert env["TRACKIO_SERVER_URL"] == gateway.url_with_auth
    assert json.loads(env["TRACKIO_HEADERS"]) == {"X-Access-Token": gateway.header_value}
    assert Path(env["TRACKIO_CLIENT_CERT"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in Path(env["TRACKIO_CLIENT_KEY"]).read_text()


def test_without_a_client_certificate_nginx_answers_400(gateway: NginxGateway) -> None:
    with job(gateway, client=None) as client:
        response = client.get(f"{gateway.url}version")
    assert response.status_code == 400
    assert "No required SSL certificate was sent" in response.text


def test_a_client_certificate_from_another_ca_is_refused(gateway: NginxGateway) -> None:
    with job(gateway, client="other-client") as client:
        response = client.get(f"{gateway.url}version")
    assert response.status_code == 400
    assert "The SSL certificate error" in response.text


@pytest.mark.parametrize("auth", [None, ("ml-team", "wrong"), ("someone", "x")])
def test_without_the_right_basic_auth_nginx_answers_401(
    gateway: NginxGateway, auth: tuple[str, str] | None
) -> None:
    with job(gateway, auth=auth) as client:
        response = client.get(f"{gateway.url}version")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="Trackio"'


@pytest.mark.parametrize("headers", [{}, {"X-Access-Token": "gw-wrong"}])
def test_without_the_access_header_nginx_answers_403(
    gateway: NginxGateway, headers: dict[str, str]
) -> None:
    with job(gateway, headers=headers) as client:
        response = client.get(f"{gateway.url}version")
    assert response.status_code == 403
    assert "<h1>403 Forbidden</h1>" in response.text


def test_a_client_that_trusts_another_ca_fails_verification(gateway: NginxGateway) -> None:
    context = gateway.certs.ssl_context(ca=gateway.certs.other_ca)
    with job(gateway, verify=context) as client, pytest.raises(httpx.ConnectError) as error:
        client.get(f"{gateway.url}version")
    assert "CERTIFICATE_VERIFY_FAILED" in str(error.value)


def test_the_prefix_without_its_slash_is_redirected(gateway: NginxGateway) -> None:
    with job(gateway) as client:
        response = client.get(gateway.url.rstrip("/"))
    assert response.status_code == 301
    assert response.headers["location"] == gateway.url


def test_an_upload_passes_through_whole(gateway: NginxGateway, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB, streamed on (proxy_request_buffering off)
    with job(gateway) as client:
        response = client.post(
            f"{gateway.url}api/upload",
            files={"files": ("weights.bin", payload, "application/octet-stream")},
            headers={**gateway.headers, "X-Trackio-Write-Token": TOKEN},
        )
    assert response.status_code == 200, response.text
    (stored,) = response.json()["paths"]
    assert Path(stored).read_bytes() == payload  # the server's temp file holds every byte
    line = gateway.logged('"POST /trackio/api/upload HTTP/1.1" 200')
    assert int(line.split()[5]) > len(payload)  # $request_length: the whole body came through


def test_a_body_over_client_max_body_size_gets_413(
    shared_server: TrackioServer, certs: Certificates, tmp_path: Path
) -> None:
    with (
        NginxGateway(shared_server.port, certs, tmp_path / "gw", max_body="1k") as small,
        job(small) as client,
    ):
        response = client.post(f"{small.url}api/upload", files={"files": ("a", b"x" * 4096)})
    assert response.status_code == 413
    assert "Request Entity Too Large" in response.text


def test_each_piece_can_be_turned_off(
    shared_server: TrackioServer, certs: Certificates, tmp_path: Path
) -> None:
    with NginxGateway(
        shared_server.port,
        certs,
        tmp_path / "gw",
        mtls=False,
        basic_auth=False,
        access_header=False,
    ) as open_gateway:
        assert open_gateway.headers == {}
        config = open_gateway.config(open_gateway.port)
        assert "ssl_verify_client" not in config and "auth_basic" not in config
        assert "$http_x_access_token" not in config
        with httpx.Client(verify=certs.ssl_context(None), trust_env=False) as client:
            response = client.get(f"{open_gateway.url}version")
    assert response.status_code == 200 and response.json()["api_version"] == 1


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("expired", "certificate has expired"),
        ("wrong-host", "IP address mismatch, certificate is not valid for '127.0.0.1'"),
    ],
)
def test_the_server_certificate_variants_fail_verification_as_named(
    shared_server: TrackioServer, certs: Certificates, tmp_path: Path, variant: str, message: str
) -> None:
    with (
        NginxGateway(shared_server.port, certs, tmp_path / "gw", server_cert=variant) as gw,
        job(gw) as client,
        pytest.raises(httpx.ConnectError) as error,
    ):
        client.get(f"{gw.url}version")
    assert message in str(error.value)


def test_the_forward_proxy_tunnels_https_to_the_gateway(gateway: NginxGateway) -> None:
    with ForwardProxy() as proxy, job(gateway, proxy=proxy.url) as client:
        first = client.get(f"{gateway.url}version")
        second = client.get(f"{gateway.url}version")  # the same tunnel, kept alive
    assert first.status_code == second.status_code == 200
    assert proxy.connects == [f"127.0.0.1:{gateway.port}"]
    assert proxy.requests == [] and proxy.refused == []


def test_the_forward_proxy_passes_absolute_form_http_requests(
    shared_server: TrackioServer,
) -> None:
    with ForwardProxy() as proxy, httpx.Client(proxy=proxy.url, trust_env=False) as client:
        version = client.get(f"{shared_server.url}/version")
        runs = client.post(
            f"{shared_server.url}/api/get_runs_for_project", json={"args": ["nothing-here"]}
        )
    assert version.status_code == 200 and version.json()["api_version"] == 1
    assert runs.status_code == 200
    assert proxy.requests == [
        f"{shared_server.url}/version",
        f"{shared_server.url}/api/get_runs_for_project",
    ]
    assert proxy.connects == []


def test_the_forward_proxy_reaches_only_the_loopback() -> None:
    with ForwardProxy() as proxy, socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        sock.sendall(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        answer = sock.recv(1024)
    assert answer.startswith(b"HTTP/1.1 403")
    assert proxy.refused == ["example.com:443"] and proxy.connects == []


def test_the_forward_proxy_stops_cleanly(gateway: NginxGateway) -> None:
    proxy = ForwardProxy()
    with job(gateway, proxy=proxy.url) as client:
        assert client.get(f"{gateway.url}version").status_code == 200
        proxy.stop()  # with the tunnel still open
    assert not proxy._thread.is_alive()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()


def test_without_nginx_the_tests_skip_and_under_ci_they_fail(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(nginx, "NGINX", "/nonexistent/nginx")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=re.escape(nginx.MISSING)):
        nginx.require_nginx()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=re.escape(nginx.MISSING)):
        nginx.require_nginx()
