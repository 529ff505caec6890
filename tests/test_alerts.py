"""Alerts forwarded to a webhook: trackio's payloads, from the background, retried, token-free."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from trackio import alerts as trackio_alerts

from tests.harness import CaptureServer, TrackioServer, wait_until
from trackio_integrations import TrackioClient
from trackio_integrations.monitoring.webhook import WebhookPoster, payload

ARGS = ("A title", "some *text*", "proj", "run-1", 7)


@pytest.mark.parametrize("level", ["info", "warn", "error"])
def test_slack_and_discord_payloads_are_the_ones_trackio_builds(level: str) -> None:
    as_trackio = trackio_alerts.AlertLevel(level)
    slack = "https://hooks.slack.com/services/T0/B0/XXXX"
    discord = "https://discord.com/api/webhooks/1/abc"
    assert payload(slack, level, *ARGS, None) == trackio_alerts._build_slack_payload(
        as_trackio, *ARGS
    )
    assert payload(discord, level, *ARGS, None) == trackio_alerts._build_discord_payload(
        as_trackio, *ARGS
    )
    no_text = ("A title", None, "proj", "run-1", None)
    assert payload(slack, level, *no_text, None) == trackio_alerts._build_slack_payload(
        as_trackio, *no_text
    )


def test_a_plain_webhook_gets_the_json_trackio_posts(capture: CaptureServer) -> None:
    stamp = "2025-01-01T00:00:00+00:00"
    trackio_alerts.send_webhook(
        f"{capture.url}/theirs", trackio_alerts.AlertLevel.WARN, *ARGS, stamp
    )
    poster = WebhookPoster(f"{capture.url}/ours")
    poster.post(payload(poster.url, "warn", *ARGS, stamp))
    assert poster.close(30)
    theirs, ours = (next(r for r in capture.requests if r.path == p) for p in ("/theirs", "/ours"))
    assert ours.json() == theirs.json()
    assert ours.headers["Content-Type"] == theirs.headers["Content-Type"] == "application/json"


def test_an_alert_reaches_the_dashboard_and_the_webhook_without_any_token(
    shared_server: TrackioServer,
    capture: CaptureServer,
    project: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_NEVER_SEND")
    run = TrackioClient(
        project, server_url=shared_server.write_url, alert_webhook=f"{capture.url}/hook/SECRET"
    )
    run.log({"loss": 1.0}, step=3)
    run.alert("Loss spike", "train/loss jumped", level="warn")
    assert run.finish(timeout=60)
    (request,) = [r for r in capture.requests if r.path.startswith("/hook")]
    body = request.json()
    assert {k: body[k] for k in ("level", "title", "text", "project", "run", "step")} == {
        "level": "warn",
        "title": "Loss spike",
        "text": "train/loss jumped",
        "project": project,
        "run": run.name,
        "step": 3,
    }
    assert body["timestamp"]
    raw = json.dumps(request.headers) + request.body.decode()
    assert shared_server.token not in raw and "hf_NEVER_SEND" not in raw
    assert not {"X-Trackio-Write-Token", "Authorization", "Cookie"} & set(request.headers)
    alerts = shared_server.api("get_alerts", project, run.name)
    assert [(a["title"], a["step"]) for a in alerts] == [("Loss spike", 3)]


def test_the_webhook_from_the_environment_with_a_minimum_level(
    capture: CaptureServer, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKIO_WEBHOOK_URL", f"{capture.url}/env-hook")
    monkeypatch.setenv("TRACKIO_WEBHOOK_MIN_LEVEL", "warn")
    with TrackioClient(project, system_metrics=False) as run:  # the embedded default
        run.alert("fyi", level="info", step=1)
        run.alert("careful", level="warn", step=2)
        run.alert("broken", level="error", step=3)
    posted = [r.json()["title"] for r in capture.requests if r.path == "/env-hook"]
    assert posted == ["careful", "broken"]


def test_a_failing_webhook_is_retried_and_a_refusal_is_not(
    capture: CaptureServer, caplog: pytest.LogCaptureFixture
) -> None:
    answers = {"/flaky": [503, 429, 200], "/gone": [404]}

    def respond(path: str, body: bytes) -> tuple[int, Any]:
        queue = answers[path]
        return (queue.pop(0) if len(queue) > 1 else queue[0]), {}

    capture.respond = respond
    flaky, gone = WebhookPoster(f"{capture.url}/flaky"), WebhookPoster(f"{capture.url}/gone")
    with caplog.at_level(logging.WARNING, logger="trackio_integrations"):
        for poster in (flaky, gone):
            poster.post({"title": "x"})
        assert flaky.close(60) and gone.close(60)
    assert [r.path for r in capture.requests].count("/flaky") == 3 and flaky.posted == 1
    assert [r.path for r in capture.requests].count("/gone") == 1 and gone.dropped == 1
    assert "HTTP 404" in caplog.text and capture.url not in caplog.text  # the URL is a secret


def test_a_slow_webhook_never_holds_up_alert_and_finish_stays_bounded(
    capture: CaptureServer, project: str
) -> None:
    def respond(path: str, body: bytes) -> tuple[int, Any]:
        time.sleep(20)
        return 200, {}

    capture.respond = respond
    run = TrackioClient(project, system_metrics=False, alert_webhook=f"{capture.url}/slow")
    started = time.monotonic()
    for i in range(5):
        run.alert(f"alert {i}", level="error", step=i)
    assert time.monotonic() - started < 5  # the posts wait on their own thread
    wait_until(lambda: capture.requests, 30)
    started = time.monotonic()
    run.finish(timeout=2)
    assert time.monotonic() - started < 10
