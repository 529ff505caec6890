"""Alerts forwarded to a webhook (Slack, Discord or plain JSON), posted from a background thread.

The payloads are the ones trackio's own ``alerts.py`` sends: Slack ``blocks`` for
``hooks.slack.com``, a Discord ``embed`` for ``discord.com/api/webhooks``, else a plain object
``{level, title, text, project, run, step, timestamp}``. The alert itself is already durable in
the spool (the dashboard gets it exactly once); the webhook is a notification on top, retried
while the process lives and waited for, within the run's timeout, by ``finish()`` and at exit.
A request carries the payload and ``Content-Type`` only, never a Trackio or Hugging Face token.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from trackio_integrations.core.worker import Worker
from trackio_integrations.errors import warn_user
from trackio_integrations.redaction import remember

if TYPE_CHECKING:
    import httpx  # loaded on the first post: a run with no webhook never needs it

logger = logging.getLogger("trackio_integrations")

LEVELS = ("info", "warn", "error")
MAX_QUEUED = 1000
MAX_TRIES = 10  # about 10 minutes of backoff (1 s doubling to 2 min) before an alert is given up
_EMOJI = {"info": "ℹ️", "warn": "⚠️", "error": "🚨"}
_DISCORD_COLOURS = {"info": 3447003, "warn": 16776960, "error": 15158332}


def payload(
    url: str,
    level: str,
    title: str,
    text: str | None,
    project: str,
    run: str,
    step: int | None,
    timestamp: str | None,
) -> dict[str, Any]:
    """The JSON body trackio would post to ``url`` for this alert."""
    where = f"Project: {project}  •  Run: {run}" + (f"  •  Step {step}" if step is not None else "")
    heading = f"{_EMOJI.get(level, '')} [{level.upper()}] {title}"
    if "hooks.slack.com" in url:
        bold = f"{_EMOJI.get(level, '')} *[{level.upper()}] {title}*"
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": bold}}
        ]
        if text:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": where}]})
        return {"blocks": blocks}
    if "discord.com/api/webhooks" in url or "discordapp.com/api/webhooks" in url:
        embed: dict[str, Any] = {
            "title": heading,
            "color": _DISCORD_COLOURS.get(level, 0),
            "footer": {"text": where},
        }
        if text:
            embed["description"] = text
        return {"embeds": [embed]}
    return {
        "level": level,
        "title": title,
        "text": text,
        "project": project,
        "run": run,
        "step": step,
        "timestamp": timestamp,
    }


def level_at_least(level: str, minimum: str | None) -> bool:
    return minimum is None or LEVELS.index(level) >= LEVELS.index(minimum)


class WebhookPoster:
    """A small in-memory queue of alert payloads and the thread that posts them, in order.

    Network errors, 5xx and 429 are retried with backoff (up to ``MAX_TRIES`` times); any other
    answer but 2xx drops that alert with one warning. The queue holds ``MAX_QUEUED`` alerts at
    most (the oldest go first): alerts are rare, a flood is a bug worth not amplifying.
    """

    def __init__(
        self,
        url: str,
        *,
        min_level: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        # Slack's and Discord's key is the URL's path (tens of characters): hide it wherever it
        # shows; a short path (a test's "/hook") is no key and would mask ordinary words.
        path = urlsplit(url).path.strip("/")
        remember(url, path if len(path) >= 16 else None)
        self.min_level = min_level
        self.posted = 0
        self.dropped = 0
        self._timeout = timeout
        self._transport = transport
        self._http: httpx.Client | None = None
        self._queue: deque[dict[str, Any]] = deque()
        self._tries = 0
        self._busy = False
        self._done = threading.Condition()
        self._worker = Worker("trackio-integrations-webhook", self._cycle, retry=5.0)

    @classmethod
    def configured(
        cls,
        url: str | None = None,
        min_level: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> WebhookPoster | None:
        """A poster for ``url`` (else ``TRACKIO_WEBHOOK_URL``), or None when neither is set."""
        url = url or os.environ.get("TRACKIO_WEBHOOK_URL") or None
        if not url:
            return None
        minimum = str(min_level or os.environ.get("TRACKIO_WEBHOOK_MIN_LEVEL") or "").lower()
        if minimum and minimum not in LEVELS:
            warn_user(f"Alert webhook minimum level {minimum!r} is not one of {LEVELS}: all.")
            minimum = ""
        return cls(url, min_level=minimum or None, transport=transport)

    def alert(
        self, level: str, title: str, text: str | None, project: str, run: str, step: int | None
    ) -> None:
        """Queue an alert's payload if ``level`` reaches the minimum level; returns at once."""
        if level_at_least(level, self.min_level):
            stamp = datetime.now(timezone.utc).isoformat()
            self.post(payload(self.url, level, title, text, project, run, step, stamp))

    @property
    def where(self) -> str:
        """The webhook's host: its URL is a secret (Slack and Discord put the key in the path)."""
        return urlsplit(self.url).netloc or "the webhook"

    def post(self, body: dict[str, Any]) -> None:
        """Queue one payload; returns at once."""
        with self._done:
            if len(self._queue) >= MAX_QUEUED:
                self._queue.popleft()
                self._drop("the queue is full")
            self._queue.append(body)
        self._worker.ensure_started()
        self._worker.wake()

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the queue to empty; True if it did."""
        deadline = time.monotonic() + timeout
        self._worker.wake()
        with self._done:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._worker.owned_here:
                    break
                self._done.wait(remaining)
            return not self._queue

    def close(self, timeout: float) -> bool:
        """Flush within ``timeout``, then end the thread; what is left is given up, with a warning."""
        flushed = self.flush(timeout)
        # Its last cycle ends at once; a post in flight finishes alone, on its open connection.
        stopped = self._worker.stop(0.0)
        with self._done:
            left = len(self._queue)
            self._queue.clear()
        if left:
            self.dropped += left
            logger.warning(
                "trackio-integrations: %d alert(s) were not posted to %s in time (they are in "
                "the dashboard's Alerts tab).",
                left,
                self.where,
            )
        if self._http is not None and stopped:
            self._http.close()
        return flushed

    def _cycle(self, final: bool) -> float:
        if final:
            return 0.0
        while True:
            with self._done:
                if not self._queue:
                    self._done.notify_all()
                    return 3600.0  # woken by the next post() or stop()
                body = self._queue[0]
                self._busy = True
            try:
                retry = self._send(body)
            finally:
                with self._done:
                    self._busy = False
                    if retry is None and self._queue and self._queue[0] is body:
                        self._queue.popleft()
                    self._done.notify_all()
            if retry is not None:
                return retry

    def _send(self, body: dict[str, Any]) -> float | None:
        """Post one payload; None when it is done with (posted or dropped), else the retry delay."""
        import httpx

        if self._http is None:
            self._http = httpx.Client(
                timeout=self._timeout, follow_redirects=False, transport=self._transport
            )
        try:
            status = self._http.post(self.url, json=body).status_code
        except httpx.HTTPError as exc:
            status, reason = None, type(exc).__name__
        else:
            reason = f"HTTP {status}"
        if status is not None and 200 <= status < 300:
            self.posted += 1
            self._tries = 0
            return None
        if status is not None and status < 500 and status != 429:
            self._tries = 0
            self._drop(reason)
            return None
        self._tries += 1
        if self._tries >= MAX_TRIES:
            self._tries = 0
            self._drop(f"{reason}, {MAX_TRIES} tries")
            return None
        ceiling = min(120.0, 2.0**self._tries)
        import random  # only after a failure: a webhook that answers never loads it

        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _drop(self, reason: str) -> None:
        self.dropped += 1
        logger.warning(
            "trackio-integrations: an alert was not posted to %s (%s); it is in the dashboard's "
            "Alerts tab.",
            self.where,
            reason,
        )
