"""One redaction for every secret this package may hold, applied wherever text leaves it.

Secrets reach us in URLs (``?write_token=``, ``user:password@``), arguments (``write_token=``,
``hf_token=``) and the environment (``TRACKIO_WRITE_TOKEN``, ``HF_TOKEN``). ``remember()`` is told
each one when a target is resolved; ``redact()`` hides every remembered value, every value of those
environment variables, URL passwords and secret-looking query values, in every form a message can
show them (as written, percent-encoded, JSON-escaped, as Python's bytes repr). The package's warnings
(``errors.warn_user``), its exceptions (``TrackioError``), its logger (``install_log_filter``) and
the CLI's output all pass through ``redact``, and provenance masks ``known_secrets()``: there is
no second copy of the rules.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable

MASK = "***"
SECRET_ENV = (
    "TRACKIO_WRITE_TOKEN",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "TRACKIO_CLIENT_KEY",
    "TRACKIO_WEBHOOK_URL",
)
_MIN_LENGTH = 6  # shorter values would mask ordinary words; no real token is this short
_SECRET_QUERY = re.compile(
    r"(?i)([?&;]|\b)((?:[\w.-]*?)(?:token|secret|password|passwd|key|signature|sig|auth))"
    r"=([^&#\s'\",;)]+)"
)
# ``scheme://user:password@host``, parsed or not: the password may hold an unencoded ``/`` or
# ``@`` (``postgres://u:p@ss@db``), so it runs to the last ``@`` that a host name follows (rather
# too much than a piece of a password: ``host:port/a@b`` loses ``host:port/a`` too, as a
# password ``00000/00`` cannot be told from a port and a path). A bare ``token@host`` is masked.
_USERINFO = re.compile(
    r"(?i)\b([a-z][a-z0-9+.-]*://)"
    r"([^\s/@:'\"<>]*:[^\s'\"<>]*|[^\s/@:'\"<>]+)"
    r"@(?=[a-z0-9\[][a-z0-9.\-\[\]:]*(?:[/?#\s'\"<>),;]|$))"
)
# ``Bearer <token>``, as an Authorization header or a flag's value shows it.
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)([A-Za-z0-9._~+/=-]{6,})")

_known: set[str] = set()
_lock = threading.Lock()


def remember(*secrets: str | None) -> None:
    """From now on ``redact`` hides these values, in every form a message may show them."""
    with _lock:
        for secret in secrets:
            _known.update(forms(secret))


def forms(secret: str | None) -> set[str]:
    """``secret`` as written and stripped of surrounding whitespace, each percent-encoded
    (``quote`` and ``quote_plus``), JSON-escaped and as Python's bytes repr shows it
    (``b'tok\\n'``): the forms a message or a file may hold it in. Nothing for a short value.
    """
    from urllib.parse import quote, quote_plus

    if not secret or not isinstance(secret, str):
        return set()
    found: set[str] = set()
    for value in {secret, secret.strip()}:
        if len(value) < _MIN_LENGTH:
            continue
        found |= {value, quote(value, safe=""), quote(value), quote_plus(value, safe="")}
        found.add(json.dumps(value)[1:-1])
        found.add(json.dumps(value, ensure_ascii=False)[1:-1])
        found.add(repr(value.encode("utf-8", "surrogateescape"))[2:-1])
        found.add(repr(value)[1:-1])
    return {value for value in found if len(value) >= _MIN_LENGTH}


def known_secrets() -> set[str]:
    """Every secret ``redact`` hides by value: those remembered and the secret environment
    variables' (each in all its forms). Provenance masks these in what it records."""
    with _lock:
        values = set(_known)
    for name in SECRET_ENV:
        values |= forms(os.environ.get(name))
    return values


def redact(text: str) -> str:
    """``text`` with every known secret replaced by ``***``.

    >>> redact("https://me:pa55word@host/x?write_token=abcd&sidebar=1")
    'https://***@host/x?write_token=***&sidebar=1'
    """
    if not text:
        return text
    text = hide(text, known_secrets())
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return redact_text(text)


def redact_text(text: str) -> str:
    """The rules that need no known value: secret-looking query values and ``Bearer`` values."""
    text = _SECRET_QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}={MASK}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


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
