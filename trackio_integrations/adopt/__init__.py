"""Adoption: ``install()``, the import hooks, and trackio's module API on our client.

May import: the integrations (only inside the hook that fires when a framework is imported) and
everything below them. ``install`` registers the names and the hooks; ``import_hooks`` runs a
function when a module is first imported, without importing it; ``module_api`` is ``trackio.init``
/ ``log`` / ``finish`` / ``config`` ... on ``TrackioClient``, put in trackio's place by ``install``.
"""
