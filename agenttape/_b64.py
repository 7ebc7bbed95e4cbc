"""Base64 for large binary bodies, a slice at a time.

A recorded binary body lives in memory as base64 text (``body_b64``). ``base64`` on a
whole 100 MB body makes an ASCII copy of the text and a second encoding next to the
bytes; these helpers keep every transient copy to one slice, so recording, redacting and
writing such a body never hold it more than once in each form.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["decode", "encode_consuming", "encodes"]

# Characters per slice: a multiple of 4, so each slice decodes on its own.
_SLICE = 4 * 1024 * 1024
# Bytes per slice when encoding: a multiple of 3, so no slice but the last is padded.
_RAW_SLICE = _SLICE // 4 * 3


def decode(text: str) -> bytes | bytearray | None:
    """``base64.b64decode(text, validate=True)``, or None where that raises."""
    # Padding anywhere but at the end: the whole-text call decides, as it always did.
    if len(text) <= _SLICE or text.find("=", 0, max(0, len(text) - 2)) != -1:
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return None
    if len(text) % 4:
        return None
    size = len(text) // 4 * 3 - (text[-2:].count("="))
    out = bytearray(size)
    view = memoryview(out)
    position = 0
    try:
        for start in range(0, len(text), _SLICE):
            piece = base64.b64decode(text[start:start + _SLICE], validate=True)
            view[position:position + len(piece)] = piece
            position += len(piece)
    except (binascii.Error, ValueError):
        return None
    return out if position == size else None


def encodes(encoded: str, payload: bytes | bytearray) -> bool:
    """``base64.b64encode(payload).decode() == encoded``, without building the encoding."""
    if len(encoded) != 4 * ((len(payload) + 2) // 3):
        return False
    view = memoryview(payload)
    for start in range(0, len(payload), _RAW_SLICE):
        piece = binascii.b2a_base64(view[start:start + _RAW_SLICE], newline=False).decode("ascii")
        at = start // 3 * 4
        if encoded[at:at + len(piece)] != piece:
            return False
    return True


def encode_consuming(chunks: list[bytes]) -> str:
    """The base64 text of ``b"".join(chunks)``, emptying ``chunks`` as it goes, so the raw
    pieces are let go while their encoding grows (they are never joined)."""
    pieces: list[str] = []
    carry = b""
    chunks.reverse()
    while chunks:
        data = carry + chunks.pop() if carry else chunks.pop()
        cut = len(data) - len(data) % 3
        with memoryview(data) as view:
            for start in range(0, cut, _RAW_SLICE):
                with view[start:min(cut, start + _RAW_SLICE)] as raw:
                    pieces.append(binascii.b2a_base64(raw, newline=False).decode("ascii"))
        carry = data[cut:]
        del data  # the last reference: this piece is freed before the next is encoded
    if carry:
        pieces.append(binascii.b2a_base64(carry, newline=False).decode("ascii"))
    return "".join(pieces)
