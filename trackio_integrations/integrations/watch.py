"""``watch``: histograms of a model's gradients and parameters every ``every`` steps, as W&B's.

A ``Watcher`` is asked at the framework's own moments (Lightning: when it logs; Transformers:
after each optimizer step, before the gradients are zeroed) for the histograms due, and reads the
model only when one is. Nothing is hooked into the forward or backward pass, so a watched model
trains at full speed between histograms and an unwatched one pays nothing. Each histogram is
computed on the tensor's device (``encoding.torch_histogram``): only its counts are copied.

>>> watcher = Watcher(model, "all", every=100)  # doctest: +SKIP
>>> run.log({**metrics, **watcher.histograms(step)}, step=step)  # gradients/<name>, parameters/...
"""

from __future__ import annotations

from typing import Any

from trackio_integrations.errors import TrackioConfigError
from trackio_integrations.media.kinds import Histogram

MODES = ("gradients", "parameters", "all")
_OFF = ("", "false", "none", "off", "0")


def watch_mode(value: Any) -> str | None:
    """``"gradients"``, ``"parameters"``, ``"all"``, or None (off: None, False, "false", ...)."""
    if value is None or value is False:
        return None
    mode = str(value).strip().lower()
    if mode in _OFF:
        return None
    if mode not in MODES:
        raise TrackioConfigError(f"watch={value!r}: use one of {MODES}, or None to switch it off.")
    return mode


class Watcher:
    """Histograms of ``model``'s parameters and/or gradients, once every ``every`` steps."""

    def __init__(
        self, model: Any, log: str | None = "gradients", every: int = 100, start: int = 0
    ) -> None:
        self.model = model
        self.mode = watch_mode(log)  # None: nothing to log (W&B's log=None)
        self.every = max(int(every), 1)
        # The last multiple of ``every`` each kind was logged at; a resumed run goes on from its step.
        self._parameters = self._gradients = max(int(start), 0) // self.every

    def histograms(self, step: int | None) -> dict[str, Histogram]:
        """The histograms due at ``step``: each kind once per new multiple of ``every`` (steps may
        skip). Gradients wait for a step that has them (Lightning drops them for validation)."""
        if step is None or self.mode is None:
            return {}
        bucket = int(step) // self.every
        out: dict[str, Histogram] = {}
        if self.mode != "gradients" and bucket > self._parameters:
            self._parameters = bucket
            for name, parameter in self._trained():
                out[f"parameters/{name}"] = Histogram(parameter.detach())
        if self.mode != "parameters" and bucket > self._gradients:
            for name, parameter in self._trained():
                if parameter.grad is not None:
                    out[f"gradients/{name}"] = Histogram(parameter.grad.detach())
                    self._gradients = bucket
        return out

    def _trained(self) -> Any:
        return ((n, p) for n, p in self.model.named_parameters() if p.requires_grad)
