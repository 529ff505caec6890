"""Run groups and the run's metadata on every entry point, against a real ``trackio show``: each
run's config holds ``_Group``, ``_Username`` and ``_Created`` as trackio's own client writes them,
so the dashboard's Group-by view and its Username column work for our runs too."""

from __future__ import annotations

import getpass
import sys
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import lightning as L
import pytest
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState

from tests.harness import TrackioServer
from tests.test_adopt import run_script
from tests.test_lightning import QUIET, Regressor, loaders
from tests.test_transformers import make_trainer
from trackio_integrations import (
    TrackioCallback,
    TrackioClient,
    TrackioLogger,
    TrackioTracker,
    install,
    uninstall,
)


def assert_metadata(config: dict[str, Any], group: str | None) -> None:
    """As trackio's ``Run`` records them: the group, the user, the creation time (ISO, UTC)."""
    assert config["_Group"] == group
    assert config["_Username"] == getpass.getuser()
    created = datetime.fromisoformat(config["_Created"])
    assert created.tzinfo is not None
    assert timedelta(0) <= datetime.now(timezone.utc) - created < timedelta(minutes=5)


def plain_client(server: TrackioServer, project: str, group: str | None) -> str:
    with TrackioClient(project, "plain", server_url=server.write_url, group=group) as run:
        run.log({"loss": 1.0}, step=0)
    return run.run_id


def module_api(server: TrackioServer, project: str, group: str | None) -> str:
    import trackio

    install()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "not supported here: ignored"
            run = trackio.init(
                project=project, name="module", server_url=server.write_url, group=group
            )
        trackio.log({"loss": 1.0})
        trackio.finish()
    finally:
        uninstall()
    return str(run.id)


def trainer_callback(server: TrackioServer, project: str, group: str | None, tmp_path: Path) -> str:
    callback = TrackioCallback(server_url=server.write_url, group=group)
    make_trainer(tmp_path, callback, project=project, run_name="trainer", max_steps=2).train()
    assert callback.run_id is not None
    return callback.run_id


def lightning_logger(server: TrackioServer, project: str, group: str | None, tmp_path: Path) -> str:
    logger = TrackioLogger(project, "lit", server_url=server.write_url, group=group)
    trainer = L.Trainer(max_epochs=1, logger=logger, default_root_dir=tmp_path, **QUIET)
    trainer.fit(Regressor(), *loaders())
    return logger.run_id


def accelerate_tracker(server: TrackioServer, project: str, group: str | None) -> str:
    tracker = TrackioTracker(project, "acc", server_url=server.write_url, group=group)
    try:
        accelerator = Accelerator(cpu=True, log_with=tracker)
        accelerator.init_trackers(project)
        accelerator.log({"loss": 1.0}, step=0)
        accelerator.end_training()
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    run = tracker.tracker
    assert run is not None
    return run.run_id


ENTRY_POINTS: dict[str, Callable[..., str]] = {
    "TrackioClient": plain_client,
    "trackio.init after install()": module_api,
    "TrackioCallback": trainer_callback,
    "TrackioLogger": lightning_logger,
    "TrackioTracker": accelerate_tracker,
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("how", ["group=", "TRACKIO_GROUP"])
def test_every_entry_point_takes_a_group_and_records_who_and_when(
    entry: str,
    how: str,
    shared_server: TrackioServer,
    project: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = ENTRY_POINTS[entry]
    group = f"{entry}-{how}"
    if how == "TRACKIO_GROUP":
        monkeypatch.setenv("TRACKIO_GROUP", group)
    given = group if how == "group=" else None
    extra = (tmp_path,) if "tmp_path" in start.__code__.co_varnames else ()
    run_id = start(shared_server, project, given, *extra)
    config = shared_server.wait_for_config(project, run_id, _Group=group)
    assert_metadata(config, group)


def test_a_run_with_no_group_records_who_and_when_and_no_group(
    shared_server: TrackioServer, project: str
) -> None:
    run_id = plain_client(shared_server, project, None)
    config = shared_server.wait_for_config(project, run_id, _Group=None)
    assert_metadata(config, None)


def test_report_to_trackio_with_no_arguments_takes_its_group_from_the_environment(
    shared_server: TrackioServer, project: str, tmp_path: Path
) -> None:
    printed = run_script(
        sys.executable, tmp_path, shared_server, project, "--install", TRACKIO_GROUP="nightly"
    )
    config = shared_server.wait_for_config(project, printed["run_id"], _Group="nightly")
    assert_metadata(config, "nightly")


def test_a_run_continued_by_its_id_keeps_when_it_was_created(
    shared_server: TrackioServer, project: str
) -> None:
    with TrackioClient(project, "kept", server_url=shared_server.write_url, group="g") as first:
        first.log({"loss": 1.0}, step=0)
    created = shared_server.wait_for_config(project, first.run_id, _Group="g")["_Created"]
    # A Lightning logger reopened after finalize() passes the config it had: same user, time.
    with TrackioClient(
        project,
        "kept",
        server_url=shared_server.write_url,
        run_id=first.run_id,
        config=first.config,
    ) as again:
        again.log({"loss": 0.5}, step=1)
    assert shared_server.wait_for_steps(project, "kept", "loss", 2) == [0, 1]
    config = shared_server.configs(project)[first.run_id]
    assert config["_Created"] == created and config["_Group"] == "g"
