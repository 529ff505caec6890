"""The test harness: a real ``trackio show`` server, a loopback capture server, clean environments."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import CaptureServer, TrackioServer, foreign_env

try:  # the transformers 4.x environment runs the callback's tests only, without hypothesis
    from hypothesis import settings
except ImportError:
    pass
else:
    # CI must pass every time: there the property tests run a fixed, derandomised set of
    # examples (still hundreds); on a developer's machine they explore new ones each run.
    # No deadline: a loaded CI machine must not fail an example on time.
    settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
    if os.environ.get("CI"):
        settings.load_profile("ci")


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test starts with no target configured, its own spool and its own local storage,
    and none of the settings a developer's shell or the CI machine may have (harness.py)."""
    for name in foreign_env(os.environ):
        monkeypatch.delenv(name)
    monkeypatch.setenv("TRACKIO_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no stored Hugging Face token
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # imported already: it read the token's path from HF_HOME then
        hf_home = tmp_path / "hf"
        for name, path in (("HF_TOKEN_PATH", "token"), ("HF_STORED_TOKENS_PATH", "stored_tokens")):
            monkeypatch.setattr(constants, name, str(hf_home / path), raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # Provenance (on by default) adds config keys and project files that the other tests do not
    # expect; tests/test_provenance.py switches it back on.
    monkeypatch.setenv("TRACKIO_PROVENANCE", "0")
    # A run's watcher whose process died (a test's, or pytest killed by CI) gives up on a test
    # server soon, instead of the default 10 minutes (tests/test_endings.py).
    monkeypatch.setenv("TRACKIO_WATCHER_WAIT", "30")
    yield tmp_path


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackioServer]:
    """One real server for the tests that only need a place to write (each uses its own project)."""
    server = TrackioServer(tmp_path_factory.mktemp("shared-trackio"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TrackioServer]:
    """A real server of the test's own, for tests that kill or restart it."""
    srv = TrackioServer(tmp_path / "server-data")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    srv = CaptureServer()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def project() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def spool_dir() -> Path:
    return Path(os.environ["TRACKIO_SPOOL_DIR"])
