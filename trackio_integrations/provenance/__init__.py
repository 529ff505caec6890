"""Provenance: what produced a run - its git commit and diff, packages, command line, machine.

May import: ``trackio_integrations.core`` and ``errors``; the standard library (git runs as a
subprocess). A producer like ``monitoring``: it calls the public client API it is handed
(``update_config``, ``save``), never ``trackio_integrations.client`` itself.

``redact`` removes secrets from a command line and a URL; ``git`` reads the checkout (commit,
branch, remote, dirty, the diff against HEAD, untracked files); ``facts`` gathers the rest
(versions, packages, host, GPU, SLURM); ``recorder`` runs it all once per run in a background
thread and hands the results to the run.
"""
