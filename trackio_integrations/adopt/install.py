"""``report_to="trackio"`` and ``log_with="trackio"`` through this package, with no script change.

transformers and accelerate look their integrations up by name in public registries
(``transformers.integrations.INTEGRATION_TO_CALLBACK``, ``accelerate.tracking.LOGGER_TYPE_TO_CLASS``
/ ``register_tracker_class``). This module puts our classes there:

- always, once ``trackio_integrations`` is imported: the new name ``"trackio-integrations"``
  (``report_to="trackio-integrations"``, ``log_with="trackio-integrations"``), which shadows
  nothing;
- after ``install()`` (or ``import trackio_integrations.auto``, or ``TRACKIO_INTEGRATIONS=1`` in
  the environment): the name ``"trackio"`` too, until ``uninstall()``.

Nothing here imports a framework: each registration waits for the framework's own import
(``_import_hooks``), so ``install()`` costs microseconds and a job that never imports transformers
never loads it.
"""

from __future__ import annotations

import _thread
import os
import sys
from types import ModuleType
from typing import Any

from trackio_integrations.adopt.import_hooks import forget, when_imported

__all__ = ["OWN_NAME", "install", "installed", "register_names", "uninstall"]

OWN_NAME = "trackio-integrations"
_TRANSFORMERS = "transformers.integrations.integration_utils"
_ACCELERATE = "accelerate"  # the whole package: our tracker module needs accelerate.Accelerator
# Our tracker module imports accelerate itself: when it is imported first, accelerate's hook fires
# while it is half-run, so the registration waits for the tracker module's own end (see below).
_TRACKER_MODULE = "trackio_integrations.integrations.accelerate"
_AVAILABLE = "get_available_reporting_integrations"
_TRACKIO = "trackio"
# trackio's module API that runs on our client after install() (see module_api.py).
_TRACKIO_NAMES = (
    "init",
    "log",
    "log_system",
    "finish",
    "alert",
    "log_artifact",
    "use_artifact",
    "save",
    "config",
    "context_vars",
)

_lock = (
    _thread.RLock()
)  # not ``threading`` (nor logging): keep ``import trackio_integrations`` light
_installed = False
_saved: dict[str, dict[str, Any]] = {}  # framework -> what install() replaced, for uninstall()
_announced: set[str] = set()


def register_names() -> None:
    """Make ``"trackio-integrations"`` a ``report_to`` / ``log_with`` name. Shadows nothing.

    Runs on ``import trackio_integrations``; ``log_with`` needs accelerate 1.15 or later.
    """
    when_imported(_TRANSFORMERS, _name_transformers)
    when_imported(_ACCELERATE, _name_accelerate)
    when_imported(_TRACKER_MODULE, _name_accelerate)


def install() -> None:
    """Make ``report_to="trackio"`` and ``log_with="trackio"`` use this package. Idempotent.

    >>> import trackio_integrations
    >>> trackio_integrations.install()  # before Trainer(...) / Accelerator(...)

    - transformers: ``report_to="trackio"`` adds ``ReportToTrackioCallback``, i.e.
      ``TrackioCallback()`` configured from ``TrainingArguments`` and the environment, instead of
      transformers' own callback; ``report_to="all"`` counts trackio as available when the
      ``trackio`` package is installed (as transformers decides) or ``TRACKIO_SERVER_URL`` /
      ``TRACKIO_SPACE_ID`` is set.
    - accelerate: ``log_with="trackio"`` builds ``LogWithTrackioTracker`` from ``init_trackers``'
      arguments; the ``trackio`` package is not needed.
    - trackio (when installed): ``trackio.init``, ``log``, ``finish``, ``config``, ``alert``,
      ``log_artifact``, ``use_artifact``, ``save``, ``log_system`` and ``context_vars`` run on
      our client (``adopt/module_api.py``), so a library that calls ``trackio.log`` itself (TRL)
      writes into the run the Trainer opened.

    Each framework is taken over when it is imported (at once if it already is), with one
    message saying so. ``uninstall()`` puts the frameworks' own classes back.
    """
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    register_names()
    when_imported(_TRANSFORMERS, _take_transformers)
    when_imported(_ACCELERATE, _take_accelerate)
    when_imported(_TRACKER_MODULE, _take_accelerate)
    when_imported(_TRACKIO, _take_trackio)


def uninstall() -> None:
    """Undo ``install()``: ``"trackio"`` means the frameworks' own integrations again.

    Trainers and Accelerators already built keep what they have. ``"trackio-integrations"``
    stays registered (it shadows nothing).
    """
    global _installed
    with _lock:
        _installed = False
        forget(_take_transformers)
        forget(_take_accelerate)
        forget(_take_trackio)
        for framework, saved in list(_saved.items()):
            _RESTORE[framework](saved)
            del _saved[framework]
        _announced.clear()  # a later install() says again what it takes over


def installed() -> bool:
    """Whether ``install()`` is in effect."""
    return _installed


# --- transformers --------------------------------------------------------------------------------


def _name_transformers(utils: ModuleType) -> None:
    from trackio_integrations.integrations.transformers.callback import ReportToTrackioCallback

    utils.INTEGRATION_TO_CALLBACK.setdefault(OWN_NAME, ReportToTrackioCallback)


def _take_transformers(utils: ModuleType) -> None:
    from trackio_integrations.integrations.transformers.callback import ReportToTrackioCallback

    with _lock:
        if not _installed or "transformers" in _saved:
            return
        table = utils.INTEGRATION_TO_CALLBACK
        original = getattr(utils, _AVAILABLE)
        _saved["transformers"] = {
            "module": utils,
            "callback": table.get("trackio"),
            "available": original,
        }

        def available() -> list[str]:
            names = list(original())
            if "trackio" not in names and _target_configured():
                names.append("trackio")
            return names

        table["trackio"] = ReportToTrackioCallback
        _set_available(utils, available)
    _announce(
        "transformers",
        "report_to='trackio' now adds trackio_integrations' TrackioCallback (no trackio package "
        "needed; report_to='all' includes it when a Trackio target is set)",
    )


def _restore_transformers(saved: dict[str, Any]) -> None:
    utils = saved["module"]
    if saved["callback"] is not None:
        utils.INTEGRATION_TO_CALLBACK["trackio"] = saved["callback"]
    else:
        utils.INTEGRATION_TO_CALLBACK.pop("trackio", None)
    _set_available(utils, saved["available"])


def _set_available(utils: ModuleType, function: Any) -> None:
    setattr(utils, _AVAILABLE, function)
    # TrainingArguments imports it from the lazy ``transformers.integrations``, which keeps a copy
    # once asked: replace that one too.
    lazy = sys.modules.get("transformers.integrations")
    if lazy is not None and _AVAILABLE in vars(lazy):
        setattr(lazy, _AVAILABLE, function)


def _target_configured() -> bool:
    """For ``report_to="all"``, trackio is also available when the environment names a target
    (transformers' own rule, the ``trackio`` package being installed, still counts)."""
    return bool(os.environ.get("TRACKIO_SERVER_URL") or os.environ.get("TRACKIO_SPACE_ID"))


# --- accelerate ----------------------------------------------------------------------------------


def _tracker_module_half_run() -> bool:
    """Whether our tracker module is being imported (it imported accelerate, whose hook runs now).

    Its own hook (``when_imported(_TRACKER_MODULE, ...)``) then does the work once it has run.
    """
    module = sys.modules.get(_TRACKER_MODULE)
    return module is not None and "LogWithTrackioTracker" not in vars(module)


def _name_accelerate(module: ModuleType) -> None:
    """Register ``"trackio-integrations"``; ``module`` is accelerate or our tracker module."""
    if _tracker_module_half_run():
        return
    from accelerate import tracking

    register = getattr(tracking, "register_tracker_class", None)
    if register is None or OWN_NAME in tracking.LOGGER_TYPE_TO_CLASS:
        return  # accelerate < 1.15 takes built-in names only
    from trackio_integrations.integrations.accelerate import InitTrackersTracker

    # Importing it may have run its own hook, which registered it already.
    if OWN_NAME not in tracking.LOGGER_TYPE_TO_CLASS:
        register(InitTrackersTracker)


def _take_accelerate(module: ModuleType) -> None:
    """``log_with="trackio"`` builds ours; ``module`` is accelerate or our tracker module."""
    if _tracker_module_half_run():
        return
    import accelerate
    from accelerate import tracking
    from accelerate.utils import LoggerType

    from trackio_integrations.integrations.accelerate import LogWithTrackioTracker

    if not hasattr(LoggerType, "TRACKIO"):
        _logger().warning(
            "trackio-integrations: this accelerate (%s) has no log_with='trackio'; pass "
            "log_with=TrackioTracker() instead.",
            getattr(accelerate, "__version__", "?"),
        )
        return
    with _lock:
        if not _installed or "accelerate" in _saved:
            return
        available = tracking.get_available_trackers()  # the list filter_trackers consults
        _saved["accelerate"] = {
            "module": tracking,
            "tracker": tracking.LOGGER_TYPE_TO_CLASS.get("trackio"),
            "added": LoggerType.TRACKIO not in available,
            "kind": LoggerType.TRACKIO,
        }
        if LoggerType.TRACKIO not in available:  # "available" meant: the trackio package is
            available.append(LoggerType.TRACKIO)
        register = getattr(tracking, "register_tracker_class", None)
        tracker = _announced_when_built(LogWithTrackioTracker)
        if register is None:
            tracking.LOGGER_TYPE_TO_CLASS["trackio"] = tracker
        else:
            import warnings

            with warnings.catch_warnings():  # "shadowing a built-in tracker": that is the point
                warnings.simplefilter("ignore")
                register(tracker)


def _announced_when_built(tracker: type) -> type:
    """The tracker, saying it took over when ``log_with="trackio"`` first builds it: a Trainer's
    job imports accelerate too, and should not hear about a ``log_with`` it never uses."""

    class Tracker(tracker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            _announce(
                "accelerate",
                "log_with='trackio' now builds trackio_integrations' TrackioTracker (no trackio "
                "package needed)",
            )
            super().__init__(*args, **kwargs)

    Tracker.__name__ = Tracker.__qualname__ = tracker.__name__
    return Tracker


def _restore_accelerate(saved: dict[str, Any]) -> None:
    tracking = saved["module"]
    if saved["tracker"] is not None:
        tracking.LOGGER_TYPE_TO_CLASS["trackio"] = saved["tracker"]
    else:
        tracking.LOGGER_TYPE_TO_CLASS.pop("trackio", None)
    available = tracking.get_available_trackers()
    if saved["added"] and saved["kind"] in available:
        available.remove(saved["kind"])


# --- trackio's module API ------------------------------------------------------------------------


def _take_trackio(trackio: ModuleType) -> None:
    from trackio_integrations.adopt import module_api

    with _lock:
        if not _installed or "trackio" in _saved:
            return
        own = {name: vars(trackio)[name] for name in _TRACKIO_NAMES if name in vars(trackio)}
        _saved["trackio"] = {"module": trackio, "own": own}
        for name in _TRACKIO_NAMES:
            setattr(trackio, name, getattr(module_api, name))
    _announce(
        "trackio",
        "trackio.init/log/finish/config/alert now run on trackio_integrations' client (one run "
        "per process, shared with the Trainer's, Lightning's or Accelerate's run)",
    )


def _restore_trackio(saved: dict[str, Any]) -> None:
    trackio = saved["module"]
    for name, value in saved["own"].items():
        setattr(trackio, name, value)


_RESTORE = {
    "transformers": _restore_transformers,
    "accelerate": _restore_accelerate,
    "trackio": _restore_trackio,
}


def _announce(framework: str, what: str) -> None:
    """Say once per ``install()`` which integration was taken over: once per job, by rank zero
    (``RANK``, else ``SLURM_PROCID``), not by each of its processes."""
    rank = os.environ.get("RANK") or os.environ.get("SLURM_PROCID") or "0"
    if framework not in _announced:
        _announced.add(framework)
        if rank.strip() not in ("", "0"):
            return
        _logger().warning(
            "trackio-integrations: %s; trackio_integrations.uninstall() undoes it.", what
        )


def _logger() -> Any:
    import logging

    return logging.getLogger("trackio_integrations")
