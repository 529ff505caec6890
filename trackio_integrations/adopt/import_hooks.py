"""Run a function right after a module is imported, without importing it ourselves.

``install()`` must not import transformers or accelerate: a Lightning job should not pay seconds
for frameworks it never uses, and an interpreter started with ``TRACKIO_INTEGRATIONS=1`` must
start as fast as without. So each take-over waits for its framework's own import: if the module is
already loaded the hook runs at once, else a finder on ``sys.meta_path`` wraps that one module's
loader and runs the hook when the module's code has finished. A hook that fails is logged and
never breaks the import.
"""

from __future__ import annotations

import _thread
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

__all__ = ["forget", "when_imported"]

Hook = Callable[[ModuleType], None]
_pending: dict[str, list[Hook]] = {}
_lock = _thread.RLock()  # not ``threading``: this module is imported at start-up, keep it light


def when_imported(name: str, hook: Hook) -> None:
    """Call ``hook(module)`` once ``name`` is imported: now if it is, else just after its import.

    A hook already waiting for ``name`` is not added twice.
    """
    module = sys.modules.get(name)
    if module is not None:
        _call(hook, module)
        return
    with _lock:
        hooks = _pending.setdefault(name, [])
        if hook not in hooks:
            hooks.append(hook)
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)


def forget(hook: Hook) -> None:
    """Drop ``hook`` wherever it still waits; the finder leaves when nothing waits."""
    with _lock:
        for name in list(_pending):
            _pending[name] = [h for h in _pending[name] if h != hook]
            if not _pending[name]:
                del _pending[name]
        _leave_if_idle()


def _call(hook: Hook, module: ModuleType) -> None:
    try:
        hook(module)
    except Exception:  # a take-over that fails must not break the user's import
        import logging

        logging.getLogger("trackio_integrations").warning(
            "trackio-integrations: could not adapt %s", module.__name__, exc_info=True
        )


def _leave_if_idle() -> None:
    if not _pending and _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def _fire(name: str) -> None:
    with _lock:
        hooks = _pending.pop(name, [])
        _leave_if_idle()
    module = sys.modules.get(name)
    if module is not None:
        for hook in hooks:
            _call(hook, module)


class _Finder:
    """Finds nothing itself: asks the finders after it, then wraps the loader of a watched module."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname not in _pending:
            return None
        try:
            for finder in list(sys.meta_path):
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
            if spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return spec
            spec.loader = _Loader(spec.loader, fullname)
            return spec
        except Exception:  # leave the import to the normal machinery
            return None


class _Loader:
    """The original loader, plus the hooks once the module has run; otherwise invisible."""

    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        # Code that looks at __loader__ / __spec__.loader (resources, inspect) sees the real one.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _fire(self._name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._loader, attribute)


_FINDER = _Finder()
