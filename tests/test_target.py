"""Where data goes: the precedence rules, URL validation and token handling, as the user sets them."""

from __future__ import annotations

import itertools
import warnings

import pytest

from trackio_integrations import TrackioConfigError
from trackio_integrations.core.target import (
    redact_url,
    resolve_target,
    same_server,
    saved_target,
    space_url_for,
)

SPACE_ARG, SPACE_ENV = "alice/arg-space", "bob/env-space"
URL_ARG, URL_ENV = "http://arg.example:7860", "http://env.example:7860"


@pytest.mark.parametrize(
    ("space_arg", "space_env", "url_arg", "url_env"),
    list(itertools.product([None, SPACE_ARG], [None, SPACE_ENV], [None, URL_ARG], [None, URL_ENV])),
)
def test_precedence_matrix(
    space_arg: str | None, space_env: str | None, url_arg: str | None, url_env: str | None
) -> None:
    env = {
        k: v for k, v in {"TRACKIO_SPACE_ID": space_env, "TRACKIO_SERVER_URL": url_env}.items() if v
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        target = resolve_target(server_url=url_arg, space_id=space_arg, env=env)
    space = space_arg or space_env
    url = url_arg or url_env
    messages = [str(w.message) for w in caught]
    if space:
        assert target.kind == "space"
        assert target.space_id == space
        assert target.url == space_url_for(space)
        if url:  # the Space wins, with exactly one warning naming the ignored URL
            assert len(messages) == 1
            assert url in messages[0] and "ignored" in messages[0]
        else:
            assert messages == []
    elif url:
        assert target.kind == "server"
        assert target.url == url
        assert messages == []
    else:
        assert target.kind == "local"
        assert messages == []


def test_space_url_is_computed_as_hugging_face_serves_it() -> None:
    assert space_url_for("Some_User/My.Space_2") == "https://some-user-my-space-2.hf.space"


def test_embedded_default_lives_in_trackio_dir(tmp_path) -> None:
    target = resolve_target(env={"TRACKIO_DIR": str(tmp_path)})
    assert target.kind == "local" and target.trackio_dir == str(tmp_path)
    target = resolve_target(env={"HF_HOME": str(tmp_path)})
    assert target.trackio_dir == str(tmp_path / "trackio")


@pytest.mark.parametrize(
    ("arg", "in_url", "env", "expected"),
    [
        ("from-arg", "from-url", "from-env", "from-arg"),
        (None, "from-url", "from-env", "from-url"),
        (None, None, "from-env", "from-env"),
        (None, None, None, None),
    ],
)
def test_write_token_precedence(arg, in_url, env, expected) -> None:
    url = "http://srv.example:7860/" + (f"?write_token={in_url}" if in_url else "")
    target = resolve_target(
        server_url=url, write_token=arg, env={"TRACKIO_WRITE_TOKEN": env} if env else {}
    )
    assert target.write_token == expected
    assert target.url == "http://srv.example:7860"  # the token is stripped from the URL
    if expected:
        assert target.headers()["X-Trackio-Write-Token"] == expected


def test_the_dashboards_own_query_parameters_are_dropped_and_the_token_kept() -> None:
    # Issue 23: a URL copied from the dashboard carries ?project=...&sidebar=...; the API takes
    # none of them, so only the sub-path and the write token are kept.
    target = resolve_target(
        server_url="http://h:1/base/?project=p&write_token=s3&sidebar=collapsed#x", env={}
    )
    assert target.url == "http://h:1/base"
    assert target.write_token == "s3"


def test_a_password_in_the_url_becomes_basic_auth_and_leaves_the_url() -> None:
    target = resolve_target(server_url="https://u%40corp:p%3Ass@h/trackio/?write_token=w", env={})
    assert target.url == "https://h/trackio"
    assert target.basic_auth == ("u@corp", "p:ss")
    assert "p:ss" not in repr(target) and "p:ss" not in str(target.public())


@pytest.mark.parametrize(
    "bad",
    [
        "trackio.internal:7860?write_token=SECRET",
        "ftp://host/?write_token=SECRET",
        "http://?write_token=SECRET",
        "http://host:99999/?write_token=SECRET",
        "/relative/path?write_token=SECRET",
        "http//missing-colon?write_token=SECRET",
    ],
)
def test_bad_urls_are_value_errors_with_the_token_redacted(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        resolve_target(server_url=bad, env={})
    assert isinstance(info.value, TrackioConfigError)
    assert "SECRET" not in str(info.value)
    assert "write_token=***" in str(info.value)


def test_bad_url_from_environment_is_rejected_too() -> None:
    with pytest.raises(TrackioConfigError, match="TRACKIO_SERVER_URL"):
        resolve_target(env={"TRACKIO_SERVER_URL": "not a url"})


def test_space_warning_does_not_show_the_urls_token() -> None:
    with pytest.warns(UserWarning) as caught:
        resolve_target(space_id="a/b", server_url="http://h:1/?write_token=SECRET", env={})
    assert "SECRET" not in str(caught[0].message)


def test_bad_space_id() -> None:
    with pytest.raises(TrackioConfigError, match="owner/name"):
        resolve_target(space_id="no-owner", env={})


def test_hf_token_goes_only_to_hugging_face_hosts() -> None:
    env = {"HF_TOKEN": "hf_SECRET"}
    server = resolve_target(server_url="http://my-server:7860", env=env)
    assert server.hf_token is None
    assert "Authorization" not in server.headers()
    space = resolve_target(space_id="a/b", env=env)
    assert space.headers()["Authorization"] == "Bearer hf_SECRET"
    assert "X-Trackio-Write-Token" not in space.headers()
    hf_hosted = resolve_target(server_url="https://a-b.hf.space", write_token="w", env=env)
    assert hf_hosted.headers()["Authorization"] == "Bearer hf_SECRET"


def test_tokens_never_appear_in_repr_or_str() -> None:
    target = resolve_target(
        server_url="http://h:1/?write_token=WSECRET", env={"HF_TOKEN": "HSECRET"}
    )
    space = resolve_target(space_id="a/b", hf_token="HSECRET", env={})
    for shown in (repr(target), str(target), repr(space), str(space), str(target.public())):
        assert "WSECRET" not in shown and "HSECRET" not in shown


def test_redact_url_hides_every_secret_looking_value() -> None:
    shown = redact_url("https://user:pw@h/p?write_token=a&api_key=b&x=1")
    assert "pw" not in shown and "=a" not in shown and "=b" not in shown
    assert "x=1" in shown


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("http://Host:80/trackio/", "http://host/trackio?write_token=x", True),
        ("https://h", "https://h:443/", True),
        ("http://h:7860", "https://h:7860", False),  # scheme
        ("http://h:7860", "http://h:7861", False),  # port
        ("http://h:7860", "http://h2:7860", False),  # host
        ("http://h:7860/a", "http://h:7860/b", False),  # path
        ("http://h:bad", "http://h", False),
    ],
)
def test_same_server_compares_scheme_host_port_and_path(a: str, b: str, same: bool) -> None:
    assert same_server(a, b) is same


@pytest.mark.parametrize(
    ("url_env", "saved", "expected"),
    [
        ("http://a:7860?write_token=TA", "http://a:7860/", ("TA", "TRACKIO_SERVER_URL")),
        ("http://b:7860?write_token=TB", "http://a:7860", (None, None)),
    ],
)
def test_a_spool_gets_the_write_token_of_its_own_server_only(
    url_env: str, saved: str, expected: tuple[str | None, str | None]
) -> None:
    env = {"TRACKIO_SERVER_URL": url_env, "HF_TOKEN": "hf_x"}
    named = resolve_target(env=env)
    target = saved_target({"kind": "server", "url": saved}, named, env=env)
    assert (target.url, target.write_token, target.token_from) == (saved, *expected)
    assert target.hf_token is None  # not a Hugging Face host
    loose = saved_target({"kind": "server", "url": saved}, named, loose_write_token=("T", "x"))
    assert loose.write_token == (expected[0] or "T")


def test_a_spool_for_a_space_gets_the_hf_token_and_never_a_write_token() -> None:
    env = {"TRACKIO_SERVER_URL": "http://a:7860?write_token=TA", "HF_TOKEN": "hf_x"}
    saved = {"kind": "space", "space_id": "alice/demo"}
    target = saved_target(saved, resolve_target(env=env), env=env)
    assert (target.url, target.hf_token, target.write_token) == (
        "https://alice-demo.hf.space",
        "hf_x",
        None,
    )
    assert target.headers()["Authorization"] == "Bearer hf_x"
