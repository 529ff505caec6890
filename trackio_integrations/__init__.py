"""Send Transformers, Lightning and Accelerate metrics to your own Trackio server or Space.

>>> from trackio_integrations import TrackioClient, TrackioCallback, TrackioLogger, TrackioTracker

Importing this package is cheap: each name (and the framework behind it) loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "HealthChecks",
    "TrackioAuthError",
    "TrackioCallback",
    "TrackioClient",
    "TrackioConfigError",
    "TrackioError",
    "TrackioLogger",
    "TrackioServerError",
    "TrackioTracker",
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
    "HealthChecks": "health",
}

if TYPE_CHECKING:
    from .accelerate import TrackioTracker
    from .client import TrackioClient
    from .errors import TrackioAuthError, TrackioConfigError, TrackioError, TrackioServerError
    from .health import HealthChecks
    from .lightning import TrackioLogger
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
