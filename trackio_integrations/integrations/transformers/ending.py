"""A ``train()`` that raised (an error, a Ctrl-C in a notebook) ends its run: the Trainer has no
event for it, so ``Trainer.train`` is wrapped once per process to tell the trainer's callbacks.

The wrapper costs one ``try`` per ``train()`` call, nothing per step; it re-raises what it saw.
A callback is told through its ``train_raised(exc)`` method (``TrackioCallback`` has one).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any

logger = logging.getLogger("trackio_integrations")

_wrapped: list[bool] = []


def report_train_failures() -> None:
    """Wrap ``transformers.Trainer.train`` (once): its callbacks hear when it raises."""
    if _wrapped:
        return
    _wrapped.append(True)
    from transformers import Trainer

    original = Trainer.train

    @functools.wraps(original)
    def train(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except BaseException as exc:
            handler = getattr(self, "callback_handler", None)
            for callback in list(getattr(handler, "callbacks", ())):
                raised = getattr(callback, "train_raised", None)
                if callable(raised):
                    with contextlib.suppress(Exception):
                        raised(exc)
            raise

    Trainer.train = train  # type: ignore[method-assign]
