"""Batching: at training rates the sender makes one request per interval, not one per point."""

from __future__ import annotations

import time

import httpx

from tests.harness import TrackioServer, assert_each_step_once
from trackio_integrations import TrackioClient


class CountingTransport(httpx.HTTPTransport):
    """The client's real HTTP transport, counting the ``bulk_log`` requests it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.bulk_logs: list[int] = []  # points per request

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/bulk_log":
            request.read()
            self.bulk_logs.append(request.content.count(b'"log_id"'))
        return super().handle_request(request)


def test_a_paced_run_makes_one_request_per_interval_not_one_per_point(
    shared_server: TrackioServer, project: str
) -> None:
    counting = CountingTransport()
    # No system samples: one between two points splits their batch in two bulk_log requests
    # (each run of one kind goes to its own call, in order), one more than the count allows.
    run = TrackioClient(
        project,
        server_url=shared_server.write_url,
        flush_interval=1.0,
        _http_transport=counting,
        system_metrics=False,
    )
    started = time.monotonic()
    for step in range(300):  # 100 points/s for 3 s, as a training loop logs them
        run.log({"loss": 1.0 / (step + 1)}, step=step)
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    assert run.finish(timeout=60)
    sends = [n for n in counting.bulk_logs if n]  # the empty one is the write-access check
    # One request per elapsed interval (a late wake-up only lowers the count), plus finish().
    assert sum(sends) == 300
    assert len(sends) <= int(elapsed / 1.0) + 2, sends
    assert_each_step_once(shared_server, project, run.name, "loss", 300)


def test_flush_delivers_at_once_without_waiting_for_the_interval(
    shared_server: TrackioServer, project: str
) -> None:
    # no system samples: the count below is of these points alone
    run = TrackioClient(
        project, server_url=shared_server.write_url, flush_interval=3600.0, system_metrics=False
    )
    for step in range(5):
        run.log({"loss": float(step)}, step=step)
    assert run.flush(timeout=60)  # an hour-long interval: only flush() can have sent them
    assert run.pending == 0
    assert shared_server.steps(project, run.name, "loss") == [0, 1, 2, 3, 4]
    run.finish()
