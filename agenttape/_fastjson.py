"""JSON through the C encoder and scanner, without the stdlib's per-call set-up.

``json.dumps`` and ``JSONEncoder.encode`` build a new C encoder, a closure and a
circular-reference table on every call: about a third of the cost of encoding a small
value, which agenttape does for every request it matches and every body it replays.
``json.loads`` of bytes guesses their encoding and steps through three Python frames
before the C scanner runs: as much again as parsing a small body, which agenttape does
for every request and response body it records or matches.
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Callable
from typing import Any

__all__ = ["compact", "loads"]


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


# What JSONDecoder.decode runs: the C scanner when there is one. (typeshed gives the
# C scanner's argument the scanner's own type; it is the decoder whose settings it takes.)
_scan: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder())  # type: ignore[arg-type]


def loads(data: bytes) -> Any:
    """``json.loads(data)``: the same value, or the same ``ValueError``.

    A UTF-8 object or array goes straight to the scanner; anything else (another
    encoding, a byte-order mark, a scalar, an error to report) takes ``json.loads``.
    """
    # A second byte of 0 means UTF-16/32 to json.loads (as does a byte-order mark, which
    # cannot start with "{" or "[").
    if data[:1] in (b"{", b"[") and (len(data) < 2 or data[1]):
        try:
            text = data.decode("utf-8")
            value, end = _scan(text, 0)
            if not text[end:].strip(" \t\n\r"):  # JSON's whitespace, as json.loads allows
                return value
        except (ValueError, StopIteration):
            pass  # json.loads says what is wrong
    return json.loads(data)
