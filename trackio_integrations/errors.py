"""One error hierarchy, so callers can catch at the level they need.

``TrackioError`` is the base. Its subclasses also derive from the built-in exception a Python
user would reach for first (``ValueError``, ``PermissionError``, ``RuntimeError``).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

from trackio_integrations.redaction import install_log_filter, redact

_PACKAGE_DIR = str(Path(__file__).resolve().parent)
# Every line the package logs passes the one redaction (see ``redaction``).
install_log_filter(logging.getLogger("trackio_integrations"))


class TrackioError(Exception):
    """Base class of every error this package raises. Its message never holds a secret."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class TrackioConfigError(TrackioError, ValueError):
    """The target, project or URL given cannot work (fix the argument or environment variable)."""


class TrackioAuthError(TrackioError, PermissionError):
    """The server rejected the write token (or the Hugging Face token for a Space)."""


class TrackioGatewayError(TrackioAuthError):
    """A gateway in front of the server refused us (a login, an access header, a client
    certificate): not the write token. A training run warns and keeps its points on disk."""


class TrackioServerError(TrackioError, RuntimeError):
    """The server answered, but not in a way this client can use (e.g. an unknown API version)."""


class TrackioUnavailableError(TrackioServerError):
    """The server, or the gateway in front of it, is away for now: refused, timed out, or answered
    502/503/504, 429 or a proxy's page. Training goes on; points wait on disk until it answers."""


def warn_user(message: str) -> None:
    """A ``UserWarning`` attributed to the first caller outside this package (the user's line)."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    warnings.warn(redact(message), UserWarning, stacklevel=level)
