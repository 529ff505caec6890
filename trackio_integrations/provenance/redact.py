"""Secrets out of what provenance records: a command line, a URL, a package list.

A command line is recorded with every argument that looks like a secret replaced by ``***``:

- the value of a flag named like one: a part of its name is ``token``, ``key``, ``password``,
  ``pass``, ``pw``, ``secret``, ``auth``, ``bearer``, ``authorization``, ... or ends so
  (``--hftoken``), and ``-p``; the value after ``--password`` is masked even when it starts with
  ``-`` (``--password -x1``), unless it is the next long flag;
- inside any argument: ``name=value`` and ``name:value`` with a secret name, quoted or not
  (``db.password=...``, ``wandb_api_key:...``, ``--json={"token": "..."}``, ``python -c`` code),
  ``Bearer ...``, credentials inside a URL (``user:pass@``, ``?access_token=``), and every secret
  the one redaction knows (``redaction.known_secrets``: the write token, an HF token sent or not,
  a gateway's header values and password, the webhook URL, ``TRACKIO_*`` secrets) and every
  value of an environment variable named like a secret (``*_TOKEN``, ``*_KEY``, ...).

A path is never a secret: a flag naming a file, path or folder (``--key-file``) keeps its
value, an existing path is never masked, and ``PWD`` / ``OLDPWD`` are not secrets. Rather mask
too much of a value than leak part of it. Environment values themselves are never recorded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence

from trackio_integrations.redaction import MASK, hide, redact_text, strip_credentials

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
    "pass",
    "pw",
    "secret",
    "credential",
    "credentials",
    "creds",
    "auth",
    "passphrase",
    "bearer",
    "authorization",
}
# ... or ends a part (``--hftoken``, ``--dbpassword``, ``wandbapikey``).
_SECRET_ENDINGS = ("token", "password", "passwd", "secret", "apikey", "passphrase")
# A part that says the value is where a secret is, or about it, not the secret itself.
_NOT_SECRET_PARTS = {"file", "path", "dir", "folder", "name", "type", "size", "len", "length"}
_SHORT_FLAGS = {"-p"}
_NOT_SECRET_ENV = {"PWD", "OLDPWD"}
# Shorter values are too likely to occur by chance in a harmless argument ("1", "true").
_MIN_SECRET_LENGTH = 6
_LONG_FLAG = re.compile(r"--[A-Za-z][\w.-]*(=.*)?", re.DOTALL)
# ``name = "value"``, ``"name": "value"``, ``name:value``, ``name := value`` inside any text.
_ASSIGNMENT = re.compile(
    r"""(?<![\w.-])(?P<name>[A-Za-z_][\w.-]{0,63})(?P<q1>["']?)(?P<op>\s{0,8}(?::=|=>|=|:)\s{0,8})"""
    r"""(?:(?P<q2>["'])(?P<quoted>[^"'\n]*)(?P=q2)|(?P<bare>[^\s"',;)}\]&]+))"""
)


def secret_name(name: str) -> bool:
    """Whether a flag or a key (``--api-key``, ``trainer.hf_token``, ``PASSWORD``) names a secret."""
    if name in _SHORT_FLAGS:
        return True
    parts = [
        p.lower() for p in re.split(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])", name.strip("-")) if p
    ]
    if any(part in _NOT_SECRET_PARTS for part in parts):
        return False
    return any(part in _SECRET_WORDS or part.endswith(_SECRET_ENDINGS) for part in parts)


def is_path(value: str) -> bool:
    """Whether ``value`` names a file or folder that exists here: such a value is never masked."""
    try:
        return bool(value) and os.path.exists(os.path.expanduser(value))
    except (OSError, ValueError):
        return False


def environment_secrets(environ: Mapping[str, str]) -> set[str]:
    """The values of the environment's variables named like secrets (kept in memory only);
    a path (``PWD``, ``SSH_AUTH_SOCK``) is not one."""
    return {
        value
        for name, value in environ.items()
        if name not in _NOT_SECRET_ENV
        and secret_name(name)
        and len(value) >= _MIN_SECRET_LENGTH
        and not is_path(value)
    }


def clean_url(text: str) -> str:
    """``text`` with the credentials of any URL in it removed (user:password@, ?token=...)."""
    return strip_credentials(text)


_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s'\"]*)(/[^\s'\"#?]*)")
_DIGEST = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def clean_package_url(text: str) -> str:
    """``clean_url``, and a path segment that looks like a token masked: a package index that
    takes its token in the path (``https://pypi.fury.io/<token>/me/``). A segment with letters
    and digits, 16 characters or more, no dot, that is not a commit or a sha256 digest."""

    def segment(part: str) -> str:
        if (
            len(part) >= 16
            and "." not in part
            and re.search(r"[A-Za-z]", part)
            and re.search(r"\d", part)
            and not _DIGEST.fullmatch(part)
        ):
            return MASK
        return part

    def path(m: re.Match[str]) -> str:
        if m[1].lower().startswith("file:"):
            return m[0]  # a folder on this machine: a path, never a secret
        return m[1] + "/".join(segment(p) for p in m[2].split("/"))

    return _URL.sub(path, clean_url(text))


def hide_values(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each known secret value replaced by ``***``, longest first."""
    return hide(text, secrets, _MIN_SECRET_LENGTH)


def mask_assignments(text: str) -> str:
    """``text`` with the value of each ``name=value`` / ``name: value`` whose name is a
    secret's replaced by ``***`` (a quoted value keeps its quotes; a path is kept)."""

    def masked(m: re.Match[str]) -> str:
        if not secret_name(m["name"]) or text[m.start() - 1 : m.start()] in ("/", "\\"):
            return m[0]  # not a secret's name, or a folder's (``/data/token:v1``)
        value = m["quoted"] if m["quoted"] is not None else m["bare"]
        if len(value) < 1 or value == MASK or is_path(value):
            return m[0]
        if m["bare"] is not None and m["op"].strip() == ":" and value.startswith("//"):
            return m[0]  # ``auth://host``: a URL's scheme, handled by the URL rule
        start, end = m.span("quoted" if m["quoted"] is not None else "bare")
        return m[0][: start - m.start()] + MASK + m[0][end - m.start() :]

    return _ASSIGNMENT.sub(masked, text)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Every rule that applies inside a text: known values, URLs' credentials, secret
    assignments, ``Bearer`` values."""
    text = hide_values(text, secrets)
    if is_path(text):
        return text
    return mask_assignments(redact_text(clean_url(text)))


def redact_command(argv: Sequence[str], secrets: Iterable[str] = ()) -> list[str]:
    """The command line with its secrets replaced by ``***`` (see the module docstring)."""
    known = {secret for secret in secrets if not is_path(secret)}
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            hide_next = False
            if not _LONG_FLAG.fullmatch(arg):
                out.append(arg if is_path(arg) else REDACTED)
                continue
        if arg.startswith("-") and not _is_number(arg):
            name, eq, value = arg.partition("=")
            if secret_name(name):
                if not eq:  # --token VALUE: the next argument is the value
                    out.append(arg)
                    hide_next = True
                elif is_path(value):
                    out.append(arg)
                else:
                    out.append(f"{name}={REDACTED}")
                continue
            if eq:
                out.append(f"{name}={scrub(value, known)}")
                continue
        out.append(scrub(arg, known))
    return out


def _is_number(arg: str) -> bool:
    try:
        float(arg)
    except ValueError:
        return False
    return True
