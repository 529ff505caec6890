"""Adoption: ``install()`` and the import hooks that make ``"trackio"`` mean our integrations.

May import: the integrations (only inside the hook that fires when a framework is imported) and
everything below them. ``install`` registers the names and the hooks; ``import_hooks`` runs a
function when a module is first imported, without importing it.
"""
