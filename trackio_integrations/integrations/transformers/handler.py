"""The ``Trainer``'s callback list: finding it from an event, and retiring duplicate loggers.

Beside ``callback.py`` (Trainer events to client calls). Events are not
given the Trainer or its ``CallbackHandler``, yet a ``TrackioCallback`` must switch off the other
callbacks that would log each point again (transformers' own ``TrackioCallback`` when
``report_to`` names trackio, a second one that ``report_to`` added after ``install()``).
"""

from __future__ import annotations

import sys
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import CallbackHandler


def retire(handler: CallbackHandler, callbacks: list[Any]) -> None:
    """Take ``callbacks`` out of ``handler`` and switch them off."""
    # A new list, not remove(): the handler may be iterating over the current one now.
    handler.callbacks = [cb for cb in handler.callbacks if cb not in callbacks]
    for callback in callbacks:
        switch_off(callback)


def calling_handler() -> CallbackHandler | None:
    """The ``CallbackHandler`` dispatching the current event: events are not given the Trainer
    or its handler, so look for it a few frames up (``call_event``'s ``self``)."""
    frame = sys._getframe(1)
    for _ in range(8):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, CallbackHandler):
            return owner
        frame = frame.f_back  # type: ignore[assignment]
    return None


def calling_trainer() -> Any:
    """The ``Trainer`` whose training loop dispatches the current event (``train()``'s
    ``self``), or None: a callback is not given it, yet a search's trial is only there."""
    frame = sys._getframe(1)
    for _ in range(12):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if owner is not None and hasattr(owner, "hp_search_backend") and hasattr(owner, "_trial"):
            return owner
        frame = frame.f_back  # type: ignore[assignment]
    return None


def pruning_now() -> bool:
    """Whether the event being dispatched is the ``on_train_end`` that the Trainer calls just
    before it raises ``optuna.TrialPruned`` (in ``_report_to_hp_search``)."""
    frame = sys._getframe(1)
    for _ in range(12):
        if frame is None:
            return False
        if frame.f_code.co_name == "_report_to_hp_search":
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def is_builtin_trackio(callback: Any) -> bool:
    """Whether ``callback`` is transformers' own ``TrackioCallback`` (``report_to="trackio"``)."""
    cls = type(callback)
    return cls.__name__ == "TrackioCallback" and cls.__module__.startswith("transformers.")


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


def switch_off(callback: Any) -> None:
    for event in _EVENTS:  # in case it comes after us in the event being dispatched now
        setattr(callback, event, _ignore)


_EVENTS = tuple(name for name in vars(TrainerCallback) if name.startswith("on_"))
