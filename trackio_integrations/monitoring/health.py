"""Training-health alerts: a small producer fed by what an adapter already sees.

``Health`` watches the values each integration logs anyway (losses, gradient norms) and raises
alerts through the same ``TrackioClient.alert`` a user calls:

- a **non-finite** loss or gradient norm (NaN, infinity): one ``error`` naming the metrics and
  the step; the same metric raises again only after it has been finite in between;
- a **loss spike**: a loss above ``loss_spike`` times the median of its last ``spike_window``
  values (and far outside their batch-to-batch noise) raises a ``warn``, once per spike;
- a **stall**: nothing logged (and, for the Trainer, no step ended) for ``stall_after`` seconds
  while the process is alive raises an ``error`` from a background thread (a hung collective, a
  dead data loader);
- a **failure**: training ended by an exception raises an ``error`` with the exception's type.
  The Trainer and Accelerate give a tracker no event for that, so an uncaught exception is seen
  through ``sys.excepthook`` (chained to the one installed before); Lightning's
  ``finalize("failed")`` reports it directly.

Observing costs the training thread a dictionary scan of the logged keys, at logging time only.
"""

from __future__ import annotations

import contextlib
import logging
import math
import statistics
import sys
import time
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Protocol

from trackio_integrations.core.worker import Worker

logger = logging.getLogger("trackio_integrations")

SPIKE_SIGMAS = 10.0


class Alerting(Protocol):
    def alert(
        self, title: str, text: str | None = None, level: str = "warn", step: int | None = None
    ) -> None: ...


@dataclass(frozen=True)
class HealthChecks:
    """Which training-health alerts an integration raises, and when (all on by default).

    >>> TrackioCallback(health=HealthChecks(stall_after=600, loss_spike=None))  # doctest: +SKIP
    >>> TrackioLogger("my-project", health=False)  # no health alerts at all  # doctest: +SKIP

    Args:
        nonfinite: alert on a NaN or infinite loss or gradient norm.
        loss_spike: alert when a loss exceeds this factor times its recent median (None: off).
        spike_window: how many recent values of each loss make its median.
        stall_after: seconds without a log (or a finished step) before a stall alert (None: off).
        failure: alert when training ends with an exception.
    """

    nonfinite: bool = True
    loss_spike: float | None = 3.0
    spike_window: int = 20
    stall_after: float | None = 1800.0
    failure: bool = True

    @classmethod
    def of(cls, value: HealthChecks | bool | Mapping[str, Any] | None) -> HealthChecks | None:
        """``True``/``None`` -> the defaults, ``False`` -> None (off), a mapping -> its fields."""
        if value is False:
            return None
        if value is True or value is None:
            return cls()
        if isinstance(value, Mapping):
            return cls(**value)
        return value

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_loss(name: str) -> bool:
    return "loss" in name.lower()


def is_grad_norm(name: str) -> bool:
    lowered = name.lower()
    return "grad_norm" in lowered or "gradnorm" in lowered or "grad-norm" in lowered


class Health:
    """The health checks of one run; ``observe`` from the training thread, the rest from anywhere.

    Args:
        run: what alerts go to (a ``TrackioClient``).
        checks: the settings.
        excepthook: see an uncaught exception through ``sys.excepthook`` (off where the framework
            reports failures itself and the adapter calls ``failed``).
    """

    def __init__(
        self, run: Alerting, checks: HealthChecks | None = None, excepthook: bool = True
    ) -> None:
        self.run = run
        self.checks = checks or HealthChecks()
        self._bad: set[str] = set()  # metrics non-finite at their last value
        self._history: dict[str, deque[float]] = {}
        self._calm: dict[str, int] = {}  # values below the spike threshold since the last spike
        self._step: int | None = None
        self._last = time.monotonic()
        self._stalled = False
        self._failed = False
        self._closed = False
        self._watchdog: Worker | None = None
        if self.checks.stall_after:
            self._watchdog = Worker("trackio-integrations-watchdog", self._watch, first=0.0)
            self._watchdog.ensure_started()
        if self.checks.failure and excepthook:
            _watching.add(self)
            _install_excepthook()

    # --- from the training thread --------------------------------------------------------------

    def beat(self, step: int | None = None) -> None:
        """Training made progress (a step ended): the stall clock starts again."""
        self._last = time.monotonic()
        if step is not None:
            self._step = step
        if self._stalled:
            self._stalled = False

    def observe(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Look at one logged point (flat or nested names). Never raises."""
        self.beat(step)
        try:
            values: dict[str, float] = {}
            _watched(metrics, "", values)
            if values:
                self._check(values, step if step is not None else self._step)
        except Exception:
            logger.exception("trackio-integrations: a health check failed")

    def _check(self, values: dict[str, float], step: int | None) -> None:
        newly_bad = []
        for name, value in values.items():
            if not math.isfinite(value):
                if name not in self._bad:
                    self._bad.add(name)
                    newly_bad.append((name, value))
                continue
            self._bad.discard(name)
            if self.checks.loss_spike and is_loss(name):
                self._spike(name, value, step)
        if newly_bad and self.checks.nonfinite:
            where = f" at step {step}" if step is not None else ""
            self.run.alert(
                f"Non-finite {', '.join(name for name, _ in newly_bad)}",
                "; ".join(f"{name} = {value}" for name, value in newly_bad) + where,
                "error",
                step,
            )

    def _spike(self, name: str, value: float, step: int | None) -> None:
        """Far above its recent level: ``loss_spike`` times the median of the window, and more
        than ``SPIKE_SIGMAS`` robust standard deviations (from the median absolute deviation)
        above it, so that the batch-to-batch noise of a per-step loss does not count. One alert
        per spike: the next needs a whole window of values below the threshold first."""
        factor = self.checks.loss_spike
        assert factor is not None
        history = self._history.get(name)
        if history is None:
            history = self._history[name] = deque(maxlen=max(self.checks.spike_window, 3))
        if len(history) >= min(5, history.maxlen or 5):
            median = statistics.median(history)
            spread = 1.4826 * statistics.median(abs(x - median) for x in history)
            if median > 0 and value > factor * median and value > median + SPIKE_SIGMAS * spread:
                if self._calm.get(name, len(history)) >= len(history):
                    self.run.alert(
                        f"Loss spike in {name}",
                        f"{name} = {value:.4g}"
                        + (f" at step {step}" if step is not None else "")
                        + f", {value / median:.1f}x its median {median:.4g} over the last "
                        f"{len(history)} values",
                        "warn",
                        step,
                    )
                self._calm[name] = 0
            else:
                self._calm[name] = self._calm.get(name, len(history)) + 1
        history.append(value)

    # --- from anywhere -------------------------------------------------------------------------

    def failed(self, exc_type: type[BaseException] | None, exc: BaseException | None) -> None:
        """Training ended with ``exc``: one ``error`` alert (the first failure only)."""
        if self._failed or self._closed or not self.checks.failure:
            return
        self._failed = True
        kind = exc_type.__name__ if exc_type is not None else "an unknown error"
        message = str(exc)[:500] if exc is not None else ""
        interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
        title = "Training interrupted" if interrupted else "Training failed"
        self.run.alert(title, f"{kind}: {message}" if message else kind, "error", self._step)

    def close(self) -> None:
        """Training ended (in success or failure): stop the watchdog, stop watching for errors."""
        self._closed = True
        _watching.discard(self)
        if self._watchdog is not None:
            self._watchdog.stop(0.2)

    def _watch(self, final: bool) -> float:
        stall_after = self.checks.stall_after
        if final or self._closed or not stall_after:
            return 0.0
        quiet = time.monotonic() - self._last
        if quiet < stall_after:
            return max(stall_after - quiet, 0.05)
        if not self._stalled:
            self._stalled = True
            where = f" (last step {self._step})" if self._step is not None else ""
            self.run.alert(
                "Training stalled",
                f"Nothing was logged for {_duration(quiet)} while the process is alive{where}",
                "error",
                self._step,
            )
        return max(stall_after / 4, 0.05)  # re-armed by the next beat


def _watched(metrics: Mapping[str, Any], prefix: str, out: dict[str, float]) -> None:
    """Losses and gradient norms among ``metrics``, as floats (nested mappings joined by ``/``)."""
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _watched(value, f"{name}/", out)
        elif (is_loss(name) or is_grad_norm(name)) and not isinstance(value, (bool, str)):
            item = getattr(value, "item", None)  # a tensor or NumPy scalar, graph or not
            with contextlib.suppress(TypeError, ValueError, RuntimeError):
                out[name] = float(item() if callable(item) else value)  # else: not a scalar


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --- uncaught exceptions ---------------------------------------------------------------------

_watching: weakref.WeakSet[Health] = weakref.WeakSet()
_previous_hook: Any = None


def _failure_hook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    for health in list(_watching):
        with contextlib.suppress(Exception):
            health.failed(exc_type, exc)
    (_previous_hook or sys.__excepthook__)(exc_type, exc, tb)


def _install_excepthook() -> None:
    """Once per process: a hook installed later that chains to ours must not be chained back."""
    global _previous_hook
    if _previous_hook is None and sys.excepthook is not _failure_hook:
        _previous_hook = sys.excepthook
        sys.excepthook = _failure_hook
