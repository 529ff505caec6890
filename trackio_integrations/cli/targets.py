"""Which target a spool goes to from here, with which token, and why a target refused it.

Shared by ``commands`` (doctor, status) and ``sync``. A spool goes to the target it was written
for; the write token that the flags or the environment name goes only to that same server (see
``target.saved_target``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

from trackio_integrations.core.target import Target, resolve_target, same_server, saved_target

# Where a token came from, in the words of this command line.
_FLAG_NAMES = {"write_token": "--write-token", "server_url": "--server-url"}


def named_target(args: argparse.Namespace) -> Target:
    """The target the flags, then the environment, name: exactly what ``TrackioClient`` uses."""
    return resolve_target(
        server_url=args.server_url,
        space_id=args.space_id,
        write_token=args.write_token,
        hf_token=args.hf_token,
    )


def spool_targets(
    args: argparse.Namespace, named: Target, metas: Sequence[dict[str, Any]]
) -> list[Target]:
    """The target of each spool (by its metadata), with the tokens that belong to it here.

    The named target's write token goes only to spools of that same server. A write token that
    names no server (``--write-token`` or ``TRACKIO_WRITE_TOKEN`` with no server or Space set) is
    used when the spools wait for one server only: with several, it could reach the wrong one.
    """
    saved = [meta.get("target") or {} for meta in metas]
    loose = None
    token = args.write_token or os.environ.get("TRACKIO_WRITE_TOKEN")
    if named.kind == "local" and token and len(_distinct_servers(saved)) == 1:
        loose = (token, "--write-token" if args.write_token else "TRACKIO_WRITE_TOKEN")
    return [
        saved_target(target, named, hf_token=args.hf_token, loose_write_token=loose)
        for target in saved
    ]


def _distinct_servers(saved: Sequence[dict[str, Any]]) -> list[str]:
    servers: list[str] = []
    for target in saved:
        url = target.get("url") if target.get("kind") == "server" else None
        if url and not any(same_server(url, known) for known in servers):
            servers.append(url)
    return servers


def credential(target: Target) -> str:
    """What ``sync`` here would send this target with (never the token itself)."""
    if target.kind == "local":
        return "no token needed"
    if target.kind == "space":
        return "HF token" if target.hf_token else "no HF token"
    if target.write_token:
        return f"write token from {token_origin(target)}"
    return "no write token"


def token_origin(target: Target) -> str:
    """The flag or variable the write token came from, e.g. ``--write-token``."""
    source = target.token_from or "?"
    return _FLAG_NAMES.get(source, source)


def refused_reason(target: Target, named: Target, args: argparse.Namespace) -> str:
    """Why a target refused our token, and the command that fixes it."""
    if target.kind == "space":
        missing = "no Hugging Face token is set" if not target.hf_token else ""
        return (
            f"{missing or 'the Space refused the Hugging Face token'}; set HF_TOKEN, or pass "
            f"--hf-token, to a token with write access to {target.space_id}."
        )
    fix = (
        f"send them with `trackio-integrations sync --server-url {target.url} --write-token "
        f"<its token>` (or with TRACKIO_SERVER_URL={target.url}?write_token=<its token>)"
    )
    if target.write_token:
        return f"it rejected the write token from {token_origin(target)}; {fix}."
    if named.kind in ("server", "space") and not _named_token(named, args):
        why = "no write token is set"
    elif named.kind in ("server", "space"):
        where = (
            ("--space-id" if args.space_id else "TRACKIO_SPACE_ID")
            if named.kind == "space"
            else ("--server-url" if args.server_url else "TRACKIO_SERVER_URL")
        )
        why = f"no write token for it here ({where} names {named}; its token goes only there)"
    elif args.write_token or os.environ.get("TRACKIO_WRITE_TOKEN"):
        why = (
            "no write token for it here (a token given without a server URL is used only "
            "when the spools wait for one server)"
        )
    else:
        why = "no write token for it here"
    return f"{why}; {fix}."


def _named_token(named: Target, args: argparse.Namespace) -> bool:
    """Whether the server or Space the flags or environment name comes with a token of its own."""
    return bool(named.hf_token if named.kind == "space" else named.write_token)
