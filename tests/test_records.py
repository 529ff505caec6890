"""Every record kind (point, system sample, alert) travels the same durable path to its own call."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from tests.harness import TrackioServer, wait_until
from trackio_integrations import TrackioClient
from trackio_integrations.core.records import (
    ALERT,
    METRIC,
    SYSTEM,
    RunFields,
    by_kind,
    describe,
    kind_of,
    tally,
)


def _log_each_kind(run: TrackioClient) -> None:
    run.log({"loss": 1.0}, step=0)
    run.log_system({"cpu/utilization": 12.5, "memory/used": 3.25}, timestamp=1_700_000_000.0)
    run.log({"loss": 0.5}, step=1)
    run.alert("Loss spike", "train/loss jumped", level="warn")
    run.log_system({"cpu/utilization": 50.0, "memory/used": 3.5}, timestamp=1_700_000_010.0)
    run.alert("Diverged", level="error", step=7)


def _assert_each_kind_once(server: TrackioServer, project: str, run: TrackioClient) -> None:
    assert server.steps(project, run.name, "loss") == [0, 1]
    system = server.api("get_system_logs", project, run.name)
    assert [row["cpu/utilization"] for row in system] == [12.5, 50.0]
    stamps = [datetime.fromisoformat(row["timestamp"]).timestamp() for row in system]
    assert stamps == [1_700_000_000.0, 1_700_000_010.0]
    alerts = sorted(server.api("get_alerts", project, run.name), key=lambda a: a["step"])
    assert [(a["title"], a["text"], a["level"], a["step"]) for a in alerts] == [
        ("Loss spike", "train/loss jumped", "warn", 1),  # the run's last step
        ("Diverged", None, "error", 7),
    ]
    tabs = server.api("get_tab_availability", project)
    assert tabs["metrics"] and tabs["system"] and tabs["reports"]


def test_points_samples_and_alerts_reach_the_server_once_each(
    server: TrackioServer, project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Only the samples logged here: the background sampler is tested in test_system.py.
    run = TrackioClient(project, server_url=server.write_url, system_metrics=False)
    _log_each_kind(run)
    assert run.finish(timeout=60)
    assert "[TRACKIO WARN]\x1b[0m Loss spike: train/loss jumped (step 1)" in capsys.readouterr().out
    _assert_each_kind_once(server, project, run)
    # A server restart and a replay of the same records store nothing twice.
    server.stop()
    server.start()
    _assert_each_kind_once(server, project, run)


def test_points_samples_and_alerts_reach_the_embedded_default(project: str) -> None:
    with TrackioClient(project, system_metrics=False) as run:
        _log_each_kind(run)
    viewer = TrackioServer(Path(os.environ["TRACKIO_DIR"]))
    viewer.start()
    try:
        wait_until(lambda: len(viewer.api("get_alerts", project, run.name)) >= 2, 30)
        _assert_each_kind_once(viewer, project, run)
    finally:
        viewer.stop()


def test_a_bad_alert_level_becomes_warn_and_nothing_raises(
    shared_server: TrackioServer, project: str
) -> None:
    run = TrackioClient(project, server_url=shared_server.write_url)
    with pytest.warns(UserWarning, match="not one of"):
        run.alert("odd", level="critical", step=3)
    run.log_system("not a mapping")  # type: ignore[arg-type]
    assert run.finish(timeout=60)
    alerts = shared_server.api("get_alerts", project, run.name)
    assert [(a["title"], a["level"], a["step"]) for a in alerts] == [("odd", "warn", 3)]


def test_lines_know_their_kind_and_group_in_order() -> None:
    fields = RunFields("p", "r", "rid")
    point = fields.metric(b'{"a":1}', 3, b"id-1", 1.5)
    with_config = fields.metric(b'{"a":2}', 4, b"id-2", 1.5, config={"lr": 1})
    sample = fields.system(b'{"cpu/utilization":1}', b"id-3", 1.5)
    alert = fields.alert("t", None, "info", 1, "id-4", 1.5)
    legacy = b'{"project":"p","run":"r","metrics":{"a":1},"step":1,"log_id":"x"}'
    assert [kind_of(x) for x in (point, with_config, sample, alert, legacy)] == [
        METRIC,
        METRIC,
        SYSTEM,
        ALERT,
        METRIC,
    ]
    groups = list(by_kind([point, with_config, sample, sample, alert, point]))
    assert [(kind, len(lines)) for kind, lines in groups] == [
        (METRIC, 2),
        (SYSTEM, 2),
        (ALERT, 1),
        (METRIC, 1),
    ]


def test_what_waits_is_told_as_the_users_points_apart_from_what_the_package_adds() -> None:
    fields = RunFields("p", "r", "rid")
    lines = [
        fields.metric(b'{"loss":1.0}', 0, b"w-1", 1.0, config={"lr": 0.1}),  # config rides along
        fields.metric(b"{}", 0, b"w-2", 2.0, config={"lr": 0.1, "extra": 1}),  # config alone
        fields.system(b'{"cpu":3.0}', b"w-3", 3.0),
        fields.system(b'{"cpu":4.0}', b"w-4", 4.0),
    ]
    assert describe(tally(lines)) == (
        "1 point you logged, and 3 records the package adds (the run's config, system samples)"
    )
    alert = fields.alert("NaN", None, "ERROR", 1, "a-1", 5.0)
    assert describe(tally([lines[0], alert])) == "1 point you logged, and 1 alert"
    # A config alone rides on a copy of the last point (same log_id): the package's, not the user's
    copy = fields.metric(b'{"loss":1.0}', 0, b"w-1", 6.0, config={"status": "success"}, repeat=True)
    assert describe(tally([lines[0], copy])) == (
        "1 point you logged, and 1 record the package adds (the run's config)"
    )
    assert describe(tally([copy])).startswith("0 points you logged")
