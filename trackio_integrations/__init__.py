"""Send Transformers, Lightning and Accelerate metrics to your own Trackio server or Space.

>>> from trackio_integrations import TrackioClient, TrackioCallback, TrackioLogger, TrackioTracker
>>> from trackio_integrations import Image, Audio, Video, Table, Histogram, Markdown

Importing this package is cheap: each name (and the framework behind it) loads on first use.
It also makes ``report_to="trackio-integrations"`` (transformers) and
``log_with="trackio-integrations"`` (accelerate 1.15+) name this package's integrations, without
importing either framework. ``install()`` makes ``"trackio"`` mean them too (see ``adopt``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "Audio",
    "HealthChecks",
    "Histogram",
    "Image",
    "Markdown",
    "Table",
    "TrackioAuthError",
    "TrackioCallback",
    "TrackioClient",
    "TrackioConfigError",
    "TrackioError",
    "TrackioLogger",
    "TrackioServerError",
    "TrackioTracker",
    "Video",
    "install",
    "uninstall",
]

_WHERE = {
    "TrackioClient": "client",
    "TrackioCallback": "transformers",
    "TrackioLogger": "lightning",
    "TrackioTracker": "accelerate",
    "TrackioError": "errors",
    "TrackioConfigError": "errors",
    "TrackioAuthError": "errors",
    "TrackioServerError": "errors",
    "Image": "media",
    "Audio": "media",
    "Video": "media",
    "Table": "media",
    "Histogram": "media",
    "Markdown": "media",
    "install": "adopt",
    "uninstall": "adopt",
    "HealthChecks": "health",
}

if TYPE_CHECKING:
    from .accelerate import TrackioTracker
    from .adopt import install, uninstall
    from .client import TrackioClient
    from .errors import TrackioAuthError, TrackioConfigError, TrackioError, TrackioServerError
    from .health import HealthChecks
    from .lightning import TrackioLogger
    from .media import Audio, Histogram, Image, Markdown, Table, Video
    from .transformers import TrackioCallback


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'trackio_integrations' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


def _register_names() -> None:
    from .adopt import register_names

    register_names()


_register_names()
