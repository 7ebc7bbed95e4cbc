"""Base64 for large binary bodies, a slice at a time, and :class:`Blob`.

A binary body is stored as base64 text (``body_b64``, or a sidecar asset once written).
``base64`` on a whole 100 MB body makes an ASCII copy of the text and a second encoding
next to the bytes; these helpers keep every transient copy to one slice. A large body
recorded in this process is held as a :class:`Blob` (its bytes, once) instead of its text:
building a string from pieces needs the pieces and the string at once, which would hold
the body's base64 twice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

__all__ = ["Blob", "decode", "encode", "encode_consuming", "encodes", "join_consuming"]

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


def encode(payload: bytes | bytearray) -> str:
    """``base64.b64encode(payload).decode()``, one slice of transient copies at a time."""
    view = memoryview(payload)
    try:
        return "".join(binascii.b2a_base64(view[start:start + _RAW_SLICE], newline=False)
                       .decode("ascii") for start in range(0, len(payload), _RAW_SLICE))
    finally:
        view.release()


def join_consuming(chunks: list[bytes]) -> bytearray:
    """``bytearray(b"".join(chunks))``, emptying ``chunks`` as it goes: each piece is let go
    once copied, so the body is held about once rather than as pieces plus their join."""
    out = bytearray()
    chunks.reverse()
    while chunks:
        # A growing bytearray is resized in place (realloc), not copied beside itself.
        out += chunks.pop()
    return out


class Blob:
    """A binary body held once, as its bytes, where a cassette holds its ``body_b64`` text.

    ``str(blob)`` is that text (made when asked); a blob equals its text and any blob with
    the same bytes. Writing a cassette moves the bytes straight to the body's asset file.
    """

    __slots__ = ("_digest", "data")

    __hash__ = None  # type: ignore[assignment]  # mutable: redaction masks in place

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data
        self._digest: str | None = None

    def sha256(self) -> str:
        if self._digest is None:
            self._digest = hashlib.sha256(self.data).hexdigest()
        return self._digest

    def mask(self, start: int, end: int) -> None:
        """Overwrite ``data[start:end]`` with ``*`` (a secret found in the body)."""
        if not isinstance(self.data, bytearray):
            self.data = bytearray(self.data)
        self.data[start:end] = b"*" * (end - start)
        self._digest = None

    def __str__(self) -> str:
        return encode(self.data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Blob):
            return self.data == other.data
        if isinstance(other, str):
            return encodes(other, self.data)
        return NotImplemented

    def __repr__(self) -> str:
        return f"<Blob: {len(self.data)} bytes, base64 in a cassette>"
