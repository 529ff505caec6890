"""The uncommitted diff, scanned before it leaves the machine, and put back together by
``reproduce``.

``mask_diff`` replaces, in the text lines of each hunk only (never a header, a path or a binary
patch), every secret the package knows and every value that looks like a credential, with the
rules of detect-secrets' ``KeywordDetector`` and ``Base64/HexHighEntropyString`` plugins:

- a value given to a secret-named name (``API_KEY = "..."``, ``password: ...``,
  ``"token": "..."``): quoted, or bare with letters and digits;
- a quoted string of 20 characters or more whose Shannon entropy is over 4.5 bits (base64
  alphabet) or 3.0 bits (hex), as detect-secrets' default limits;
- a token with a well-known prefix (``hf_``, ``ghp_``, ``github_pat_``, ``glpat-``, ``sk-``,
  ``xox?-``, ``AKIA``).

Only the value becomes ``***``, so a line keeps its place and a hunk its length: ``git apply``
does what it did, except on the masked values. A masked line on the old side of a hunk (context
or ``-``) would no longer match the commit; ``restore_old_side`` puts those lines back from the
commit, which ``reproduce`` has checked out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable

from trackio_integrations.provenance.redact import MASK, secret_name

_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
_KEYWORD = re.compile(
    r"""(?P<name>[A-Za-z_][\w.-]*)["']?\s*(?::=|=>|==|=|:)\s*"""
    r"""(?:[bru]?(?P<q>["'`])(?P<quoted>[^"'`\n]{6,})(?P=q)|(?P<bare>[^\s"'`,;)}\]#]{6,}))"""
)
_QUOTED = re.compile(r"""(?P<q>["'`])(?P<value>[A-Za-z0-9+/=_.~-]{20,})(?P=q)""")
_PREFIXED = re.compile(
    r"\b(?:hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|glpat-[\w-]{20,}"
    r"|sk-[A-Za-z0-9_-]{20,}|xox[abposr]-[\w-]{10,}|AKIA[0-9A-Z]{16})"
)
_BASE64 = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-")
_HEX = set("0123456789abcdefABCDEF")
BASE64_LIMIT = 4.5
HEX_LIMIT = 3.0


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    counts: dict[str, int] = {}
    for char in value:
        counts[char] = counts.get(char, 0) + 1
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


def high_entropy(value: str) -> bool:
    """Whether a quoted string looks random enough to be a key (detect-secrets' limits)."""
    chars = set(value)
    if chars <= _HEX:
        if value.isdigit():
            return False
        return entropy(value) > HEX_LIMIT and not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", value)
    return chars <= _BASE64 and entropy(value) > BASE64_LIMIT


def mask_line(line: str, known: re.Pattern[str] | None) -> str:
    """One line of text with its secrets' values replaced by ``***``."""
    if known is not None:
        line = known.sub(MASK, line)
    line = _PREFIXED.sub(MASK, line)

    def keyword(m: re.Match[str]) -> str:
        if not secret_name(m["name"]):
            return m[0]
        if m["quoted"] is not None:
            value, group = m["quoted"], "quoted"
        else:
            value, group = m["bare"], "bare"
            # Code, not a value: ``token = tokenizer.eos_token``, ``key = os.environ[...]``.
            if not (re.search(r"[A-Za-z]", value) and re.search(r"\d", value)) or "(" in value:
                return m[0]
        if value == MASK or (MASK in value and len(value.replace(MASK, "")) < 6):
            return m[0]
        start, end = m.span(group)
        return m[0][: start - m.start()] + MASK + m[0][end - m.start() :]

    line = _KEYWORD.sub(keyword, line)
    return _QUOTED.sub(lambda m: m["q"] + MASK + m["q"] if high_entropy(m["value"]) else m[0], line)


def known_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for every known secret, the longest first."""
    values = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, values))) if values else None


def mask_diff(diff: bytes, secrets: Iterable[str] = ()) -> tuple[bytes, int]:
    """``diff`` (``git diff --binary``) with its secrets masked, and how many lines changed."""
    known = known_pattern(secrets)
    out: list[bytes] = []
    masked = 0
    in_hunk = in_binary = False
    for raw in diff.splitlines(keepends=True):
        if raw.startswith(b"diff --git "):
            in_hunk = in_binary = False
        elif raw.startswith(b"GIT binary patch"):
            in_binary = True
        elif raw.startswith(b"@@ ") and not in_binary:
            in_hunk = True
        elif in_hunk and raw[:1] in (b"+", b"-", b" "):
            body = raw[1:]
            end = len(body) - len(body.rstrip(b"\r\n"))
            text = body[: len(body) - end].decode("utf-8", "surrogateescape")
            clean = mask_line(text, known)
            if clean != text:
                masked += 1
                raw = raw[:1] + clean.encode("utf-8", "surrogateescape") + body[len(body) - end :]
        out.append(raw)
    return b"".join(out), masked


def restore_old_side(diff: bytes, old_file: Callable[[str], bytes | None]) -> bytes:
    """``diff`` with each masked context or ``-`` line put back as the commit has it.

    ``old_file(path)`` gives a file's content at the commit (None: not there). A hunk's old
    side is that file's lines from its ``@@ -start`` on, in order: a line of the patch that
    holds ``***`` there is replaced by the commit's line, its own line ending kept.
    """
    if MASK.encode() not in diff:
        return diff
    out: list[bytes] = []
    old_path: str | None = None
    lines: list[bytes] | None = None
    position = 0
    in_hunk = in_binary = False
    for raw in diff.splitlines(keepends=True):
        if raw.startswith(b"diff --git "):
            in_hunk = in_binary = False
            old_path, lines = None, None
        elif raw.startswith(b"GIT binary patch"):
            in_binary = True
        elif raw.startswith(b"--- ") and not in_hunk:
            name = raw[4:].rstrip(b"\r\n").decode("utf-8", "surrogateescape")
            old_path = name[2:] if name.startswith("a/") else None
            lines = None
        elif raw.startswith(b"@@ ") and not in_binary:
            match = _HUNK.match(raw)
            in_hunk = match is not None
            position = int(match.group(1)) - 1 if match else 0
            if match and match.group(2) == b"0":
                position += 1  # an empty old side names the line before it
        elif in_hunk and raw[:1] in (b"-", b" "):
            if MASK.encode() in raw and old_path is not None:
                if lines is None:
                    content = old_file(old_path)
                    lines = content.splitlines(keepends=True) if content is not None else []
                if 0 <= position < len(lines):
                    original = lines[position].rstrip(b"\r\n")
                    ending = raw[len(raw.rstrip(b"\r\n")) :]
                    raw = raw[:1] + original + ending
            position += 1
        out.append(raw)
    return b"".join(out)
