"""The dashboard behind docs/gateway.md's nginx: a person opens it in a browser and sees the run.

Headless Debian ``chromium`` through the real nginx of tests/nginx.py, in front of a real
``trackio show``: the page's DOM after its scripts ran must name the project's run, and every
file and API call the page makes must have been answered through the gateway (none at the host's
root). Both layouts of the page are run: the sub-path as written, and the host name of trackio's
own that the page recommends (the ``sub-path`` lines dropped, ``location / {``).

A browser brings no client certificate, access header or basic auth here (people log in through
an SSO proxy, see the page): those pieces are off, TLS from the test CA stays on.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import TrackioServer, run_python
from tests.nginx import Certificates, NginxGateway, require_chromium, require_nginx

RUN = "dashboard-behind-the-gateway"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(params=[True, False], ids=["sub-path", "own-host-name"])
def gateway(
    request: pytest.FixtureRequest,
    shared_server: TrackioServer,
    certs: Certificates,
    tmp_path: Path,
) -> Iterator[NginxGateway]:
    require_nginx()
    off = {"mtls": False, "basic_auth": False, "access_header": False}
    with NginxGateway(
        shared_server.port, certs, tmp_path / "nginx", sub_path=request.param, **off
    ) as gw:
        yield gw


def page_after_scripts(url: str, profile: Path) -> str:
    """The DOM of ``url`` once its scripts ran (chromium's virtual time lets its fetches land)."""
    done = subprocess.run(
        [
            require_chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--ignore-certificate-errors",  # the gateway's certificate is from the test CA
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_dashboard_behind_the_gateway_shows_the_run(
    gateway: NginxGateway, shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    logged = run_python(
        "from trackio_integrations import TrackioClient\n"
        f"with TrackioClient({project!r}, name={RUN!r}) as run:\n"
        "    for step in range(3):\n"
        "        run.log({'train/loss': 1 / (step + 1)}, step=step)\n",
        env=gateway.client_env(shared_server.token),
    )
    assert logged.returncode == 0, logged.stderr
    assert shared_server.wait_for_steps(project, RUN, "train/loss", 3) == [0, 1, 2]

    dom = page_after_scripts(f"{gateway.url}?project={project}", tmp_path / "chromium")
    assert RUN in dom, dom[-3000:]
    # what the page asked for: its script, its styles and its API, all through the prefix
    asked = re.findall(r'"[A-Z]+ (\S+) HTTP/[\d.]+" (\d+)', gateway.access_log)
    prefix = gateway.prefix
    for kind in ("assets/", "api/get_runs_for_project", "api/get_logs_batch"):
        answered = [code for path, code in asked if path.startswith(prefix + kind)]
        assert answered and set(answered) == {"200"}, (kind, asked)
    at_root = [path for path, _ in asked if not path.startswith(prefix)]
    # trackio's own code asks for its logo images at the root even with a root path
    assert all("trackio_logo" in path for path in at_root), at_root
