"""Run at interpreter start-up by ``trackio_integrations.pth`` when ``TRACKIO_INTEGRATIONS`` is set.

A cluster admin sets ``TRACKIO_INTEGRATIONS=1`` for every job; no script imports anything. The
``.pth`` line reads one environment variable and imports nothing when it is unset. Here, nothing
may break the interpreter's start: any failure is one line on stderr.
"""

from __future__ import annotations

import os
import sys

_OFF = ("", "0", "false", "no", "off")


def _start() -> None:
    if os.environ.get("TRACKIO_INTEGRATIONS", "").strip().lower() in _OFF:
        return
    try:
        from trackio_integrations.adopt.install import install

        install()
    except Exception as exc:  # never break interpreter start-up
        sys.stderr.write(f"trackio-integrations: TRACKIO_INTEGRATIONS is set but failed: {exc!r}\n")


_start()
