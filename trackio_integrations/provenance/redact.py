"""Secrets out of what provenance records: a command line, a URL, a package list.

A command line is recorded with every argument that looks like a secret replaced by ``***``:
the value of a flag named like one (``--api-key=...``, ``--token ...``, ``--db-password``), the
value of a ``key=value`` argument named like one, credentials inside a URL, and any text equal to
a secret the environment holds (``TRACKIO_WRITE_TOKEN``, ``HF_TOKEN``, any ``*_TOKEN``, ``*_KEY``,
``*_SECRET``, ``*_PASSWORD``). Environment values themselves are never recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from trackio_integrations.redaction import MASK, hide, strip_credentials

REDACTED = MASK

# Words that make a flag or a key secret, matched as whole parts of its name
# (``--max-new-tokens`` and ``--tokenizer`` are not secrets; ``--hf_token`` is).
_SECRET_WORDS = {
    "token",
    "key",
    "apikey",
    "password",
    "passwd",
    "pwd",
    "secret",
    "credential",
    "credentials",
    "auth",
    "passphrase",
}
# Shorter values are too likely to occur by chance in a harmless argument ("1", "true").
_MIN_SECRET_LENGTH = 6


def secret_name(name: str) -> bool:
    """Whether a flag or a key (``--api-key``, ``trainer.hf_token``, ``PASSWORD``) names a secret."""
    parts = re.split(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])", name.strip("-"))
    return any(part.lower() in _SECRET_WORDS for part in parts if part)


def environment_secrets(environ: Mapping[str, str]) -> set[str]:
    """The values of the environment's variables named like secrets (kept in memory only)."""
    return {
        value
        for name, value in environ.items()
        if secret_name(name) and len(value) >= _MIN_SECRET_LENGTH
    }


def clean_url(text: str) -> str:
    """``text`` with the credentials of any URL in it removed (user:password@, ?token=...)."""
    return strip_credentials(text)


def hide_values(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each known secret value replaced by ``***``, longest first."""
    return hide(text, secrets, _MIN_SECRET_LENGTH)


def redact_command(argv: Sequence[str], secrets: Iterable[str] = ()) -> list[str]:
    """The command line with its secrets replaced by ``***`` (see the module docstring)."""
    known = set(secrets)
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            hide_next = False
            if not arg.startswith("-"):
                out.append(REDACTED)
                continue
        if arg.startswith("-") and not _is_number(arg):
            name, eq, _ = arg.partition("=")
            if secret_name(name):
                if eq:
                    out.append(f"{name}={REDACTED}")
                else:  # --token VALUE: the next argument is the value
                    out.append(arg)
                    hide_next = True
                continue
        elif "=" in arg:
            key = arg.split("=", 1)[0]
            if secret_name(key.rsplit(".", 1)[-1]) and "/" not in key and " " not in key:
                out.append(f"{key}={REDACTED}")
                continue
        out.append(hide_values(clean_url(arg), known))
    return out


def _is_number(arg: str) -> bool:
    try:
        float(arg)
    except ValueError:
        return False
    return True
