"""How a self-hosted server is reached through the company's gateway: TLS trust, a client
certificate, access headers, and what a failed TLS handshake means.

Each setting is an argument (of ``TrackioClient`` and every integration) and an environment
variable, the argument winning:

================  ==================================  ===========================================
argument          environment                         meaning
================  ==================================  ===========================================
``ca_bundle``     ``TRACKIO_CA_BUNDLE``               a PEM file or folder of CAs to trust
``client_cert``   ``TRACKIO_CLIENT_CERT`` / ``_KEY``  a client certificate (mTLS): a path, or a
                                                      (certificate, key) pair of paths
``headers``       ``TRACKIO_HEADERS`` (JSON object)   sent with every request to that server only
(none)            ``TRACKIO_TLS_VERIFY=0``            no verification: a test server only
================  ==================================  ===========================================

Without ``ca_bundle``: ``SSL_CERT_FILE``, ``SSL_CERT_DIR`` and ``REQUESTS_CA_BUNDLE`` as the
ecosystem uses them, else the operating system's trust store (``truststore`` where installed;
else OpenSSL's default paths, which on Linux are the system store) together with certifi's CAs,
so an internal CA installed on the machine just works. ``HTTPS_PROXY`` / ``HTTP_PROXY`` /
``NO_PROXY`` are honoured by httpx itself. Header values are secrets: never shown, never written
to the spool (``sync`` on another machine reads them from that machine's environment).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from trackio_integrations.errors import TrackioConfigError
from trackio_integrations.redaction import remember

if TYPE_CHECKING:
    import ssl  # loaded only to reach a server (ssl takes ms to import: not for local runs)

_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Access:
    """What a gateway asks of the client, besides the URL's own ``user:password@``."""

    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    verify: bool = True

    def __post_init__(self) -> None:
        remember(*(value for _, value in self.headers))

    def tls_only(self) -> Access:
        """The settings that may serve another server too: what to trust, nothing that speaks
        for us (no client certificate, no headers)."""
        return Access(ca_bundle=self.ca_bundle, verify=self.verify)


def resolve_access(
    *,
    ca_bundle: str | os.PathLike[str] | None = None,
    client_cert: str | os.PathLike[str] | tuple[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Access:
    """The gateway settings from arguments, then the environment; ``TrackioConfigError`` (a
    ``ValueError``) for one that cannot work, at construction, not at the first request."""
    env = os.environ if env is None else env
    bundle = os.fspath(ca_bundle) if ca_bundle else env.get("TRACKIO_CA_BUNDLE") or None
    if bundle and not os.path.exists(bundle):
        raise TrackioConfigError(
            f"The CA bundle {bundle} does not exist (from ca_bundle= or TRACKIO_CA_BUNDLE): "
            "give the PEM file (or folder) of the CA that signed the server's certificate."
        )
    cert: str | None
    key: str | None
    if isinstance(client_cert, tuple):
        cert, key = client_cert
    else:
        cert = os.fspath(client_cert) if client_cert else env.get("TRACKIO_CLIENT_CERT") or None
        key = env.get("TRACKIO_CLIENT_KEY") or None
    for what, path in (("client certificate", cert), ("client key", key)):
        if path and not os.path.isfile(path):
            raise TrackioConfigError(
                f"The {what} {path} does not exist (from client_cert= or TRACKIO_CLIENT_CERT / "
                "TRACKIO_CLIENT_KEY)."
            )
    if key and not cert:
        raise TrackioConfigError("TRACKIO_CLIENT_KEY is set without TRACKIO_CLIENT_CERT.")
    verify = str(env.get("TRACKIO_TLS_VERIFY", "")).strip().lower() not in _FALSE
    return Access(bundle, cert, key, _headers(headers, env), verify)


def _headers(
    given: Mapping[str, str] | None, env: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    source = "headers="
    value: Any = given
    if value is None and env.get("TRACKIO_HEADERS"):
        source = "TRACKIO_HEADERS"
        try:
            value = orjson.loads(env["TRACKIO_HEADERS"])
        except orjson.JSONDecodeError:
            raise TrackioConfigError(
                'TRACKIO_HEADERS must be a JSON object, like {"X-Access-Token": "..."}.'
            ) from None
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and k.strip() for k, v in value.items()
    ):
        raise TrackioConfigError(
            f'{source} must map header names to string values, like {{"X-Access-Token": "..."}}.'
        )
    # A value read from a file keeps its newline, which no header may hold: strip it.
    return tuple((k.strip(), v.strip()) for k, v in value.items())


def ssl_context(access: Access) -> ssl.SSLContext:
    """The TLS context for a server reached with ``access`` (built once per settings)."""
    env = os.environ  # read here, not in the cache: a changed variable gets a new context
    bundle = access.ca_bundle or env.get("SSL_CERT_FILE") or env.get("REQUESTS_CA_BUNDLE") or None
    folder = None if bundle else env.get("SSL_CERT_DIR") or None
    return _context(bundle, folder, access.client_cert, access.client_key, access.verify)


@functools.lru_cache(maxsize=8)
def _context(
    bundle: str | None, folder: str | None, cert: str | None, key: str | None, verify: bool
) -> ssl.SSLContext:
    import ssl

    if bundle or folder:
        ctx = ssl.create_default_context(
            cafile=bundle if bundle and os.path.isfile(bundle) else None,
            capath=folder or (bundle if bundle and os.path.isdir(bundle) else None),
        )
    else:
        ctx = _system_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def _system_context() -> ssl.SSLContext:
    """The machine's own trust store, with certifi's CAs beside it for public servers."""
    import ssl

    try:
        import truststore
    except ImportError:
        ctx = ssl.create_default_context()  # OpenSSL's default paths: the system store on Linux
        try:
            import certifi

            ctx.load_verify_locations(certifi.where())
        except (ImportError, OSError):
            pass
        return ctx
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def explain(exc: BaseException, where: object) -> str:
    """One sentence for a failed connection to ``where``, naming the fix where TLS says what failed."""
    import ssl

    cause = _ssl_cause(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        code, reason = cause.verify_code, cause.verify_message or str(cause)
        if code == 10 or "expired" in reason:
            return (
                f"The TLS certificate of {where} has expired ({reason}): renew it on the server "
                "or gateway."
            )
        if code == 62 or "mismatch" in reason.lower():
            return (
                f"The TLS certificate of {where} is not for this host name ({reason}): use the "
                "host name the certificate names in the URL, or have it reissued for this one."
            )
        return (
            f"The TLS certificate of {where} is not trusted here ({reason}): set "
            "TRACKIO_CA_BUNDLE (or ca_bundle=) to the PEM file of the CA that signed it, or "
            "install that CA in this machine's trust store."
        )
    if isinstance(cause, ssl.SSLError):
        reason = getattr(cause, "reason", None) or str(cause)
        if "CERTIFICATE" in str(reason).upper() or "ALERT" in str(reason).upper():
            return (
                f"The TLS handshake with {where} failed ({reason}): the gateway wants a client "
                "certificate it trusts: set TRACKIO_CLIENT_CERT and TRACKIO_CLIENT_KEY (or "
                "client_cert=)."
            )
        return f"The TLS handshake with {where} failed ({reason})."
    return f"Trackio {where} is not reachable ({type(exc).__name__})."


def _ssl_cause(exc: BaseException) -> BaseException | None:
    import ssl

    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        for arg in getattr(current, "args", ()):
            if isinstance(arg, ssl.SSLError):
                return arg
        current = current.__cause__ or current.__context__
    return None
