"""Registered hooks: the only way a session swaps a library's default client.

A hook uses a library's documented configuration slot (never private attributes) and
returns a callable that undoes exactly what it did.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["Hook", "FunctionHook", "hooks", "install_hooks", "register_hook", "run_restores"]

Restore = Callable[[], None]


@runtime_checkable
class Hook(Protocol):
    name: str

    def available(self) -> bool: ...

    def install(self, session: Session) -> Restore | None: ...


class FunctionHook:
    """A hook made from a function ``install(session) -> restore`` (``@register_hook``)."""

    def __init__(self, install: Callable[[Session], Restore | None],
                 available: Callable[[], bool] | None = None) -> None:
        self.name = install.__name__
        self._install = install
        self._available = available

    def available(self) -> bool:
        return True if self._available is None else self._available()

    def install(self, session: Session) -> Restore | None:
        return self._install(session)

    def __repr__(self) -> str:
        return f"<agenttape hook {self.name!r}>"


_registry: dict[str, Hook] = {}
_lock = threading.Lock()
_builtins_loaded = False


def _ensure_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    from . import _builtin_hooks

    with _lock:
        # Flagged only once the registry holds them, so no thread sees a half-filled one.
        for hook in _builtin_hooks.BUILTIN_HOOKS:
            _registry.setdefault(hook.name, hook)
        _builtins_loaded = True


def register_hook(hook: Any) -> Any:
    """Register a hook object, or decorate ``install(session) -> restore`` as one.

    Returns what it was given, so it works as a decorator. A later hook with the same name
    replaces the earlier one.
    """
    _ensure_builtins()
    obj: Hook
    if isinstance(hook, Hook):
        obj = hook
    elif callable(hook):
        obj = FunctionHook(hook)
    else:
        raise TypeError(
            "register_hook takes an object with name, available() and install(session), "
            f"or a function install(session) -> restore; got {hook!r}"
        )
    with _lock:
        _registry[obj.name] = obj
    return hook


def hooks() -> dict[str, bool]:
    """``{name: available}`` for every registered hook; imports no target library."""
    _ensure_builtins()
    with _lock:
        items = list(_registry.items())
    return {name: bool(h.available()) for name, h in items}


def install_hooks(session: Session) -> list[Restore]:
    """Install every available hook; on failure undo what was installed and re-raise."""
    _ensure_builtins()
    with _lock:
        items = list(_registry.values())
    restores: list[Restore] = []
    try:
        for hook in items:
            if hook.available():
                restore = hook.install(session)
                if restore is not None:
                    restores.append(restore)
    except BaseException:
        run_restores(restores)
        raise
    return restores


def run_restores(restores: list[Restore]) -> None:
    """Undo hooks in reverse order; one failing restore does not stop the others."""
    for restore in reversed(restores):
        try:
            restore()
        except Exception as exc:  # every restore must get its turn
            warnings.warn(f"agenttape: a hook failed to restore: {exc!r}", RuntimeWarning,
                          stacklevel=2)
