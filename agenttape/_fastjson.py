"""Compact JSON text from a C encoder built once.

``json.dumps`` and ``JSONEncoder.encode`` build a new C encoder, a closure and a
circular-reference table on every call: about a third of the cost of encoding a small
value, which agenttape does for every request it matches and every body it replays.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["compact"]


def compact(*, sort_keys: bool, default: Callable[[Any], Any] | None = None
            ) -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=...,
    default=...)``, the same text.

    Without the circular-reference table: sharing one between threads would not be safe,
    and the values encoded come from a JSON parser or ``to_plain``, which cannot build a
    cycle (one would still end in ``RecursionError``, never in wrong text).
    """
    reference = json.JSONEncoder(sort_keys=sort_keys, separators=(",", ":"),
                                 ensure_ascii=False, default=default)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (PyPy): the stdlib path
        return reference.encode
    encode = make(None, reference.default, json.encoder.encode_basestring, None, ":", ",",
                  sort_keys, False, True)

    def text(value: Any) -> str:
        if isinstance(value, str):  # as JSONEncoder.encode: the C encoder wants a container
            return reference.encode(value)
        return "".join(encode(value, 0))

    return text
