"""The command line, ``trackio-integrations doctor | status | sync | reproduce``: run by hand.

May import: everything below it (client, core, artifacts); never a framework. ``commands`` parses
the arguments and runs doctor and status; ``sync`` sends spool folders from any machine (the
progress bar, the table per run); ``targets`` decides which target and token each spool gets;
``uploads`` reports artifact uploads; ``reproduce`` rebuilds a run.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """The ``trackio-integrations`` console script (``python -m trackio_integrations.cli``)."""
    from trackio_integrations.cli.commands import main as run

    return run(argv)
