"""When the spool cannot be written, points wait in a bounded queue in memory: they are delivered,
the oldest are dropped first when it is full, and every point is either on the server or counted
as dropped, never both, whatever the sender is doing at that moment."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import TrackioServer, free_port, spool_point
from trackio_integrations import TrackioClient
from trackio_integrations.core import spool as spool_module
from trackio_integrations.core.sender import HttpDelivery, Sender
from trackio_integrations.core.spool import Spool
from trackio_integrations.core.target import resolve_target
from trackio_integrations.core.transport import Transport


@pytest.fixture
def delivery(shared_server: TrackioServer) -> Iterator[HttpDelivery]:
    target = resolve_target(server_url=shared_server.write_url, env={})
    http = HttpDelivery(Transport(target))
    yield http
    http.close()


def line(project: str, step: int) -> bytes:
    return spool_point(project, step) + b"\n"


@pytest.mark.parametrize(
    ("logged_in_flight", "delivered", "on_server", "dropped"),
    [
        # The review's case: 0-4 wait, 0-2 are sent, 5 and 6 push 0 and 1 out meanwhile. 0 and 1
        # reached the server after all: nothing is lost, nothing counted as dropped.
        (2, True, list(range(7)), 0),
        # 5-9 push out 0-4 while 0-2 are in flight: 3 and 4 never leave the process.
        (5, True, [0, 1, 2, *range(5, 10)], 2),
        # The send of 0-2 fails: 0 and 1, pushed out meanwhile, are lost and counted.
        (2, False, list(range(2, 7)), 2),
    ],
)
def test_points_pushed_out_while_their_batch_is_in_flight_are_counted_once(
    shared_server: TrackioServer,
    project: str,
    delivery: HttpDelivery,
    monkeypatch: pytest.MonkeyPatch,
    logged_in_flight: int,
    delivered: bool,
    on_server: list[int],
    dropped: int,
) -> None:
    # The sender's own steps (next_batch, send, ack), run one at a time in the order of the race.
    monkeypatch.setattr(spool_module, "MEMORY_LIMIT", 5)
    spool = Spool.in_memory({"writer": "memory-test"})
    for step in range(5):
        spool.append(line(project, step))
    batch = spool.next_batch(max_points=3)
    assert batch is not None and len(batch.lines) == 3
    for step in range(5, 5 + logged_in_flight):  # the training loop goes on meanwhile
        spool.append(line(project, step))
    if delivered:
        assert delivery.send(batch.lines).outcome.name == "OK"
        spool.ack(batch)
    while rest := spool.next_batch(max_points=3):  # the next cycles deliver the rest
        assert delivery.send(rest.lines).outcome.name == "OK"
        spool.ack(rest)

    assert spool.pending == 0 and spool.next_batch(10) is None
    assert spool.dropped == dropped
    steps = shared_server.steps(project, "r", "loss")
    assert steps == on_server  # each once, in order of steps
    assert len(steps) + spool.dropped == 5 + logged_in_flight


def test_a_memory_queue_overflowing_while_the_sender_delivers_loses_no_point_uncounted(
    shared_server: TrackioServer,
    project: str,
    delivery: HttpDelivery,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limit, total = 40, 6000
    monkeypatch.setattr(spool_module, "MEMORY_LIMIT", limit)
    spool = Spool.in_memory({"writer": "memory-race"})
    sender = Sender(spool, delivery, root=Path("unused"), interval=0.001)
    sender.ensure_started()
    pushed_out: set[int] = set()  # which points left memory to make room, delivered or not
    for step in range(total):
        mark = spool._evicted_to  # written by this thread only: reading it here is exact
        spool.append(line(project, step))
        if spool._evicted_to != mark:
            # memory holds consecutive points and was full: the oldest was step - limit
            pushed_out.add(step - limit)
        if step % 200 == 0:
            time.sleep(0.005)  # a training step: the sender catches up, then falls behind again
    assert sender.flush(timeout=120), spool.pending
    assert sender.stop(timeout=30)

    steps = shared_server.steps(project, "r", "loss")
    arrived = set(steps)
    assert len(steps) == len(arrived), "a point was stored twice"
    assert set(range(total)) - pushed_out <= arrived, "a point never pushed out did not arrive"
    assert spool.dropped == len(pushed_out - arrived)  # counted exactly the ones lost
    assert len(arrived) + spool.dropped == total
    assert pushed_out and spool.dropped, "the queue never overflowed: the test proved nothing"


def test_finish_says_how_many_points_were_dropped_and_how_many_are_lost(
    project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(spool_module, "MEMORY_LIMIT", 10)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(UserWarning):  # the spool cannot be created, and the server is down
        run = TrackioClient(
            project,
            server_url=f"http://127.0.0.1:{free_port()}",
            write_token="t",
            spool_dir=blocker / "spool",
            system_metrics=False,  # the counts below are of these points alone
        )
    for step in range(25):
        run.log({"loss": float(step)}, step=step)
    assert run.pending == 10
    caplog.set_level(logging.WARNING, logger="trackio_integrations")
    assert run.finish(timeout=0.5) is False
    assert "15 point(s) for" in caplog.text and "were dropped, the oldest first" in caplog.text
    assert "10 point(s) for" in caplog.text and "are lost" in caplog.text
    assert "kept in" not in caplog.text  # nothing is on disk: no false promise


def test_dropped_points_make_finish_report_failure_even_when_the_rest_arrived(
    shared_server: TrackioServer, project: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module, "MEMORY_LIMIT", 10)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(UserWarning, match="Cannot write the trackio-integrations spool"):
        run = TrackioClient(
            project,
            server_url=shared_server.write_url,
            spool_dir=blocker / "s",
            system_metrics=False,
        )
    for step in range(1000):  # far faster than any sender could take 10 points at a time
        run.log({"loss": float(step)}, step=step)
    assert run.finish(timeout=60) is False  # what was left arrived, but not every point
    assert run.pending == 0
    steps = shared_server.steps(project, run.name, "loss")
    assert len(steps) == len(set(steps)) and 10 <= len(steps) < 1000
