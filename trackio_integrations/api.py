"""trackio's module style on this package, with or without the ``trackio`` package installed.

>>> import trackio_integrations.api as trackio
>>> trackio.init(project="my-project", config={"lr": 3e-4})  # doctest: +SKIP
>>> trackio.log({"train/loss": 0.25})  # doctest: +SKIP
>>> trackio.log({"rollout": trackio.Trace(messages=[{"role": "user", "content": "hi"}])})  # doctest: +SKIP
>>> trackio.finish()  # doctest: +SKIP

The same functions that replace trackio's own after ``install()`` (``adopt/module_api.py``), and
the value kinds of ``media``. May import: everything below it (an entry point, like ``auto``).
"""

from __future__ import annotations

from trackio_integrations.adopt.module_api import (
    AlertLevel,
    Config,
    Run,
    alert,
    config,
    context_vars,
    finish,
    init,
    log,
    log_artifact,
    log_system,
    save,
    use_artifact,
)
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

__all__ = [
    "AlertLevel",
    "Audio",
    "Config",
    "Histogram",
    "Html",
    "Image",
    "Markdown",
    "Run",
    "Table",
    "Trace",
    "Video",
    "alert",
    "config",
    "context_vars",
    "finish",
    "init",
    "log",
    "log_artifact",
    "log_system",
    "save",
    "use_artifact",
]
