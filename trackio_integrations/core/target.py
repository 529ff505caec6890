"""Where points go: a Hugging Face Space, a self-hosted server, or local storage.

The rules, in order (an argument always beats its environment variable):

1. ``space_id`` / ``TRACKIO_SPACE_ID``: the Space wins; a server URL set too is ignored, with a warning.
2. ``server_url`` / ``TRACKIO_SERVER_URL``: a self-hosted ``trackio show`` server.
3. Neither: the embedded default, stored under ``TRACKIO_DIR`` for ``trackio show`` to display.

A server URL is taken as a browser's address bar holds it: ``http://host:7860/?project=p&
write_token=...&sidebar=collapsed#top`` names the server ``http://host:7860``. The write token is
kept, the dashboard's own query parameters and the fragment are dropped (the API takes none), a
sub-path is kept (``https://gw/trackio/``), and ``user:password@`` becomes basic auth.

Tokens and passwords live only in this module's ``Target`` (never in its repr or ``public()``) and
in request headers; each is handed to ``redaction.remember`` so no message can show it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from trackio_integrations.core.access import Access, resolve_access
from trackio_integrations.errors import TrackioConfigError, warn_user
from trackio_integrations.redaction import redact, remember

Kind = Literal["space", "server", "local"]

WRITE_TOKEN_HEADER = "X-Trackio-Write-Token"
# The arguments that name a target and how to reach it, as every entry point takes them.
TARGET_OPTIONS = (
    "server_url",
    "space_id",
    "write_token",
    "hf_token",
    "ca_bundle",
    "client_cert",
    "headers",
)
_SPACE_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


@dataclass(frozen=True)
class Target:
    """A resolved destination. ``str(target)`` and ``repr(target)`` never show a token."""

    kind: Kind
    url: str | None = None
    space_id: str | None = None
    trackio_dir: str | None = None
    write_token: str | None = field(default=None, repr=False, compare=False)
    hf_token: str | None = field(default=None, repr=False, compare=False)
    # Where the write token came from (a setting's name, never the token), for messages.
    token_from: str | None = field(default=None, repr=False, compare=False)
    # ``user:password@`` of the URL, sent as HTTP basic auth to that server only.
    basic_auth: tuple[str, str] | None = field(default=None, repr=False, compare=False)
    # What the gateway in front of the server asks: CAs, a client certificate, headers.
    access: Access = field(default_factory=Access, repr=False, compare=False)

    def __post_init__(self) -> None:
        remember(self.write_token, self.hf_token, *(self.basic_auth or ())[1:])
        if self.basic_auth:  # as an Authorization: Basic header shows it
            import base64

            remember(base64.b64encode(":".join(self.basic_auth).encode()).decode())

    def __str__(self) -> str:
        if self.kind == "space":
            return f"Space {self.space_id} ({self.url})"
        if self.kind == "server":
            return f"server {self.url}"
        return f"local storage in {self.trackio_dir}"

    def headers(self) -> dict[str, str]:
        """Request headers: each token goes only where it belongs."""
        headers = {"Content-Type": "application/json"}
        if self.kind == "server":  # the gateway's headers go to that server and nothing else
            headers.update(self.access.headers)
            if self.write_token:
                headers[WRITE_TOKEN_HEADER] = self.write_token
        if self.hf_token and self.url and sends_hf_token(self.url):
            headers["Authorization"] = f"Bearer {self.hf_token}"
        return headers

    def public(self) -> dict[str, str | None]:
        """What may be written to disk about this target (no token, ever)."""
        return {
            "kind": self.kind,
            "url": self.url,
            "space_id": self.space_id,
            "trackio_dir": self.trackio_dir,
        }


def resolve_target(
    *,
    server_url: str | None = None,
    space_id: str | None = None,
    write_token: str | None = None,
    hf_token: str | None = None,
    ca_bundle: str | os.PathLike[str] | None = None,
    client_cert: str | os.PathLike[str] | tuple[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    """Apply the target rules to arguments and environment; raise ``TrackioConfigError`` if unusable.

    ``ca_bundle``, ``client_cert`` and ``headers`` reach a server behind a gateway (see ``access``).

    >>> resolve_target(server_url="http://127.0.0.1:7860?write_token=s3cret", env={})
    Target(kind='server', url='http://127.0.0.1:7860', space_id=None, trackio_dir=None)
    """
    env = os.environ if env is None else env
    space = space_id or env.get("TRACKIO_SPACE_ID") or None
    url = server_url or env.get("TRACKIO_SERVER_URL") or None
    # A token read from a file keeps its newline: surrounding whitespace is never part of one.
    write_token, hf_token = _stripped(write_token), _stripped(hf_token)
    remember(hf_token)  # a secret even where it is not sent (a self-hosted server)

    if space:
        if url:
            warn_user(
                f"Both a Space ({space}) and a server URL ({redact_url(url)}) are set: "
                "the Space wins and the server URL is ignored."
            )
        space_url = space_url_for(space)
        return Target("space", space_url, space, None, None, hf_token or _hf_token(env))

    if url:
        clean, url_token = split_write_token(validate_url(url))
        clean, auth = split_basic_auth(clean)
        sources = (
            ("write_token", write_token),
            ("server_url" if server_url else "TRACKIO_SERVER_URL", url_token),
            ("TRACKIO_WRITE_TOKEN", _stripped(env.get("TRACKIO_WRITE_TOKEN"))),
        )
        source, token = next(((name, t) for name, t in sources if t), (None, None))
        hf = (hf_token or _hf_token(env)) if sends_hf_token(clean) else None
        access = resolve_access(
            ca_bundle=ca_bundle, client_cert=client_cert, headers=headers, env=env
        )
        if not access.verify and clean.startswith("https:"):
            warn_user(
                f"TLS verification is off for {clean} (TRACKIO_TLS_VERIFY=0): anyone on the "
                "network path can read the write token. Use this with a test server only; set "
                "TRACKIO_CA_BUNDLE to trust a private CA instead."
            )
        return Target("server", clean, None, None, token, hf, source, auth, access)

    return Target("local", None, None, str(trackio_dir(env)))


def saved_target(
    saved: Mapping[str, Any],
    named: Target,
    *,
    hf_token: str | None = None,
    loose_write_token: tuple[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    """The target a spool was written for (its ``Target.public()``), with the tokens it gets here.

    ``named`` is what the settings here resolve to (``resolve_target``): its write token goes to
    the spool's server only when that is the same server (``same_server``), never to another one.
    ``loose_write_token`` is ``(token, where from)`` for a token no server URL came with; the
    caller passes it only where it cannot reach a server it was not meant for. The Hugging Face
    token follows the client's rule: ``hf_token``, else ``HF_TOKEN`` or the stored login, and
    only to Hugging Face hosts.
    """
    env = os.environ if env is None else env
    hf_token = _stripped(hf_token)
    remember(hf_token)
    kind = saved.get("kind")
    if kind == "local":
        return Target("local", None, None, saved.get("trackio_dir") or str(trackio_dir(env)))
    if kind == "space":
        space = str(saved.get("space_id") or "")
        return Target("space", space_url_for(space), space, None, None, hf_token or _hf_token(env))
    url, _ = split_basic_auth(validate_url(str(saved.get("url") or "")))
    hf = (hf_token or _hf_token(env)) if sends_hf_token(url) else None
    if named.kind == "server" and named.url and same_server(named.url, url):
        return Target(
            "server",
            url,
            None,
            None,
            named.write_token,
            hf,
            named.token_from,
            named.basic_auth,
            named.access,
        )
    token, source = loose_write_token or (None, None)
    # Another server: what to trust applies, nothing that speaks for us (headers, certificate).
    trust = (
        named.access.tls_only() if named.kind == "server" else resolve_access(env=env).tls_only()
    )
    return Target("server", url, None, None, token, hf, source, None, trust)


def same_server(a: str, b: str) -> bool:
    """Whether two URLs name one server: same scheme, host, port and path (the query aside).

    >>> same_server("http://Host:80/trackio/", "http://host/trackio?write_token=x")
    True
    """
    try:
        return _server_key(a) == _server_key(b)
    except ValueError:
        return False


def _server_key(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/")


def validate_url(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) URL with a host, else raise (token redacted)."""
    problem = None
    if not isinstance(url, str):
        raise TrackioConfigError(
            f"Invalid Trackio server URL: expected a string, got {type(url).__name__}."
        )
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises ValueError on a malformed port
        if parts.scheme not in ("http", "https"):
            problem = "it must start with http:// or https://"
        elif not parts.hostname:
            problem = "it has no host"
    except ValueError as exc:
        # urllib quotes the part it could not read, which may be a piece of a password.
        problem = "it could not be read" if "@" in url else str(exc)
        if "@" in url:
            problem += " (percent-encode a / or @ in a password: %2F, %40)"
    if problem:
        raise TrackioConfigError(
            f"Invalid Trackio server URL {redact_url(url)!r}: {problem}. "
            "Expected something like http://trackio.internal:7860 "
            "(from server_url= or TRACKIO_SERVER_URL)."
        )
    return url.strip()


def split_write_token(url: str) -> tuple[str, str | None]:
    """The server's base URL and the ``write_token`` it carried: (clean URL, token or None).

    Every other query parameter (the dashboard's ``project``, ``sidebar``, ...) and the fragment
    are dropped, a trailing slash too; the path (a gateway's sub-path) and ``user:password@`` stay.

    >>> split_write_token("http://h:7860/?project=p&write_token=w&sidebar=collapsed#x")
    ('http://h:7860', 'w')
    """
    parts = urlsplit(url.strip())
    token = None
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "write_token" and value:
            token = value
    clean = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return clean, token


def split_basic_auth(url: str) -> tuple[str, tuple[str, str] | None]:
    """``https://user:pa%40ss@host/x`` -> (``https://host/x``, (``user``, ``pa@ss``)).

    The credentials are percent-decoded, as a browser sends them; the URL keeps the rest.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return clean, (unquote(user), unquote(password))


def redact_url(url: str) -> str:
    """``url`` for a message: no password, no secret-looking query value (see ``redaction``)."""
    return redact(str(url))


def space_url_for(space_id: str) -> str:
    """``owner/name`` -> ``https://owner-name.hf.space`` (as Hugging Face serves Spaces)."""
    if not _SPACE_ID.match(space_id):
        raise TrackioConfigError(
            f"Invalid Space id {space_id!r}: expected 'owner/name' "
            "(from space_id= or TRACKIO_SPACE_ID)."
        )
    host = re.sub(r"[_.]", "-", space_id.replace("/", "-").lower())
    return f"https://{host}.hf.space"


def is_hf_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(".hf.space") or host in ("huggingface.co", "hf.co")


def sends_hf_token(url: str) -> bool:
    """Whether the Hugging Face token goes to ``url``: a Hugging Face host, over https only."""
    return url.strip().lower().startswith("https://") and is_hf_host(url)


def _stripped(value: str | None) -> str | None:
    return value.strip() or None if isinstance(value, str) else value


def trackio_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where ``trackio show`` keeps its data: ``TRACKIO_DIR``, else ``$HF_HOME/trackio``."""
    env = os.environ if env is None else env
    if env.get("TRACKIO_DIR"):
        return Path(env["TRACKIO_DIR"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "trackio"
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "huggingface" / "trackio"


def _hf_token(env: Mapping[str, str]) -> str | None:
    """``HF_TOKEN``, else the token ``huggingface-cli login`` stored, when that package exists."""
    if env.get("HF_TOKEN", "").strip():
        return env["HF_TOKEN"].strip()
    try:
        from huggingface_hub import get_token
    except ImportError:
        return None
    try:
        return get_token()
    except Exception:
        return None
