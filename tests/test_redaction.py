"""The one redaction: what it hides, and that it never eats ordinary words."""

from __future__ import annotations

import logging

import pytest

from trackio_integrations import TrackioConfigError
from trackio_integrations.errors import warn_user
from trackio_integrations.monitoring.webhook import WebhookPoster
from trackio_integrations.redaction import redact, remember, strip_credentials


def test_urls_lose_their_passwords_and_secret_query_values() -> None:
    text = redact("see https://me:pa55@host/x?write_token=abcd&api_key=zz&sidebar=1 now")
    assert text == "see https://***@host/x?write_token=***&api_key=***&sidebar=1 now"
    assert strip_credentials("https://me:pa55@github.com/o/r.git") == "https://github.com/o/r.git"


def test_remembered_and_environment_secrets_are_hidden_longest_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    remember("abcdef-123456", "abcdef-123456-longer")
    monkeypatch.setenv("HF_TOKEN", "hf_envsecret99")
    text = redact("a abcdef-123456-longer b abcdef-123456 c hf_envsecret99")
    assert text == "a *** b *** c ***"


def test_short_values_and_a_test_webhook_path_mask_no_ordinary_word() -> None:
    remember("gone", "loss")  # too short to be a token: never hidden
    WebhookPoster("http://127.0.0.1:9/gone")
    assert redact("Metric 'gone' was not logged; loss kept") == (
        "Metric 'gone' was not logged; loss kept"
    )
    WebhookPoster("https://hooks.example/services/T000/B000/XXXXXXXXXXXXXXXX")
    assert "XXXXXXXXXXXXXXXX" not in redact("posted to services/T000/B000/XXXXXXXXXXXXXXXX")


def test_warnings_exceptions_and_log_lines_pass_the_redaction(
    caplog: pytest.LogCaptureFixture,
) -> None:
    remember("zz-secret-value-1")
    with pytest.warns(UserWarning) as caught:
        warn_user("token zz-secret-value-1 here")
    assert "zz-secret-value-1" not in str(caught[0].message)
    assert "zz-secret-value-1" not in str(TrackioConfigError("bad zz-secret-value-1"))
    logging.getLogger("trackio_integrations").warning("with %s", "zz-secret-value-1")
    assert "zz-secret-value-1" not in caplog.text and "with ***" in caplog.text
