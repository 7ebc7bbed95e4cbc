"""Boundary decorators (``@tool`` & co), ``record_call``, ``@replay`` and ``@record``."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import functools
import inspect
import uuid as _uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePath
from typing import Any, TypeVar

from ._model import KINDS
from .session import active_session, use_cassette

__all__ = [
    "memory_read",
    "memory_write",
    "record",
    "record_call",
    "replay",
    "retrieval",
    "to_plain",
    "tool",
]

F = TypeVar("F", bound=Callable[..., Any])

# Exact types first: one set lookup, where isinstance() walks a tuple of classes. All are
# immutable and to_plain() returns them as they are.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def to_plain(value: Any, *, _warn: bool = True) -> Any:
    """A JSON-like form of ``value``, stable where one exists (so matching works)."""
    if type(value) in _SCALARS or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, _warn=_warn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v, _warn=_warn) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((to_plain(v, _warn=_warn) for v in value), key=repr)
    if isinstance(value, enum.Enum):
        return to_plain(value.value, _warn=_warn)
    if isinstance(value, (PurePath, _uuid.UUID)):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        import base64

        return {"body_b64": base64.b64encode(value).decode("ascii")}
    if hasattr(type(value), "__attrs_attrs__"):
        import attrs

        return to_plain(attrs.asdict(value, recurse=False), _warn=_warn)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)},
                        _warn=_warn)
    dump = getattr(value, "model_dump", None)  # pydantic v2
    if callable(dump):
        return to_plain(dump(mode="json"), _warn=_warn)
    if _warn:
        warnings.warn(
            f"agenttape: {type(value).__qualname__} is not JSON-like; it is stored as its str(),"
            " which may change between runs and break matching",
            UserWarning,
            stacklevel=4,
        )
    return str(value)


def from_plain(value: Any) -> Any:
    """Undo the one lossy-looking step of :func:`to_plain`: bytes stored as ``body_b64``."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("body_b64"), str):
        import base64
        import binascii

        try:
            return base64.b64decode(value["body_b64"], validate=True)
        except (binascii.Error, ValueError):
            return value  # not what to_plain wrote (an edited cassette): replayed as it is
    return value


def _binder(func: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    signature = inspect.signature(func)
    params = list(signature.parameters.values())
    # Methods: the instance/class is identity, not input.
    drop = params[0].name if params and params[0].name in ("self", "cls") else None
    # Most tools take plain named parameters: those are bound here by hand, in signature
    # order as Signature.bind would, which costs more than the rest of a replayed call.
    # Anything else (a *args, a missing or unknown argument) takes the general path.
    simple = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)
    names = tuple(p.name for p in params)
    positional = sum(1 for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
    defaults = {p.name: p.default for p in params if p.default is not p.empty}

    # The parameters after the first k positional ones all have defaults: a call with k
    # positional arguments and no keywords binds without any check. When those defaults
    # are immutable scalars, their recorded form is the same on every call: tails[k].
    tail_ok = [all(n in defaults for n in names[k:]) for k in range(positional + 1)]
    tails: list[dict[str, Any] | None] = []
    for k in range(positional + 1):
        rest = [n for n in names[k:] if n != drop]
        scalars = tail_ok[k] and all(type(defaults[n]) in _SCALARS for n in rest)
        tails.append({n: defaults[n] for n in rest} if scalars else None)

    def bind(*args: Any, **kwargs: Any) -> dict[str, Any]:
        if simple and not kwargs and len(args) <= positional and tail_ok[len(args)]:
            plain = {n: v if type(v) in _SCALARS else to_plain(v)
                     for n, v in zip(names, args, strict=False) if n != drop}
            tail = tails[len(args)]
            if tail is None:
                plain.update({n: to_plain(defaults[n]) for n in names[len(args):] if n != drop})
            elif tail:
                plain.update(tail)
            return plain
        if simple and len(args) <= positional:
            values = dict(zip(names, args, strict=False))
            if all(k in names and k not in values for k in kwargs):
                values.update(kwargs)
                if all(n in values or n in defaults for n in names):
                    return {n: to_plain(values[n] if n in values else defaults[n])
                            for n in names if n != drop}
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            # Let the real call raise the user's own TypeError.
            return {"args": to_plain(list(args)), "kwargs": to_plain(kwargs)}
        bound.apply_defaults()
        out: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            if name == drop:
                continue
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                out.update({str(k): to_plain(v) for k, v in value.items()})
            else:
                out[name] = to_plain(value)
        return out

    return bind


def _boundary(kind: str) -> Any:
    def decorator(func: Any = None, *, name: str | None = None) -> Any:
        if func is None:
            return functools.partial(decorator, name=name)
        boundary_name = name or func.__name__
        bind = _binder(func)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                session = active_session()
                if session is None or session.engine is None:
                    return await func(*args, **kwargs)
                request = {"name": boundary_name, "args": bind(*args, **kwargs)}
                return await session.engine.acall(
                    kind, boundary_name, request, lambda: func(*args, **kwargs),
                    to_plain=to_plain, restore=from_plain,
                )

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            session = active_session()
            if session is None or session.engine is None:
                return func(*args, **kwargs)
            request = {"name": boundary_name, "args": bind(*args, **kwargs)}
            return session.engine.call(
                kind, boundary_name, request, lambda: func(*args, **kwargs), to_plain=to_plain,
                restore=from_plain,
            )

        return wrapper

    decorator.__name__ = kind
    decorator.__qualname__ = kind
    decorator.__doc__ = (
        f"Mark a function as a recorded ``{kind}`` boundary.\n\n"
        "Use bare (``@agenttape.{kind}``) or with ``name=`` to set the boundary name. While "
        "recording it runs and its arguments and result are captured; while replaying it "
        "returns the recorded result without running. Outside a session it is the original "
        "function."
    ).replace("{kind}", kind)
    return decorator


tool = _boundary("tool")
retrieval = _boundary("retrieval")
memory_read = _boundary("memory_read")
memory_write = _boundary("memory_write")


def record_call(
    kind: str,
    request: dict[str, Any],
    executor: Callable[[], Any],
    *,
    boundary: str | None = None,
    usage: dict[str, Any] | None = None,
    tags: Iterable[str] | None = None,
) -> Any:
    """Route one crossing through the active session; outside a session, ``executor()``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    session = active_session()
    if session is None or session.engine is None:
        return executor()
    return session.engine.call(
        kind, boundary or kind, to_plain(request), executor, usage=usage,
        tags=list(tags or ()), to_plain=to_plain, restore=from_plain,
    )


def _session_decorator(default_mode: str) -> Any:
    def factory(cassette: Any, **kwargs: Any) -> Callable[[F], F]:
        kwargs.setdefault("mode", None if kwargs.get("record") else default_mode)

        def decorate(func: F) -> F:
            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def async_wrapper(*args: Any, **kw: Any) -> Any:
                    async with use_cassette(cassette, **kwargs):
                        return await func(*args, **kw)

                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(func)
            def wrapper(*args: Any, **kw: Any) -> Any:
                with use_cassette(cassette, **kwargs):
                    return func(*args, **kw)

            return wrapper  # type: ignore[return-value]

        return decorate

    return factory


replay = _session_decorator("none")
replay.__name__ = replay.__qualname__ = "replay"
replay.__doc__ = "Run the decorated function inside ``use_cassette(cassette, mode='none', ...)``."
record = _session_decorator("record")
record.__name__ = record.__qualname__ = "record"
record.__doc__ = "Run the decorated function inside ``use_cassette(cassette, mode='record', ...)``."

