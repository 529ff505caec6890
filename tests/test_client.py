"""TrackioClient against a real ``trackio show``: what a user logs is what the dashboard reads."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import logging
import math
import warnings
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from tests.harness import TOKEN, CaptureServer, TrackioServer, own, run_python, wait_until
from trackio_integrations import (
    TrackioAuthError,
    TrackioClient,
    TrackioConfigError,
    TrackioError,
    TrackioServerError,
)


def test_public_api_is_the_four_classes_and_the_errors() -> None:
    import trackio_integrations as package

    classes = ("TrackioClient", "TrackioCallback", "TrackioLogger", "TrackioTracker")
    errors = {
        "TrackioError": Exception,
        "TrackioConfigError": ValueError,
        "TrackioAuthError": PermissionError,
        "TrackioServerError": RuntimeError,
        "TrackioGatewayError": PermissionError,  # a gateway refused us, not the write token
        "TrackioUnavailableError": RuntimeError,  # the server is away for now
    }
    media = ("Image", "Audio", "Video", "Table", "Histogram", "Markdown", "Html", "Trace")
    functions = ("install", "uninstall")
    settings = ("HealthChecks",)
    assert sorted(package.__all__) == sorted([*classes, *errors, *media, *functions, *settings])
    for name in (*classes, *media):
        value = getattr(package, name)
        assert isinstance(value, type) and value.__name__ == name
    for name, builtin in errors.items():  # catchable as ours, or as what Python users expect
        error = getattr(package, name)
        assert issubclass(error, TrackioError) and issubclass(error, builtin)


def test_importing_the_package_loads_nothing_heavy() -> None:
    heavy = ["torch", "transformers", "lightning", "accelerate", "trackio", "httpx", "numpy"]
    heavy += ["PIL", "pandas"]
    result = run_python(
        f"import sys, trackio_integrations\nprint([m for m in {heavy!r} if m in sys.modules])"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_run_on_local_storage_never_loads_the_network_stack() -> None:
    # Provenance on (the default): its thread and the local Files upload run before finish ends.
    network = ["httpx", "httpcore", "h11", "ssl", "certifi", "truststore"]
    code = (
        "import sys\nfrom trackio_integrations import TrackioClient\n"
        "with TrackioClient('local-only') as run:\n    run.log({'loss': 1.0}, step=0)\n"
        f"print(run.target.kind, [m for m in {network!r} if m in sys.modules])"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "local []"


def test_a_run_arrives_with_steps_values_and_config(
    shared_server: TrackioServer, project: str
) -> None:
    with TrackioClient(project, server_url=shared_server.write_url, config={"lr": 0.1}) as run:
        for step in range(50):
            run.log({"train/loss": 1.0 / (step + 1), "acc": step / 50}, step=step)
        assert run.flush(timeout=30)
    assert [r["name"] for r in shared_server.runs(project)] == [run.name]
    values = shared_server.values(project, run.name, "train/loss")
    assert [v["step"] for v in values] == list(range(50))
    assert values[9]["value"] == pytest.approx(0.1)
    assert shared_server.configs(project)[run.run_id]["lr"] == 0.1


def test_every_value_kind_reaches_the_server(shared_server: TrackioServer, project: str) -> None:
    class Weird:
        pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with TrackioClient(project, server_url=shared_server.write_url) as run:
            run.log(
                {
                    "py_float": 0.5,
                    "py_int": 3,
                    "flag": True,
                    "note": "hello",
                    "nothing": None,
                    "np_f32": np.float32(0.25),
                    "np_i64": np.int64(9),
                    "t0d": torch.tensor(1.5),
                    "t1": torch.tensor([2.5]),
                    "nan": math.nan,
                    "inf": math.inf,
                    7: 7.0,
                    "step": 11,
                    "nested": {"a": 1, "b": {"c": 2}},
                    "weird": Weird(),
                    "vector": torch.ones(4),
                },
                step=0,
            )
            assert run.flush(timeout=60)
    (row,) = shared_server.wait_for_logs(project, run.name, 1)
    assert row["py_float"] == 0.5 and row["py_int"] == 3 and row["flag"] is True
    assert row["note"] == "hello" and row["np_f32"] == 0.25 and row["np_i64"] == 9
    assert row["t0d"] == 1.5 and row["t1"] == 2.5
    assert row["nan"] is None and row["inf"] is None  # sent as "NaN"/"Infinity"; reads give null
    assert row["7"] == 7.0 and row["__step"] == 11 and row["step"] == 0
    assert row["nested/a"] == 1 and row["nested/b/c"] == 2
    assert "weird" not in row and "vector" not in row
    messages = [str(w.message) for w in caught]
    assert any("'weird'" in m for m in messages) and any("'vector'" in m for m in messages)
    assert any("'step'" in m and "__step" in m for m in messages)
    # one warning per key, however often it happens
    assert sum("'weird'" in m for m in messages) == 1


def test_what_goes_over_the_wire(capture: CaptureServer, project: str) -> None:
    with TrackioClient(project, server_url=f"{capture.url}/?write_token=WSECRET") as run:
        run.log({"x": float("nan"), "y": float("-inf")}, step=3)
    (entry,) = capture.bulk_logs()
    assert entry["metrics"] == {"x": "NaN", "y": "-Infinity"}
    assert entry["step"] == 3 and entry["project"] == project and entry["run"] == run.name
    assert entry["run_id"] == run.run_id and entry["log_id"]
    for request in capture.requests:
        assert "WSECRET" not in request.path
        assert b"WSECRET" not in request.body
        if request.method == "POST":
            assert request.headers["X-Trackio-Write-Token"] == "WSECRET"
            assert "Authorization" not in request.headers


def test_hf_token_never_reaches_a_self_hosted_server(
    capture: CaptureServer, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_NEVER_SEND")
    with TrackioClient(
        project, server_url=capture.url, hf_token="hf_ALSO_NEVER", write_token="w"
    ) as run:
        run.log({"a": 1})
    assert capture.requests
    for request in capture.requests:
        raw = json.dumps(request.headers) + request.path + request.body.decode()
        assert "hf_NEVER_SEND" not in raw and "hf_ALSO_NEVER" not in raw


def test_a_space_gets_the_hf_token_as_bearer_and_no_write_token(project: str) -> None:
    # A Hugging Face Space cannot exist here: this is the one place a mock stands in for it.
    seen: list[httpx.Request] = []

    def space(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/version":
            return httpx.Response(200, json={"version": "0.43.0", "api_version": 1})
        return httpx.Response(200, json={"data": None})

    with TrackioClient(
        project,
        space_id="Alice/My_Space",
        hf_token="hf_SPACE",
        write_token="w_IGNORED",
        _http_transport=httpx.MockTransport(space),
    ) as run:
        run.log({"a": 1}, step=0)
    hosts = {r.url.host for r in seen}
    assert hosts == {"alice-my-space.hf.space"}
    posts = [r for r in seen if r.method == "POST"]
    assert posts and all(r.headers["Authorization"] == "Bearer hf_SPACE" for r in posts)
    assert all("x-trackio-write-token" not in r.headers for r in seen)
    assert all("hf_SPACE" not in str(r.url) and b"hf_SPACE" not in r.content for r in seen)


def test_a_wrong_token_fails_fast_with_advice(shared_server: TrackioServer, project: str) -> None:
    with pytest.raises(TrackioAuthError) as info:
        TrackioClient(project, server_url=shared_server.url, write_token="WRONG-TOKEN")
    assert isinstance(info.value, PermissionError) and isinstance(info.value, TrackioError)
    message = str(info.value)
    assert "TRACKIO_WRITE_TOKEN" in message and "WRONG-TOKEN" not in message
    assert shared_server.runs(project) == []


def test_a_missing_token_fails_fast(shared_server: TrackioServer, project: str) -> None:
    with pytest.raises(TrackioAuthError):
        TrackioClient(project, server_url=shared_server.url)


def test_write_token_from_environment(
    shared_server: TrackioServer, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKIO_SERVER_URL", shared_server.url)
    monkeypatch.setenv("TRACKIO_WRITE_TOKEN", TOKEN)
    monkeypatch.setenv("TRACKIO_PROJECT", project)
    with TrackioClient() as run:
        run.log({"a": 1.0}, step=0)
        assert run.flush(timeout=60)
    assert shared_server.wait_for_steps(project, run.name, "a", 1) == [0]
    assert shared_server.values(project, run.name, "a")[0]["value"] == 1.0


def test_an_unknown_api_version_is_a_clear_error(capture: CaptureServer, project: str) -> None:
    capture.api_version = 2
    with pytest.raises(TrackioServerError, match=r"API version 2"):
        TrackioClient(project, server_url=capture.url)


def test_an_unreachable_server_warns_and_training_goes_on(project: str, tmp_path: Path) -> None:
    from tests.harness import free_port

    with pytest.warns(UserWarning, match="not reachable"):
        run = TrackioClient(
            project, server_url=f"http://127.0.0.1:{free_port()}", system_metrics=False
        )
    run.log({"a": 1.0})
    assert run.pending == 1
    assert run.finish(timeout=0.5) is False


def test_no_project_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="TRACKIO_PROJECT") as info:
        TrackioClient()
    assert isinstance(info.value, TrackioConfigError)


def test_bad_url_is_a_value_error_at_construction(project: str) -> None:
    with pytest.raises(ValueError, match=r"write_token=\*\*\*"):
        TrackioClient(project, server_url="localhost:7860?write_token=SECRET")


def test_run_names_are_readable_and_unique_and_ids_stable(capture: CaptureServer) -> None:
    runs = [TrackioClient("p", server_url=capture.url) for _ in range(20)]
    names = {r.name for r in runs}
    assert len(names) == 20
    assert all(n.count("-") == 2 for n in names)
    ids = {r.run_id for r in runs}
    assert len(ids) == 20
    again = TrackioClient("p", name="fixed", run_id="my-run-id", server_url=capture.url)
    assert (again.name, again.run_id) == ("fixed", "my-run-id")
    for r in [*runs, again]:
        r.finish()


def test_no_token_in_repr_logs_or_warnings(
    capture: CaptureServer, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = TrackioClient(
            project, server_url=f"{capture.url}?write_token=WSECRET", hf_token="HSECRET"
        )
        run.log({"step": 1, "bad": object()})
        capture.respond = lambda path, body: (503, {"error": "busy"})  # an error to report
        run.log({"loss": 1.0}, step=1)
        # The sender has met the error before finish() reports it: it sends up to a second after
        # log(), and finish's one second alone may end before a slow machine's reply. A retry
        # of the point comes only after the reply was read.
        wait_until(lambda: sum(b'"loss"' in r.body for r in capture.requests) >= 2, 30.0)
        assert run.finish(timeout=1.0) is False
    messages = [str(w.message) for w in caught]
    # the places a token could leak all said something ...
    assert any("'bad'" in m for m in messages) and any("__step" in m for m in messages)
    assert (
        "you logged" in caplog.text
        and "not yet delivered" in caplog.text
        and "(busy)" in caplog.text
    )
    assert repr(run).endswith(f"target=server {capture.url})")
    assert str(run.target) == f"server {capture.url}"
    # ... while the token was in use: the server got it, in the header only
    posts = [r for r in capture.requests if r.path == "/api/bulk_log"]
    assert posts and all(r.headers["X-Trackio-Write-Token"] == "WSECRET" for r in posts)
    shown = repr(run) + str(run.target) + caplog.text + " ".join(messages)
    assert "WSECRET" not in shown and "HSECRET" not in shown


class Stage(enum.Enum):
    PRETRAIN = 1


@dataclasses.dataclass
class Hparams:
    lr: float = 3e-4
    data: Path = Path("/data/train")
    stage: Stage = Stage.PRETRAIN


def test_config_is_json_safe_and_updates_reach_the_server(
    shared_server: TrackioServer, project: str
) -> None:
    ns = argparse.Namespace(epochs=3, hp=Hparams())
    run = TrackioClient(
        project, server_url=shared_server.write_url, config={"ns": ns, "w": torch.tensor([1, 2])}
    )
    run.log({"loss": 1.0}, step=0)
    run.flush(timeout=30)
    config = own(shared_server.configs(project)[run.run_id])
    assert config == {
        "_Group": None,
        "ns": {"epochs": 3, "hp": {"lr": 3e-4, "data": "/data/train", "stage": 1}},
        "w": [1, 2],
    }
    run.log({"loss": 0.5}, step=1)
    run.update_config({"best": 0.5, "when": Path("/ckpt")})  # after points were sent
    assert run.finish(timeout=60)
    config = shared_server.wait_for_config(project, run.run_id, best=0.5)
    assert config["best"] == 0.5 and config["when"] == "/ckpt" and config["ns"]["epochs"] == 3
    assert shared_server.wait_for_steps(project, run.name, "loss", 2) == [0, 1]


def test_config_without_any_point_still_arrives(shared_server: TrackioServer, project: str) -> None:
    run = TrackioClient(project, server_url=shared_server.write_url, config={"only": "config"})
    assert run.finish(timeout=60)
    config = shared_server.wait_for_config(project, run.run_id, only="config")
    assert own(config) == {"only": "config", "_Group": None}


def test_config_updates_after_the_last_point_leave_no_row_without_a_metric(
    shared_server: TrackioServer, project: str
) -> None:
    run = TrackioClient(project, server_url=shared_server.write_url, config={"a": 1})
    run.log({"loss": 1.0}, step=0)
    run.log({"loss": 0.5}, step=1)
    assert run.flush(timeout=60)
    run.update_config({"checkpoint": "/ckpt/1"})
    assert run.flush(timeout=60)  # written alone: no point came after it
    run.update_config({"status": "success"})  # the last one, at finish
    run.update_config({"status": "success"})  # no change: nothing to send
    assert run.finish(timeout=60)
    config = shared_server.wait_for_config(project, run.run_id, status="success")
    assert own(config) == {"a": 1, "checkpoint": "/ckpt/1", "status": "success", "_Group": None}
    rows = shared_server.logs(project, run.name)
    assert [(row["step"], row["loss"]) for row in rows] == [(0, 1.0), (1, 0.5)]

    # A run that logs no point: its configs share one row with no metric.
    bare = TrackioClient(project, "bare", server_url=shared_server.write_url, config={"b": 1})
    assert bare.flush(timeout=60)
    bare.update_config({"status": "success"})
    assert bare.finish(timeout=60)
    assert own(shared_server.wait_for_config(project, bare.run_id, status="success")) == {
        "b": 1,
        "status": "success",
        "_Group": None,
    }
    assert len(shared_server.logs(project, "bare")) == 1


def test_finish_is_idempotent_and_log_after_finish_is_ignored(
    shared_server: TrackioServer, project: str
) -> None:
    run = TrackioClient(project, server_url=shared_server.write_url)
    run.log({"a": 1}, step=0)
    assert run.finish(timeout=60) is True
    assert run.finish() is True
    with pytest.warns(UserWarning, match="after finish"):
        run.log({"a": 2}, step=1)
    assert run.pending == 0
    assert shared_server.wait_for_steps(project, run.name, "a", 1) == [0]


def test_log_never_raises_into_the_training_loop(
    shared_server: TrackioServer, project: str
) -> None:
    run = TrackioClient(project, server_url=shared_server.write_url)
    thing = object()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.log(None)  # type: ignore[arg-type]
        run.log({"a": 1}, step="not a step")  # type: ignore[arg-type]
        run.log({"a": object(), "b": 2}, step=object())  # type: ignore[arg-type]
        run.update_config(thing)
    assert run.finish(timeout=60)
    # each bad input cost only itself, with a warning that says what was wrong
    messages = " ".join(str(w.message) for w in caught)
    for said in ("takes a mapping", "step must be an integer", "Metric 'a' was not logged"):
        assert said in messages
    config = shared_server.wait_for_config(project, run.run_id)
    assert own(config) == {"value": repr(thing), "_Group": None}
    rows = shared_server.wait_for_logs(project, run.name, 2)
    assert [(row["step"], row.get("a"), row.get("b")) for row in rows] == [
        (0, 1, None),  # the server assigned the step a bad one was given for
        (1, None, 2),
    ]


def test_steps_left_out_are_assigned_by_the_server(
    shared_server: TrackioServer, project: str
) -> None:
    with TrackioClient(project, server_url=shared_server.write_url) as run:
        for i in range(5):
            run.log({"a": i})
        assert run.flush(timeout=60)
    assert shared_server.wait_for_steps(project, run.name, "a", 5) == [0, 1, 2, 3, 4]
    assert [v["value"] for v in shared_server.values(project, run.name, "a")] == [0, 1, 2, 3, 4]


def test_a_config_update_rides_on_the_next_point_without_an_extra_row(
    shared_server: TrackioServer, project: str
) -> None:
    with TrackioClient(project, server_url=shared_server.write_url, config={"a": 1}) as run:
        run.log({"loss": 1.0}, step=0)
        run.update_config({"checkpoint": "/ckpt/1"})
        run.log({"loss": 0.5}, step=1)
        assert run.flush(timeout=60)
    rows = shared_server.wait_for_logs(project, run.name, 2)
    assert [(row["step"], row["loss"]) for row in rows] == [(0, 1.0), (1, 0.5)]
    assert own(shared_server.configs(project)[run.run_id]) == {
        "a": 1,
        "checkpoint": "/ckpt/1",
        "_Group": None,
    }
