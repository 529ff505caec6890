"""One redaction for every secret this package may hold, applied wherever text leaves it.

Secrets reach us in URLs (``?write_token=``, ``user:password@``), arguments (``write_token=``,
``hf_token=``) and the environment (``TRACKIO_WRITE_TOKEN``, ``HF_TOKEN``). ``remember()`` is told
each one when a target is resolved; ``redact()`` hides every remembered value, every value of those
environment variables, URL passwords and secret-looking query values. The package's warnings
(``errors.warn_user``), its exceptions (``TrackioError``), its logger (``install_log_filter``) and
the CLI's output all pass through ``redact``: there is no second copy of the rules.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable

MASK = "***"
SECRET_ENV = ("TRACKIO_WRITE_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "TRACKIO_CLIENT_KEY")
_MIN_LENGTH = 4  # shorter values would mask ordinary words; no real token is this short
_SECRET_QUERY = re.compile(
    r"(?i)([?&;]|\b)((?:[\w.-]*?)(?:token|secret|password|passwd|key|signature|sig|auth))"
    r"=([^&#\s'\",;)]+)"
)
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/@\s'\"]+)@")

_known: set[str] = set()
_lock = threading.Lock()


def remember(*secrets: str | None) -> None:
    """From now on ``redact`` hides these values (and their percent-encoded forms)."""
    from urllib.parse import quote

    with _lock:
        for secret in secrets:
            if secret and len(secret) >= _MIN_LENGTH:
                _known.add(secret)
                _known.add(quote(secret, safe=""))


def redact(text: str) -> str:
    """``text`` with every known secret replaced by ``***``.

    >>> redact("https://me:pa55word@host/x?write_token=abcd&sidebar=1")
    'https://***@host/x?write_token=***&sidebar=1'
    """
    if not text:
        return text
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _SECRET_QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}={MASK}", text)
    values = set(_known)
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= _MIN_LENGTH:
            values.add(value)
    return hide(text, values)


def hide(text: str, values: Iterable[str], min_length: int = _MIN_LENGTH) -> str:
    """``text`` with each of ``values`` replaced by ``***``, the longest first (so that no secret
    is left half-masked by a shorter one inside it)."""
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= min_length and value in text:
            text = text.replace(value, MASK)
    return text


def strip_credentials(text: str) -> str:
    """``text`` with the credentials of any URL in it removed, not masked (``user:password@``
    goes, secret query values become ``***``): for a URL that is recorded to be used again,
    such as a git remote."""
    text = _USERINFO.sub(lambda m: m.group(1), text)
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}={MASK}", text)


class RedactingFilter(logging.Filter):
    """Redacts a record's message, arguments and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_filter(logger: logging.Logger) -> None:
    """Put the redacting filter on ``logger`` (once)."""
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
