"""Canonical requests, match keys and field-level diffs.

A matcher reduces a canonical request to a string key; the engine indexes recordings by
``(kind, boundary, key)``. Keys are ``sha256:`` hashes of canonical JSON so they are stable
across processes, Python versions and dict orderings.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Union

import attrs

from ._fastjson import compact
from .errors import ConfigError

__all__ = [
    "BUILTIN_MATCHERS",
    "FieldDiff",
    "Matcher",
    "MatcherLike",
    "canonical_json",
    "field_diffs",
    "hash_key",
    "resolve_matchers",
    "strip_volatile",
]

_MISSING = "<missing>"


@attrs.define(frozen=True)
class Matcher:
    """A named key function: ``key(request) -> str``. Equal keys mean "same call"."""

    name: str
    key: Callable[[dict[str, Any]], str]
    # `ordered` matches the Nth call of a boundary to its Nth recording whatever the content.
    positional: bool = False


MatcherLike = Union[str, Matcher, Callable[[dict[str, Any]], str]]  # noqa: UP007 - runtime alias on 3.10


@attrs.define(frozen=True)
class FieldDiff:
    """One differing leaf: ``expected`` is the recorded value, ``received`` the incoming one."""

    path: str
    expected: Any
    received: Any


_CANONICAL = compact(sort_keys=True, default=str)


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value`` that match keys are computed from."""
    return _CANONICAL(value)


def hash_key(value: Any) -> str:
    return _hash_text(canonical_json(value))


def _hash_text(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _key_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    """Finds ``"name":`` for any of ``names`` as a key in :func:`canonical_json` text; None
    when a name holds a character JSON escapes (it could not be found that way)."""
    names = tuple(names)
    if not names or any(json.dumps(name, ensure_ascii=False) != f'"{name}"' for name in names):
        return None
    return re.compile('"(?:' + "|".join(map(re.escape, names)) + ')":')


def strip_volatile(value: Any, fields: frozenset[str], *, keep_top: Iterable[str] = ()) -> Any:
    """Drop keys named in ``fields`` (already lower-cased) at any depth.

    ``keep_top`` names keys of the top mapping that survive anyway: a tool's own
    parameter called ``date`` is part of the call, not noise.
    """
    if isinstance(value, dict):
        keep = frozenset(keep_top)
        return {
            k: v if k in keep else strip_volatile(v, fields)
            for k, v in value.items()
            if k in keep or not (isinstance(k, str) and k.lower() in fields)
        }
    if isinstance(value, list):
        return [strip_volatile(v, fields) for v in value]
    return value


class _VolatileKey:
    """The ``ignore_volatile`` key. ``from_text`` is the same key from the request's
    :func:`canonical_json` text, which the engine computes once per crossing anyway."""

    __slots__ = ("fields", "needles")

    def __init__(self, fields: frozenset[str]) -> None:
        self.fields = fields
        self.needles = _key_pattern(sorted(fields))

    def __call__(self, request: dict[str, Any]) -> str:
        return self.from_text(request, canonical_json(request))

    def from_text(self, request: dict[str, Any], text: str) -> str:
        # Most requests hold no volatile key at all: then nothing is stripped and the key
        # is the hash of the text as it is. Keys are compared lower-cased, so is the text.
        if self.needles is not None and self.needles.search(text.lower()) is None:
            return _hash_text(text)
        fields = self.fields
        args = request.get("args") if "name" in request else None
        if isinstance(args, dict):
            # Tool-like request {name, args}: a parameter the user named is never volatile.
            stripped = dict(request)
            stripped["args"] = {
                k: strip_volatile(v, fields) for k, v in args.items()
            }
            stripped = {
                k: v if k == "args" else strip_volatile(v, fields)
                for k, v in stripped.items()
                if k == "args" or k.lower() not in fields
            }
            return hash_key(stripped)
        return hash_key(strip_volatile(request, fields))


def _volatile_matcher(fields: frozenset[str]) -> Matcher:
    return Matcher("ignore_volatile", _VolatileKey(fields))


class _ExactKey:
    __slots__ = ()

    def __call__(self, request: dict[str, Any]) -> str:
        return hash_key(request)

    def from_text(self, request: dict[str, Any], text: str) -> str:
        return _hash_text(text)


class _OrderedKey:
    __slots__ = ()

    def __call__(self, request: dict[str, Any]) -> str:
        return "ordered"

    def from_text(self, request: dict[str, Any], text: str) -> str:
        return "ordered"


_exact = _ExactKey()
_ordered = _OrderedKey()


def content_key(matcher: Matcher) -> bool:
    """Whether ``matcher`` is a built-in keyed on the request's JSON content: two requests
    that compare equal then have the same key, whatever it stored earlier."""
    return isinstance(matcher.key, (_VolatileKey, _ExactKey))


BUILTIN_MATCHERS = ("ignore_volatile", "exact", "ordered", "sequential")


def resolve_matchers(
    specs: Sequence[MatcherLike] | None, volatile_fields: Iterable[str]
) -> list[Matcher]:
    """Turn names, Matcher instances and plain callables into a fallback chain."""
    fields = frozenset(f.lower() for f in volatile_fields)
    chain: list[Matcher] = []
    for spec in specs or ["ignore_volatile"]:
        if isinstance(spec, Matcher):
            chain.append(spec)
        elif isinstance(spec, str):
            if spec == "ignore_volatile":
                chain.append(_volatile_matcher(fields))
            elif spec == "exact":
                chain.append(Matcher("exact", _exact))
            elif spec in ("ordered", "sequential"):
                chain.append(Matcher(spec, _ordered, positional=True))
            else:
                raise ConfigError(
                    f"unknown matcher {spec!r}; valid matchers are "
                    + ", ".join(BUILTIN_MATCHERS)
                    + ", an agenttape.Matcher, or a callable request -> str",
                    key="matchers",
                )
        elif callable(spec):
            chain.append(Matcher(getattr(spec, "__name__", "custom"), spec))
        else:
            raise ConfigError(f"a matcher must be a name, a Matcher or a callable; got {spec!r}",
                              key="matchers")
    if not chain:
        raise ConfigError("matchers must not be empty", key="matchers")
    return chain


def _diff(expected: Any, received: Any, path: str, out: list[FieldDiff]) -> None:
    if isinstance(expected, Mapping) and isinstance(received, Mapping):
        for k, v in expected.items():
            sub = f"{path}.{k}" if path else str(k)
            if k in received:
                _diff(v, received[k], sub, out)
            else:
                out.append(FieldDiff(sub, v, _MISSING))
        for k, v in received.items():
            if k not in expected:
                out.append(FieldDiff(f"{path}.{k}" if path else str(k), _MISSING, v))
    elif isinstance(expected, list) and isinstance(received, list):
        for i in range(max(len(expected), len(received))):
            a = expected[i] if i < len(expected) else _MISSING
            b = received[i] if i < len(received) else _MISSING
            if a is _MISSING or b is _MISSING:
                out.append(FieldDiff(f"{path}[{i}]", a, b))
            else:
                _diff(a, b, f"{path}[{i}]", out)
    elif expected != received or type(expected) is not type(received):
        out.append(FieldDiff(path or "<root>", expected, received))


def field_diffs(expected: Any, received: Any) -> list[FieldDiff]:
    """Differences with dotted paths such as ``messages[2].content``.

    A subtree present on one side only is one difference at its root, not one per leaf.
    """
    out: list[FieldDiff] = []
    _diff(expected, received, "", out)
    return out
