"""``TrackioClient.alert()``: an alert recorded in the spool, printed, and posted to a webhook.

Split out of ``client.py`` (points, system samples, the spool) as a concern of its own: alert
levels, the console line trackio prints for an alert, and the optional webhook. ``TrackioClient``
inherits ``AlertMethods``, so it stays ``run.alert(...)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trackio_integrations.core.records import RunFields
    from trackio_integrations.core.spool import Spool
    from trackio_integrations.monitoring.webhook import WebhookPoster

logger = logging.getLogger("trackio_integrations")

ALERT_LEVELS = ("info", "warn", "error")
_ALERT_COLOURS = {"info": "\033[94m", "warn": "\033[93m", "error": "\033[91m"}


def format_alert(level: str, title: str, text: str | None, step: int | None) -> str:
    """The console line for an alert, as trackio prints it."""
    where = f" (step {step})" if step is not None else ""
    tag = f"{_ALERT_COLOURS.get(level, '')}[TRACKIO {level.upper()}]\033[0m"
    return f"{tag} {title}: {text}{where}" if text else f"{tag} {title}{where}"


class AlertMethods:
    """Alerts: stored once like a point, shown in the Alerts tab, printed, posted to a webhook."""

    # Set by TrackioClient; declared here for the type checker.
    project: str
    name: str
    _lock: threading.Lock
    _finished: bool
    _spool: Spool | None
    _fields: RunFields
    _last_step: int | None
    _webhook: WebhookPoster | None
    _warn: Callable[[str, str], None]  # warns once per key
    _next_id: Callable[[], bytes]  # a record id unique to this writer (lock held)
    _start_writer: Callable[[], None]  # a spool and a sender for this process

    def alert(
        self,
        title: str,
        text: str | None = None,
        level: str = "warn",
        step: int | None = None,
        webhook_url: str | None = None,
    ) -> None:
        """Raise an alert: printed here, shown in the dashboard's Alerts tab, stored once.

        ``level`` is ``"info"``, ``"warn"`` or ``"error"`` (or trackio's ``AlertLevel``); ``step``
        defaults to the run's last step. Never raises, never waits. ``webhook_url`` (trackio's
        per-alert webhook) is not supported: pass ``alert_webhook=`` to the client instead.

        Examples:
            >>> run.alert("Loss spike", "train/loss jumped 10x", level="warn")  # doctest: +SKIP
        """
        try:
            if webhook_url is not None:
                self._warn(
                    "webhook_url",
                    "alert(webhook_url=...) is not supported: pass alert_webhook= to the client "
                    "(or set TRACKIO_WEBHOOK_URL); the alert is recorded without it.",
                )
            if self._finished:
                self._warn("finished", "alert() after finish() is ignored: start a new client.")
                return
            name = str(getattr(level, "value", level)).lower()
            if name not in ALERT_LEVELS:
                self._warn("level", f"Alert level {level!r} is not one of {ALERT_LEVELS}: 'warn'.")
                name = "warn"
            with self._lock:
                if self._spool is None:
                    self._start_writer()
                assert self._spool is not None
                step = step if step is not None else self._last_step
                alert_id = self._next_id()
                self._spool.append(
                    self._fields.alert(
                        str(title),
                        None if text is None else str(text),
                        name,
                        step,
                        alert_id.decode(),
                        time.time(),
                    )
                )
            print(format_alert(name, str(title), text, step), flush=True)
            if self._webhook is not None:
                text = None if text is None else str(text)
                self._webhook.alert(name, str(title), text, self.project, self.name, step)
        except Exception:
            logger.exception("trackio-integrations: alert() failed")
