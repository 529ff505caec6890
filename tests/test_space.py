"""A Hugging Face Space target against a real `trackio show` running as a Space runs it.

The server runs with ``SYSTEM=spaces`` and the Space's own ``HF_TOKEN``: a bearer token equal to
it is accepted without the Hub; any other is checked with the Hub, here a loopback stand-in that
refuses every token (the real Hub cannot be reached from the tests). The client reaches the
Space's ``https://owner-name.hf.space`` through ``SpaceRouter``, which only takes that host to the
loopback server: the client's own path, headers and tokens are what a real Space would get.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import (
    TOKEN,
    CaptureServer,
    SpaceRouter,
    TrackioServer,
    assert_each_step_once,
)
from trackio_integrations import TrackioAuthError, TrackioClient, client
from trackio_integrations.cli import commands as cli
from trackio_integrations.cli import sync as cli_sync
from trackio_integrations.core.spool import Spool
from trackio_integrations.core.target import space_url_for
from trackio_integrations.core.transport import Transport

SPACE = "alice/demo_space"  # served at https://alice-demo-space.hf.space
SPACE_HOST = "alice-demo-space.hf.space"
SPACE_HF_TOKEN = "hf_the_spaces_own_token_4d2c"
WRITE_SECRET = "write-token-for-a-self-hosted-server-9e1f"


@pytest.fixture(scope="module")
def hub() -> Iterator[CaptureServer]:
    """Stands in for huggingface.co: no token has write access to the Space (HTTP 401)."""
    stand_in = CaptureServer(respond=lambda path, body: (401, {"error": "Invalid credentials"}))
    stand_in.start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory, hub: CaptureServer) -> Iterator[TrackioServer]:
    server = TrackioServer(
        tmp_path_factory.mktemp("space") / "data",
        space=SPACE,
        hf_token=SPACE_HF_TOKEN,
        hub_url=hub.url,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def router(space: TrackioServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SpaceRouter]:
    """Every connection the client and the CLI open goes through the router."""
    routed = SpaceRouter(space.port)

    def through_router(target: Any, **options: Any) -> Transport:
        return Transport(target, **{**options, "transport": routed})

    monkeypatch.setattr(client, "Transport", through_router)
    monkeypatch.setattr(cli, "Transport", through_router)
    monkeypatch.setattr(cli_sync, "Transport", through_router)  # `sync` lives in cli/sync.py
    yield routed
    routed.close()


@pytest.fixture
def server_settings_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A self-hosted server and its write token are set as well: the Space must win, alone."""
    monkeypatch.setenv("TRACKIO_SERVER_URL", f"http://127.0.0.1:9?write_token={WRITE_SECRET}")
    monkeypatch.setenv("TRACKIO_WRITE_TOKEN", WRITE_SECRET)


def test_points_reach_the_space_with_its_hf_token_and_never_a_write_token(
    space: TrackioServer,
    router: SpaceRouter,
    server_settings_too: None,
    project: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACKIO_SPACE_ID", SPACE)
    monkeypatch.setenv("HF_TOKEN", SPACE_HF_TOKEN)
    with pytest.warns(UserWarning, match="the Space wins"):
        run = TrackioClient(project, config={"lr": 0.1})
    assert run.target.url == f"https://{SPACE_HOST}" == space_url_for(SPACE)
    for step in range(20):
        run.log({"loss": 1 / (step + 1)}, step=step)
    assert run.finish(timeout=30)

    assert_each_step_once(space, project, run.name, "loss", 20)
    assert space.configs(project)[run.run_id]["lr"] == 0.1
    assert {r.path.split("/")[2] for r in router.requests} == {SPACE_HOST}
    assert all(r.headers["authorization"] == f"Bearer {SPACE_HF_TOKEN}" for r in router.requests)
    assert not any("x-trackio-write-token" in r.headers for r in router.requests)
    assert WRITE_SECRET not in router.sent()


def test_a_wrong_hf_token_gets_the_space_message_and_stops_before_training(
    space: TrackioServer,
    hub: CaptureServer,
    router: SpaceRouter,
    project: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from transformers import Trainer, TrainingArguments

    from examples.transformers_trainer import TokenData, tiny_model
    from trackio_integrations import TrackioCallback

    monkeypatch.setenv("HF_TOKEN", "hf_someone_elses_token")
    arguments = TrainingArguments(
        str(tmp_path / "out"), max_steps=4, report_to="none", use_cpu=True, disable_tqdm=True
    )
    trainer = Trainer(
        model=tiny_model(),
        args=arguments,
        train_dataset=TokenData(16),
        callbacks=[TrackioCallback(project, space_id=SPACE)],
    )
    with pytest.raises(TrackioAuthError, match="refused the Hugging Face token") as raised:
        trainer.train()
    assert "HF_TOKEN" in str(raised.value) and "hf_someone_elses_token" not in str(raised.value)
    assert trainer.state.global_step == 0
    assert space.runs(project) == []
    # The Space asked the Hub about the token it did not know.
    asked = [r for r in hub.requests if "/auth-check/write" in r.path]
    assert asked and "Bearer hf_someone_elses_token" in asked[-1].headers.values()


def test_the_hf_token_never_reaches_a_self_hosted_server(
    shared_server: TrackioServer,
    router: SpaceRouter,
    project: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_TOKEN", SPACE_HF_TOKEN)
    with TrackioClient(project, server_url=shared_server.write_url) as run:
        for step in range(5):
            run.log({"loss": float(step)}, step=step)
    assert_each_step_once(shared_server, project, run.name, "loss", 5)
    assert router.requests and {r.path.split("/")[2] for r in router.requests} == {
        f"127.0.0.1:{shared_server.port}"
    }
    assert all(r.headers["x-trackio-write-token"] == TOKEN for r in router.requests)
    assert not any("authorization" in r.headers for r in router.requests)
    assert SPACE_HF_TOKEN not in router.sent()


def space_spool(root: Path, project: str, points: int) -> None:
    """What a run on the Space leaves behind when it dies before delivering."""
    target = {"kind": "space", "url": space_url_for(SPACE), "space_id": SPACE, "trackio_dir": None}
    meta = {"writer": "space0001", "target": target, "project": project, "run": "r"}
    spool = Spool.create(root, "space0001", meta)
    for step in range(points):
        line = f'{{"project":"{project}","run":"r","run_id":"rid","step":{step},'
        spool.append(line.encode() + b'"log_id":"sp-%d","metrics":{"loss":%d}}\n' % (step, step))
    spool.close()


def test_sync_and_doctor_use_the_hf_token_for_a_space(
    space: TrackioServer,
    router: SpaceRouter,
    server_settings_too: None,
    project: str,
    spool_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    space_spool(spool_dir, project, 6)
    monkeypatch.setenv("HF_TOKEN", "hf_someone_elses_token")
    assert cli.main(["sync", "--retries", "1"]) == 1
    out = capsys.readouterr().out
    assert "Left 6 point(s) for Space" in out and "--hf-token" in out

    assert cli.main(["sync", "--hf-token", SPACE_HF_TOKEN]) == 0
    assert "Sent 6 of 6 point(s)" in capsys.readouterr().out
    assert_each_step_once(space, project, "r", "loss", 6)

    monkeypatch.setenv("HF_TOKEN", SPACE_HF_TOKEN)
    monkeypatch.setenv("TRACKIO_SPACE_ID", SPACE)
    with pytest.warns(UserWarning, match="the Space wins"):
        assert cli.main(["doctor"]) == 0
    assert "Write access: OK" in capsys.readouterr().out
    assert not any("x-trackio-write-token" in r.headers for r in router.requests)
    assert WRITE_SECRET not in router.sent()


def test_the_router_sends_nothing_off_this_machine(router: SpaceRouter) -> None:
    import httpx

    with (
        httpx.Client(transport=router) as http,
        pytest.raises(httpx.ConnectError, match="not reachable"),
    ):
        http.get("https://huggingface.co/api/whoami-v2")
