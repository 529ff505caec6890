"""A real company gateway for the tests: Debian's nginx in front of a real ``trackio show``.

- ``Certificates``: a private CA (trustme) and the PEM files a gateway and its clients use: the
  server's certificate (and a wrong-host and an expired variant), a client certificate for mTLS,
  and one from another CA that the gateway refuses.
- ``NginxGateway``: ``/usr/sbin/nginx`` on a free loopback port with TLS, mTLS, basic auth, an
  access header and the ``/trackio/`` sub-path; its ``server { }`` block is the one in
  docs/gateway.md, read from there and rendered, so the page shows what the tests run.
- ``ForwardProxy`` (tests/forward_proxy.py, importable from here): a loopback forward HTTP proxy
  (CONNECT tunnels and absolute-form requests) that counts what goes through it.

Loopback only: the gateway listens on 127.0.0.1, the proxy only connects to it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import trustme

from tests.forward_proxy import ForwardProxy
from tests.harness import REPO, free_port, wait_until

__all__ = ["Certificates", "ForwardProxy", "NginxGateway", "require_chromium", "require_nginx"]

NGINX = "/usr/sbin/nginx"
MISSING = "nginx is missing: apt-get install nginx-light"
DOCS_PAGE = REPO / "docs" / "gateway.md"
NGINX_FENCE = re.compile(r"^```nginx\n(.*?)^```", re.DOTALL | re.MULTILINE)
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
# The lines of the template that make up each piece carry one of these trailing comments.
PIECES = {"mtls": "# mTLS", "basic_auth": "# basic auth", "access_header": "# access header"}
SUB_PATH = "# sub-path"  # the lines a host name of trackio's own drops (with `location / {`)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_MISSING = "chromium is missing: apt-get install -y chromium"
ACCESS_HEADER = "X-Access-Token"
SERVER_CERTS = ("server", "wrong-host", "expired")


def require_nginx() -> str:
    """The nginx binary; else skip the test (on a developer's machine) or fail it (under CI)."""
    return _require(NGINX, MISSING)


def require_chromium() -> str:
    """Debian's chromium, for the dashboard behind the gateway; else skip (or fail under CI)."""
    return _require(CHROMIUM, CHROMIUM_MISSING)


def _require(binary: str, missing: str) -> str:
    if os.access(binary, os.X_OK):
        return binary
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(missing)
    pytest.skip(missing)


class Certificates:
    """A private CA and every certificate the gateway tests need, as PEM files in ``folder``.

    ``ca`` trusts the gateway; ``other_ca`` is a CA nothing here trusts. Server certificates
    (``server``, ``wrong-host`` for "wrong.example" only, ``expired``) and client certificates
    (``client`` from the CA, ``other-client`` from another CA) each have ``<name>.pem`` and
    ``<name>.key``; ``client-bundle.pem`` holds the client's certificate and key in one file.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        ca, other = trustme.CA(), trustme.CA()
        now = datetime.datetime.now(datetime.timezone.utc)
        self.ca = self._write_ca(ca, "ca.pem")
        self.other_ca = self._write_ca(other, "other-ca.pem")
        self._leaf(ca.issue_cert("127.0.0.1", "localhost"), "server")
        self._leaf(ca.issue_cert("wrong.example"), "wrong-host")
        expired = ca.issue_cert(
            "127.0.0.1",
            "localhost",
            not_before=now - datetime.timedelta(days=30),
            not_after=now - datetime.timedelta(days=1),
        )
        self._leaf(expired, "expired")
        client = ca.issue_cert("ml-job@corp.example", common_name="ml-job")
        self._leaf(client, "client")
        self._leaf(other.issue_cert("intruder@elsewhere.example"), "other-client")
        self.client_bundle = folder / "client-bundle.pem"
        self.client_bundle.write_bytes(
            self.cert("client").read_bytes() + self.key("client").read_bytes()
        )
        self.client_bundle.chmod(0o600)

    def _write_ca(self, ca: trustme.CA, name: str) -> Path:
        path = self.folder / name
        ca.cert_pem.write_to_path(str(path))
        return path

    def _leaf(self, cert: trustme.LeafCert, name: str) -> None:
        chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
        (self.folder / f"{name}.pem").write_bytes(chain)
        key = self.folder / f"{name}.key"
        key.write_bytes(cert.private_key_pem.bytes())
        key.chmod(0o600)

    def cert(self, name: str) -> Path:
        """``<name>.pem``: server, wrong-host, expired, client, other-client."""
        return self.folder / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.folder / f"{name}.key"

    @property
    def client_cert(self) -> Path:
        return self.cert("client")

    @property
    def client_key(self) -> Path:
        return self.key("client")

    def ssl_context(self, client: str | None = "client", ca: Path | None = None) -> ssl.SSLContext:
        """A client-side context (for httpx's ``verify=``) trusting ``ca`` (default: ours) and
        presenting ``client``'s certificate (``None``: none)."""
        context = ssl.create_default_context(cafile=str(ca or self.ca))
        if client is not None:
            context.load_cert_chain(self.cert(client), self.key(client))
        return context


def server_block() -> str:
    """The ``server { }`` template of docs/gateway.md (its one ``nginx`` fence)."""
    blocks = NGINX_FENCE.findall(DOCS_PAGE.read_text())
    if len(blocks) != 1:
        raise AssertionError(f"docs/gateway.md must hold one nginx block, it holds {len(blocks)}")
    return str(blocks[0])


def render(template: str, values: dict[str, str], off: tuple[str, ...] = ()) -> str:
    """Fill every ``{placeholder}`` and drop the lines of each piece in ``off``."""
    markers = [PIECES[piece] for piece in off]
    lines = [line for line in template.splitlines() if not any(m in line for m in markers)]
    text = "\n".join(lines) + "\n"
    missing = sorted(set(PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise AssertionError(f"no value for {missing} in the nginx template")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


# The test-only wrapper around the docs' server block: one process, every path in our folder.
_WRAPPER = """\
daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 256; }}
http {{
    default_type application/octet-stream;
    log_format gateway '$remote_addr "$request" $status $request_length $body_bytes_sent '
                       'user="$remote_user" client="$ssl_client_s_dn" verify=$ssl_client_verify';
    access_log {work}/access.log gateway;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
{server}}}
"""


def htpasswd_line(user: str, password: str) -> str:
    """``user:<apr1 hash>`` as ``openssl passwd -apr1`` makes it (the password on stdin)."""
    digest = subprocess.run(
        ["openssl", "passwd", "-apr1", "-stdin"],
        input=password,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    return f"{user}:{digest}\n"


class NginxGateway:
    """nginx on a free loopback port in front of ``trackio show`` on ``trackio_port``.

    ``url`` is ``https://127.0.0.1:<port>/trackio/``. Each piece can be turned off (``mtls``,
    ``basic_auth``, ``access_header``); ``server_cert`` picks the certificate it serves (server,
    wrong-host, expired). The credentials a client needs are ``user``/``password``,
    ``header_name``/``header_value``, and ``certs`` (trust ``certs.ca``, present
    ``certs.client_cert`` + ``certs.client_key``). ``access_log`` is nginx's log so far;
    ``logged(fragment)`` waits for a request's line (written just after its answer).
    """

    def __init__(
        self,
        trackio_port: int,
        certs: Certificates,
        work: Path,
        *,
        mtls: bool = True,
        basic_auth: bool = True,
        access_header: bool = True,
        server_cert: str = "server",
        max_body: str = "64m",
        user: str = "ml-team",
        password: str | None = None,
        header_value: str | None = None,
        sub_path: bool = True,
    ) -> None:
        if server_cert not in SERVER_CERTS:
            raise ValueError(f"server_cert must be one of {SERVER_CERTS}")
        self.trackio_port = trackio_port
        self.certs = certs
        self.work = work
        self.pieces = {"mtls": mtls, "basic_auth": basic_auth, "access_header": access_header}
        self.server_cert = server_cert
        self.max_body = max_body
        self.user = user
        # characters that a URL must percent-encode, and values unique to this gateway, so a
        # test can look for them in any output
        self.password = password or f"p@ss:w/rd%{secrets.token_hex(4)}"
        self.header_name = ACCESS_HEADER
        self.header_value = header_value or f"gw-{secrets.token_hex(8)}"
        self.sub_path = sub_path  # False: the host name is trackio's own (docs: drop `sub-path`)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def prefix(self) -> str:
        return "/trackio/" if self.sub_path else "/"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{self.prefix}"

    @property
    def headers(self) -> dict[str, str]:
        """The access header a client must send (empty when that piece is off)."""
        return {self.header_name: self.header_value} if self.pieces["access_header"] else {}

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    @property
    def url_with_auth(self) -> str:
        """``url`` with ``user:password@`` (percent-encoded), as a user would write it."""
        user, password = (quote(part, safe="") for part in self.auth)
        return f"https://{user}:{password}@127.0.0.1:{self.port}{self.prefix}"

    def client_env(self, write_token: str) -> dict[str, str]:
        """The environment of a job that logs through this gateway (docs/gateway.md's names)."""
        env = {
            "TRACKIO_SERVER_URL": self.url_with_auth if self.pieces["basic_auth"] else self.url,
            "TRACKIO_WRITE_TOKEN": write_token,
            "TRACKIO_CA_BUNDLE": str(self.certs.ca),
        }
        if self.pieces["mtls"]:
            env["TRACKIO_CLIENT_CERT"] = str(self.certs.client_cert)
            env["TRACKIO_CLIENT_KEY"] = str(self.certs.client_key)
        if self.pieces["access_header"]:
            env["TRACKIO_HEADERS"] = json.dumps(self.headers)
        return env

    @property
    def access_log(self) -> str:
        path = self.work / "access.log"
        return path.read_text() if path.exists() else ""

    def logged(self, fragment: str, timeout: float = 10.0) -> str:
        """The access log's last line holding ``fragment``, waiting for it: nginx writes a
        request's line just after its answer, so a client may read the answer first."""

        def line() -> str | None:
            found = [text for text in self.access_log.splitlines() if fragment in text]
            return found[-1] if found else None

        return str(wait_until(line, timeout, 0.02))

    @property
    def error_log(self) -> str:
        path = self.work / "error.log"
        return path.read_text() if path.exists() else ""

    def config(self, port: int) -> str:
        """The whole nginx.conf: the docs' server block rendered inside the test wrapper."""
        htpasswd = self.work / "htpasswd"
        values = {
            "listen": f"127.0.0.1:{port}",
            "server_name": "127.0.0.1 localhost",
            "server_cert": str(self.certs.cert(self.server_cert)),
            "server_key": str(self.certs.key(self.server_cert)),
            "client_ca": str(self.certs.ca),
            "htpasswd": str(htpasswd),
            "access_token": self.header_value,
            "max_body": self.max_body,
            "trackio_port": str(self.trackio_port),
        }
        off = tuple(piece for piece, on in self.pieces.items() if not on)
        template = server_block()
        if not self.sub_path:  # as the docs say: drop the `sub-path` lines, `location / {`
            lines = [line for line in template.splitlines() if SUB_PATH not in line]
            template = "\n".join(lines).replace("location /trackio/ {", "location / {")
        server = render(template, values, off)
        server = "".join(f"    {line}\n" if line else "\n" for line in server.splitlines())
        return _WRAPPER.format(work=self.work, server=server)

    def start(self, timeout: float = 20.0) -> None:
        binary = require_nginx()
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "htpasswd").write_text(htpasswd_line(self.user, self.password))
        for attempt in range(5):  # another process may take the free port before nginx binds it
            port = free_port()
            conf = self.work / "nginx.conf"
            conf.write_text(self.config(port))
            errors = (self.work / "error.log").open("ab")
            self.proc = subprocess.Popen(
                [binary, "-p", str(self.work), "-c", str(conf), "-e", str(self.work / "error.log")],
                stdout=errors,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            errors.close()
            self.port = port
            if self._wait_for_tls(timeout):
                return
            if "Address already in use" not in self.error_log or attempt == 4:
                break
        self.stop()
        raise RuntimeError(f"nginx did not start:\n{self.error_log[-3000:]}")

    def _wait_for_tls(self, timeout: float) -> bool:
        """True once a TLS handshake succeeds on the port; False if nginx exited first."""
        probe = ssl.create_default_context()
        probe.check_hostname = False
        probe.verify_mode = ssl.CERT_NONE  # any of the certificates, expired included
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as raw,
                probe.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> NginxGateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
