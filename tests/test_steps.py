"""A point logged without a step follows the run's last step, as trackio numbers it."""

from __future__ import annotations

import numpy as np

from tests.harness import TrackioServer
from trackio_integrations import Image, TrackioClient


def test_a_point_without_a_step_gets_the_last_step_plus_one(
    shared_server: TrackioServer, project: str
) -> None:
    with TrackioClient(project, "steps", server_url=shared_server.write_url) as run:
        for step in (0, 1, 10):
            run.log({"loss": float(step)}, step=step)
        run.log({"loss": 11.0})
        run.log({"loss": 12.0})
    values = shared_server.wait_for_steps(project, "steps", "loss", 5)
    assert values == [0, 1, 10, 11, 12]
    by_step = {v["step"]: v["value"] for v in shared_server.values(project, "steps", "loss")}
    assert by_step == {0: 0.0, 1: 1.0, 10: 10.0, 11: 11.0, 12: 12.0}


def test_the_first_point_without_a_step_is_step_0(
    shared_server: TrackioServer, project: str
) -> None:
    with TrackioClient(project, "first", server_url=shared_server.write_url) as run:
        run.log({"a": 1.0})
        run.log({"a": 2.0})
    assert shared_server.wait_for_steps(project, "first", "a", 2) == [0, 1]


def test_media_without_a_step_is_stored_at_the_step_its_file_names(
    shared_server: TrackioServer, project: str
) -> None:
    picture = np.zeros((4, 4, 3), dtype=np.uint8)
    with TrackioClient(project, "media", server_url=shared_server.write_url) as run:
        run.log({"loss": 1.0}, step=7)
        run.log({"sample": Image(picture)})  # no step: 8
        run.log({"loss": 0.5})  # 9
    rows = shared_server.wait_for_logs(project, "media", 3)
    media = [r for r in rows if isinstance(r.get("sample"), dict)]
    assert len(media) == 1
    assert media[0]["step"] == 8
    assert "/8/" in media[0]["sample"]["file_path"]
    assert shared_server.steps(project, "media", "loss") == [7, 9]


def test_an_earlier_step_logged_late_does_not_pull_the_numbering_back(
    shared_server: TrackioServer, project: str
) -> None:
    # TRL's profiling logs at the Trainer's step after the Trainer's table took the next one.
    with TrackioClient(project, "late", server_url=shared_server.write_url) as run:
        run.log({"loss": 1.0}, step=5)
        run.log({"timing": 0.1}, step=2)
        run.log({"loss": 0.5})  # 6, not 3
    assert shared_server.wait_for_steps(project, "late", "loss", 2) == [5, 6]
