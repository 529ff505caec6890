"""Send Transformers, Lightning and Accelerate metrics to your own Trackio server or Space.

>>> from trackio_integrations import TrackioClient, TrackioCallback, TrackioLogger, TrackioTracker
>>> from trackio_integrations import Image, Audio, Video, Table, Histogram, Markdown, Html, Trace

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
    "Html",
    "Image",
    "Markdown",
    "Table",
    "Trace",
    "TrackioAuthError",
    "TrackioCallback",
    "TrackioClient",
    "TrackioConfigError",
    "TrackioError",
    "TrackioGatewayError",
    "TrackioLogger",
    "TrackioServerError",
    "TrackioTracker",
    "TrackioUnavailableError",
    "Video",
    "install",
    "uninstall",
]

_WHERE = {
    "TrackioClient": "trackio_integrations.client",
    "TrackioCallback": "trackio_integrations.integrations.transformers.callback",
    "TrackioLogger": "trackio_integrations.integrations.lightning.logger",
    "TrackioTracker": "trackio_integrations.integrations.accelerate",
    "TrackioError": "trackio_integrations.errors",
    "TrackioConfigError": "trackio_integrations.errors",
    "TrackioAuthError": "trackio_integrations.errors",
    "TrackioServerError": "trackio_integrations.errors",
    "TrackioGatewayError": "trackio_integrations.errors",
    "TrackioUnavailableError": "trackio_integrations.errors",
    "Image": "trackio_integrations.media.kinds",
    "Audio": "trackio_integrations.media.kinds",
    "Video": "trackio_integrations.media.kinds",
    "Table": "trackio_integrations.media.kinds",
    "Histogram": "trackio_integrations.media.kinds",
    "Markdown": "trackio_integrations.media.kinds",
    "Html": "trackio_integrations.media.kinds",
    "Trace": "trackio_integrations.media.kinds",
    "install": "trackio_integrations.adopt.install",
    "uninstall": "trackio_integrations.adopt.install",
    "HealthChecks": "trackio_integrations.monitoring.health",
}

if TYPE_CHECKING:
    from trackio_integrations.adopt.install import install, uninstall
    from trackio_integrations.client import TrackioClient
    from trackio_integrations.errors import (
        TrackioAuthError,
        TrackioConfigError,
        TrackioError,
        TrackioGatewayError,
        TrackioServerError,
        TrackioUnavailableError,
    )
    from trackio_integrations.integrations.accelerate import TrackioTracker
    from trackio_integrations.integrations.lightning.logger import TrackioLogger
    from trackio_integrations.integrations.transformers.callback import TrackioCallback
    from trackio_integrations.media.kinds import (
        Audio,
        Histogram,
        Html,
        Image,
        Markdown,
        Table,
        Trace,
        Video,
    )
    from trackio_integrations.monitoring.health import HealthChecks


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'trackio_integrations' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


def _register_names() -> None:
    from trackio_integrations.adopt.install import register_names

    register_names()


_register_names()
