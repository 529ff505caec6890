"""Code written for accelerate's built-in trackio tracker runs on ours: the unwrapped tracker is
our client, and it answers to trackio's ``Run`` names, with the same meaning."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Iterator

import pytest
import trackio
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState

from tests.harness import TOKEN, TrackioServer
from trackio_integrations import TrackioClient


@pytest.fixture(autouse=True)
def fresh_accelerate_state() -> Iterator[None]:
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def trackio_run_public_names() -> dict[str, inspect.Signature | None]:
    """trackio's ``Run``: its public methods (with their signatures) and the public attributes
    its ``__init__`` sets (``None``). A trackio release that adds one makes this test fail."""
    names: dict[str, inspect.Signature | None] = {}
    for name, value in vars(trackio.Run).items():
        if not name.startswith("_"):
            names[name] = inspect.signature(value) if callable(value) else None
    tree = ast.parse(textwrap.dedent(inspect.getsource(trackio.Run.__init__)))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
            and not node.attr.startswith("_")
        ):
            names.setdefault(node.attr, None)
    return names


def test_the_client_has_every_public_name_of_trackios_run() -> None:
    theirs = trackio_run_public_names()
    # What trackio 0.43 has; a new name shows up here first (then give the client its meaning).
    assert sorted(theirs) == [
        "alert",
        "config",
        "finish",
        "group",
        "id",
        "link_artifact",
        "log",
        "log_artifact",
        "log_system",
        "name",
        "project",
        "url",
        "use_artifact",
    ]
    client = TrackioClient("surface", mode="disabled")
    for name, signature in theirs.items():
        assert hasattr(client, name), name
        if signature is None:
            assert not callable(getattr(client, name)), name
            continue
        ours = inspect.signature(getattr(TrackioClient, name)).parameters
        # Every argument trackio's method takes, by its name, in its place.
        for position, parameter in enumerate(signature.parameters.values()):
            assert parameter.name in ours, f"{name}({parameter.name}=...)"
            if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
                assert list(ours).index(parameter.name) == position, f"{name}({parameter.name})"


def test_the_unwrapped_accelerate_tracker_reads_and_writes_like_trackios_run(
    shared_server: TrackioServer, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKIO_SERVER_URL", shared_server.url)
    monkeypatch.setenv("TRACKIO_WRITE_TOKEN", TOKEN)
    accelerator = Accelerator(cpu=True, log_with="trackio-integrations")
    options = {"name": "unwrapped", "group": "sweep-7"}
    accelerator.init_trackers(
        project, config={"lr": 0.1}, init_kwargs={"trackio-integrations": options}
    )
    run = accelerator.get_tracker("trackio-integrations", unwrap=True)

    # Written for trackio's Run: the same names, the same meaning.
    assert (run.project, run.name, run.group, run.url) == (
        project,
        "unwrapped",
        "sweep-7",
        shared_server.url,
    )
    assert run.config["lr"] == 0.1
    run.log({"eval/score": 0.5}, step=3)
    run.alert("checked", "from the unwrapped run", step=3)
    run.finish()

    assert run.id == run.run_id
    assert [r["name"] for r in shared_server.runs(project)] == ["unwrapped"]
    assert shared_server.wait_for_steps(project, "unwrapped", "eval/score", 1) == [3]
    assert shared_server.configs(project)[run.id]["_Group"] == "sweep-7"
