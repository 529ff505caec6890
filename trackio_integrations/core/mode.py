"""A run's mode: ``online`` (sent as it is logged), ``offline`` (kept for ``sync``), ``disabled``.

``mode=`` on ``TrackioClient`` (and the integrations, which pass it through), else
``TRACKIO_MODE``, else ``online``. The same three words as ``WANDB_MODE`` and ``SWANLAB_MODE``:

- ``online``: points are spooled and sent in the background as they are logged.
- ``offline``: no network at all (no version check, no sender, no uploader, no webhook); the run
  is written whole into the spool folder, media and artifact files included, for
  ``trackio-integrations sync`` to send later, from any machine that can read the folder.
- ``disabled``: ``log()`` and every other call do nothing and write nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from trackio_integrations.errors import TrackioConfigError

ONLINE, OFFLINE, DISABLED = "online", "offline", "disabled"
MODES: tuple[str, ...] = (ONLINE, OFFLINE, DISABLED)
# Words other tools accept for the same thing (W&B's ``dryrun``, ``run``).
_ALIASES = {"dryrun": OFFLINE, "run": ONLINE, "off": DISABLED}


def resolve_mode(mode: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """``mode``, else ``TRACKIO_MODE``, else ``online``; raises ``TrackioConfigError`` otherwise.

    >>> resolve_mode("OFFLINE"), resolve_mode(None, {"TRACKIO_MODE": "disabled"})
    ('offline', 'disabled')
    """
    env = os.environ if env is None else env
    given = mode if mode is not None else env.get("TRACKIO_MODE", "")
    word = str(given).strip().lower() or ONLINE
    word = _ALIASES.get(word, word)
    if word not in MODES:
        where = "mode=" if mode is not None else "TRACKIO_MODE"
        raise TrackioConfigError(
            f"{where} {given!r} is not a mode: use 'online', 'offline' or 'disabled'."
        )
    return word


def sync_command(root: os.PathLike[str] | str) -> str:
    """The one command that sends an offline run's spool (quoted for a shell)."""
    import shlex

    return f"trackio-integrations sync {shlex.quote(str(root))}"
