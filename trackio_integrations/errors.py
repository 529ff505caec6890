"""One error hierarchy, so callers can catch at the level they need.

``TrackioError`` is the base. Its subclasses also derive from the built-in exception a Python
user would reach for first (``ValueError``, ``PermissionError``, ``RuntimeError``).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

_PACKAGE_DIR = str(Path(__file__).resolve().parent)


class TrackioError(Exception):
    """Base class of every error this package raises."""


class TrackioConfigError(TrackioError, ValueError):
    """The target, project or URL given cannot work (fix the argument or environment variable)."""


class TrackioAuthError(TrackioError, PermissionError):
    """The server rejected the write token (or the Hugging Face token for a Space)."""


class TrackioServerError(TrackioError, RuntimeError):
    """The server answered, but not in a way this client can use (e.g. an unknown API version)."""


def warn_user(message: str) -> None:
    """A ``UserWarning`` attributed to the first caller outside this package (the user's line)."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    warnings.warn(message, UserWarning, stacklevel=level)
