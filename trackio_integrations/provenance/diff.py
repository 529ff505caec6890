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

import bisect
import math
import re
from collections.abc import Callable, Iterable

from trackio_integrations.provenance.redact import MASK

_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")
_KEYWORD = re.compile(
    r"""(?<![\w.-])(?P<name>[A-Za-z_][\w.-]{0,63})["']?[ \t]{0,8}(?::=|=>|=(?!=)|:)[ \t]{0,8}"""
    r"""(?:[bru]?(?P<q>["'`])(?P<quoted>[^"'`\n]{6,})(?P=q)|(?P<bare>[^\s"'`,;)}\]#]{6,}))"""
)
_QUOTED = re.compile(r"""(?P<q>["'`])(?P<value>[A-Za-z0-9+/=_.~-]{20,})(?P=q)""")
# Written as "first letter, then the rest" so that the scan skips most positions at C speed.
_PREFIXED = re.compile(
    r"[hgsxA](?<![\w-].)(?:f_[A-Za-z0-9]{20,}|h[pousr]_[A-Za-z0-9]{20,}|ithub_pat_\w{20,}"
    r"|lpat-[\w-]{20,}|k-[A-Za-z0-9_-]{20,}|ox[abposr]-[\w-]{10,}|KIA[0-9A-Z]{16})"
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
    # ``=`` only as base64's padding: ``type=triton_BLOCK-M=128`` is a setting, not a key.
    if "=" in value.rstrip("="):
        return False
    return chars <= _BASE64 and entropy(value) > BASE64_LIMIT


# What makes a name a credential's in code (narrower than a command line's flags: a diff is
# full of ``key = ...`` and ``pad_token = "<pad>"`` that are no secrets), after detect-secrets'
# keyword list.
_NAME_WORDS = {"password", "passwd", "pwd", "secret", "secrets", "token", "apikey", "passphrase"}
_NAME_WORDS |= {"credential", "credentials", "bearer", "webhook"}
_NAME_PAIRS = {"api", "auth", "private", "client", "access", "secret", "account", "service"}
_NAME_PAIRS |= {"signing", "encryption", "db", "database", "master", "app"}
_NOT_NAMES = {"eos", "bos", "pad", "unk", "mask", "sep", "cls", "max", "num", "type", "id"}
_NOT_NAMES |= {"file", "path", "dir", "name", "len", "length", "count", "size", "ids", "tokens"}
# A line is looked at by the keyword rule only if it holds one of these (lower case).
_HINT = re.compile(r"pass|pwd|secret|token|key|cred|bearer|webhook")
# Files whose bare values are values (``PASSWORD=hunter2`` in ``.env``, ``token: x`` in YAML);
# in code a bare word is a variable, and only a quoted value is taken.
_CONFIG_SUFFIXES = tuple(
    suffix.encode()
    for suffix in ".env .yaml .yml .ini .cfg .conf .toml .properties .sh .bash .zsh .txt .json "
    ".netrc .npmrc .pypirc".split()
)


def credential_name(name: str) -> bool:
    """Whether a name in code (``API_KEY``, ``db_password``, ``self.hf_token``) names a secret."""
    parts = [p.lower() for p in re.split(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])", name) if p]
    if not parts or parts[-1] in _NOT_NAMES or any(p in _NOT_NAMES for p in parts):
        return False
    for i, part in enumerate(parts):
        if part in _NAME_WORDS or part.endswith(("token", "password", "passwd", "secret")):
            return True
        if part in ("key", "pass") and i > 0 and parts[i - 1] in _NAME_PAIRS:
            return True
        if part.endswith("apikey"):
            return True
    return False


def mask_line(line: str, known: re.Pattern[str] | None, bare: bool = True) -> str:
    """One line of text with its secrets' values replaced by ``***``; ``bare``: an unquoted
    value counts too (a config file's line, not code)."""
    if known is not None:
        line = known.sub(MASK, line)
    line = _PREFIXED.sub(MASK, line)

    def keyword(m: re.Match[str]) -> str:
        if not credential_name(m["name"]):
            return m[0]
        if m["quoted"] is not None:
            value, group = m["quoted"], "quoted"
            if value[:1] in "<[{$%" or " " in value.strip():
                return m[0]  # a template, a special token, a sentence: no credential
        elif bare:
            value, group = m["bare"], "bare"
            # ``token = tokenizer.eos_token``: a name; a password has a digit in it, mostly.
            if "(" in value or value[:1] in "<[{$%" or not re.search(r"\d", value):
                return m[0]
        else:
            return m[0]
        if MASK in value and len(value.replace(MASK, "")) < 6:
            return m[0]
        start, end = m.span(group)
        return m[0][: start - m.start()] + MASK + m[0][end - m.start() :]

    if _HINT.search(line.lower()):
        line = _KEYWORD.sub(keyword, line)
    return _QUOTED.sub(lambda m: m["q"] + MASK + m["q"] if high_entropy(m["value"]) else m[0], line)


def known_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for every known secret, the longest first."""
    values = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, values))) if values else None


def mask_diff(diff: bytes, secrets: Iterable[str] = ()) -> tuple[bytes, int]:
    """``diff`` (``git diff --binary``) with its secrets masked, and how many lines changed.

    The detectors run once over the text of all hunk lines together (at the regex engine's
    speed); only the lines they hit are masked one by one.
    """
    # Only the known secrets that are in the diff at all: one pass each, at memchr speed.
    known = known_pattern(s for s in secrets if s.encode("utf-8", "surrogateescape") in diff)
    lines = diff.splitlines(keepends=True)
    content: list[int] = []  # the indices of hunk lines (+, -, context)
    config_file: list[bool] = []
    in_hunk = in_binary = bare = False
    for index, raw in enumerate(lines):
        if in_hunk and raw[:1] in (b"+", b"-", b" "):
            content.append(index)
            config_file.append(bare)
        elif raw.startswith(b"diff --git "):
            in_hunk = in_binary = False
            name = raw.rstrip(b"\r\n").rsplit(b" ", 1)[-1].lower()
            bare = name.endswith(_CONFIG_SUFFIXES) or b"." not in (name.rsplit(b"/", 1)[-1])
        elif raw.startswith(b"GIT binary patch"):
            in_binary = True
        elif raw.startswith(b"@@ ") and not in_binary:
            in_hunk = True
    text = "\n".join(
        lines[i][1:].rstrip(b"\r\n").decode("utf-8", "surrogateescape") for i in content
    )
    starts = [0]
    for i in content[:-1]:
        starts.append(
            starts[-1] + len(lines[i][1:].rstrip(b"\r\n").decode("utf-8", "surrogateescape")) + 1
        )
    hits: set[int] = set()
    patterns = [_PREFIXED, _QUOTED] + ([known] if known is not None else [])
    for pattern in patterns:
        hits.update(bisect.bisect_right(starts, m.start()) - 1 for m in pattern.finditer(text))
    hits.update(bisect.bisect_right(starts, m.start()) - 1 for m in _HINT.finditer(text.lower()))
    masked = 0
    for k in sorted(hits):
        index = content[k]
        raw = lines[index]
        body = raw[1:]
        ending = body[len(body.rstrip(b"\r\n")) :]
        line = body[: len(body) - len(ending)].decode("utf-8", "surrogateescape")
        clean = mask_line(line, known, config_file[k])
        if clean != line:
            masked += 1
            lines[index] = raw[:1] + clean.encode("utf-8", "surrogateescape") + ending
    return b"".join(lines), masked


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
