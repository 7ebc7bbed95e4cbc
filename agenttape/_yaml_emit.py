"""A fast writer for cassette YAML, byte for byte what the PyYAML dump in ``_storage`` writes.

PyYAML's representer, serializer and emitter cost about 0.2 ms per recorded interaction,
most of a recording session's overhead on a fast API. Cassette trees are plain JSON-like
data (dicts with string keys, lists, str, int, float, bool, None), and for them the
emitter's decisions reduce to a few string tests. This module makes those decisions for
the cases it can prove identical to both of PyYAML's emitters (libyaml and the
pure-Python one) and gives up on the whole document otherwise: :func:`dump` then returns
None and the caller runs PyYAML, so an odd document costs time, never a different file.
``tests/test_yaml_emit.py`` compares the two on generated trees and real cassettes.

Why both emitters: ``_storage._dump_yaml`` writes with libyaml, and rewrites the document
with the pure-Python emitter when libyaml escaped a character beyond U+FFFF (``\\U``).
Every style chosen here is what both emitters choose, except for astral characters, where
this writer follows the pure-Python emitter (any document holding one ends up with that
emitter's output anyway), and the ``...`` that may close a document after a ``|+`` block,
where the two differ and this writer works out which of them wrote the caller's text.

Nothing here imports PyYAML; the caller passes the implicit-resolver table its dumper uses.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["dump"]

_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"

Resolvers = dict[Any, list[tuple[str, "re.Pattern[str]"]]]

# Characters both emitters print as they are in plain, single-quoted and literal scalars
# (allow_unicode); U+2028/U+2029 are YAML line breaks. libyaml escapes astral characters,
# and the caller then re-dumps with the pure-Python emitter, which prints them (see the
# module docstring); U+10FFFF is out because that emitter's test is `< '\U0010ffff'`.
_PRINTABLE = r"\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010fffe"
_NOT_PRINTABLE = re.compile(f"[^{_PRINTABLE}]")
_NOT_PRINTABLE_OR_BREAK = re.compile(f"[^\\n{_PRINTABLE}]")
# The line breaks besides "\n"; the dumper's representer asks for double quotes for them.
_ODD_BREAKS = re.compile(r"[\x85\u2028\u2029]")
# What a double-quoted scalar escapes, in both emitters (allow_unicode): everything outside
# the BMP's printable range, the quote, the backslash, and the BOM.
_DQ_ESCAPED = re.compile(
    r"[^\x20\x21\x23-\x5b\x5d-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]"
)
_DQ_NAMED = {
    "\0": "\\0", "\x07": "\\a", "\x08": "\\b", "\t": "\\t", "\n": "\\n", "\x0b": "\\v",
    "\x0c": "\\f", "\r": "\\r", "\x1b": "\\e", '"': '\\"', "\\": "\\\\", "\x85": "\\N",
    "\u2028": "\\L", "\u2029": "\\P",
}
# A first character that makes a plain scalar an indicator (a space is never plain there).
_BAD_FIRST = frozenset(" #,[]{}&*!|>'\"%@`")
# Keys longer than this may become `? key` complex keys: the two emitters count the length
# differently (libyaml in UTF-8 bytes up to 128, PyYAML in characters plus the tag's 5).
_MAX_KEY = 100
# Both emitters fold a quoted or plain scalar at a space once the line passes `width`
# (10**9 here): far beyond any string this writer accepts.
_MAX_SCALAR = 10**8
# Strings at most this long have their rendering remembered: keys and small values
# (methods, content types, status words) repeat in every interaction.
_MEMO_MAX = 120


class _Fallback(Exception):
    """The document holds something this writer cannot prove it writes as PyYAML does."""


def dump(data: Any, resolvers: Resolvers, *, libyaml: bool) -> bytes | None:
    """``data`` as the cassette dumper's UTF-8 YAML, or None to let PyYAML write it.

    ``resolvers`` is the dumper's implicit-resolver table (first character to
    ``(tag, regex)`` pairs): a string one of them matches must be quoted. ``libyaml``: the
    dumper writes with libyaml first (the pure-Python emitter only for documents that
    libyaml writes with a ``\\U`` in them).
    """
    try:
        text = _Writer(resolvers).document(data, libyaml)
    except (_Fallback, RecursionError):
        return None
    return text.encode("utf-8")


class _Writer:
    def __init__(self, resolvers: Resolvers) -> None:
        self.resolvers = resolvers
        self.out: list[str] = []
        # Rendered single-line values (" text\n") and keys ("text:").
        self.values: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        # Numbers as written, by value (ints) and by repr (floats: -0.0 == 0.0).
        self.ints: dict[int, str] = {}
        self.floats: dict[str, str] = {}
        # Whether the last literal block written so far is a `|+` one.
        self.kept = False

    def document(self, data: Any, libyaml: bool) -> str:
        kind = type(data)
        if kind is dict:
            if not data:
                return "{}\n"
            self.mapping(data, 0, False)
        elif kind is list:
            if not data:
                return "[]\n"
            self.sequence(data, 0, False)
        else:
            raise _Fallback  # a bare scalar document has its own end-marker rules
        # A `|+` block leaves the document open-ended and an emitter closes it with `...`.
        # The pure-Python emitter does so when that block is the document's last token;
        # libyaml when it is the last block scalar, whatever follows it. So where they
        # differ, the answer depends on which emitter writes the final text.
        last_token = self.ends_kept(data)
        if last_token or (self.kept and libyaml and not _needs_pure_python(data)):
            self.out.append("...\n")
        return "".join(self.out)

    def ends_kept(self, data: Any) -> bool:
        last = data
        while type(last) in (dict, list) and last:
            last = next(reversed(last.values())) if type(last) is dict else last[-1]
        return (
            type(last) is str
            and last.endswith("\n")
            and (len(last) == 1 or last[-2] == "\n")
            and self.literal_allowed(last)
        )

    # ---- collections

    def mapping(self, data: dict[Any, Any], indent: int, inline: bool) -> None:
        """A block mapping with keys at column ``indent``; ``inline``: its first key follows
        a sequence's ``- `` on the same line."""
        append = self.out.append
        keys = self.keys
        values = self.values
        pad = " " * indent
        child = indent + 2
        first = inline
        for key, value in data.items():
            if type(key) is not str:
                raise _Fallback
            text = keys.get(key)
            if text is None:
                text = self.key(key)
            if first:
                first = False
                append(text)
            else:
                append(pad + text)
            kind = type(value)
            if kind is str:
                append(values.get(value) or self.string(value, child))
            elif kind is dict:
                if value:
                    append("\n")
                    self.mapping(value, child, False)
                else:
                    append(" {}\n")
            elif kind is list:
                if value:
                    append("\n")
                    # A sequence under a key is not indented further ("indentless").
                    self.sequence(value, indent, False)
                else:
                    append(" []\n")
            else:
                append(self.scalar(value))

    def sequence(self, data: list[Any], indent: int, inline: bool) -> None:
        """A block sequence with its dashes at column ``indent``."""
        append = self.out.append
        values = self.values
        dash = " " * indent + "-"
        child = indent + 2
        first = inline
        for value in data:
            if first:
                first = False
                append("-")
            else:
                append(dash)
            kind = type(value)
            if kind is str:
                append(values.get(value) or self.string(value, child))
            elif kind is dict:
                if value:
                    append(" ")
                    self.mapping(value, child, True)
                else:
                    append(" {}\n")
            elif kind is list:
                if value:
                    append(" ")
                    self.sequence(value, child, True)
                else:
                    append(" []\n")
            else:
                append(self.scalar(value))

    # ---- scalars

    def scalar(self, value: Any) -> str:
        kind = type(value)
        if value is None:
            return " null\n"
        if kind is bool:
            return " true\n" if value else " false\n"
        if kind is int:
            text = self.ints.get(value)
            if text is None:
                try:
                    digits = str(value)
                except ValueError:  # past Python's digit limit: PyYAML raises the same error
                    raise _Fallback from None
                self.expect_tag(digits, _INT_TAG)
                text = self.ints[value] = f" {digits}\n"
            return text
        if kind is float:
            if not math.isfinite(value):
                raise _Fallback
            # SafeRepresenter.represent_float: `1e+17` is no YAML float, `1.0e+17` is.
            digits = repr(value).lower()
            text = self.floats.get(digits)
            if text is None:
                if "." not in digits and "e" in digits:
                    digits = digits.replace("e", ".0e", 1)
                self.expect_tag(digits, _FLOAT_TAG)
                text = self.floats[repr(value).lower()] = f" {digits}\n"
            return text
        raise _Fallback  # not JSON-like: PyYAML reports it

    def expect_tag(self, text: str, tag: str) -> None:
        if self.resolved(text) != tag:
            raise _Fallback  # would need an explicit tag

    def resolved(self, text: str) -> str:
        for tag, regexp in self.resolvers.get(text[:1], ()):
            if regexp.match(text):
                return tag
        return _STR_TAG

    def string(self, value: str, indent: int) -> str:
        """`` value`` with the style the dumper picks, ending with a newline; ``indent`` is
        where a literal block's lines start."""
        if len(value) > _MAX_SCALAR:
            raise _Fallback
        if value.isascii() and value.isprintable():  # the common case, in two C calls
            text = f" {value}\n" if self.plain_allowed(value) else f" {_single_quoted(value)}\n"
            if len(value) <= _MEMO_MAX:
                self.values[value] = text
            return text
        if _ODD_BREAKS.search(value) is not None:
            return f" {_double_quoted(value)}\n"  # the representer asks for double quotes
        if "\n" in value:
            if self.literal_allowed(value):
                self.kept = value.endswith("\n") and (len(value) == 1 or value[-2] == "\n")
                return _literal(value, indent)
            return f" {_double_quoted(value)}\n"
        if _NOT_PRINTABLE.search(value) is not None:
            text = f" {_double_quoted(value)}\n"
        elif self.plain_allowed(value):
            text = f" {value}\n"
        else:
            text = f" {_single_quoted(value)}\n"
        if len(value) <= _MEMO_MAX:
            self.values[value] = text
        return text

    def key(self, key: str) -> str:
        if (
            not key
            or len(key) > _MAX_KEY
            or (not key.isascii() and len(key.encode("utf-8", "surrogatepass")) > _MAX_KEY)
            or _NOT_PRINTABLE.search(key) is not None
        ):
            raise _Fallback  # `? key` forms, multi-line and escaped keys
        text = (key if self.plain_allowed(key) else _single_quoted(key)) + ":"
        self.keys[key] = text
        return text

    def plain_allowed(self, value: str) -> bool:
        """Whether a one-line string of printable characters may be written unquoted: the
        emitters' `allow_block_plain`, and it must read back as a string."""
        if not value:
            return False
        first = value[0]
        if first in _BAD_FIRST or value[-1] in " :":  # edge spaces; ':' ending = indicator
            return False
        if first in "-?:" and (len(value) == 1 or value[1] == " "):
            return False
        if ": " in value or " #" in value or value.startswith(("---", "...")):
            return False
        return self.resolved(value) == _STR_TAG

    def literal_allowed(self, value: str) -> bool:
        """The emitters' `allow_block` for a multi-line string: no trailing space on the
        last line or any other, nothing that must be escaped."""
        return (
            not value.endswith(" ")
            and " \n" not in value
            and _NOT_PRINTABLE_OR_BREAK.search(value) is None
            and _ODD_BREAKS.search(value) is None
        )


_ASTRAL = re.compile(r"[\U00010000-\U0010ffff]")


def _needs_pure_python(data: Any) -> bool:
    """Whether ``_storage._dump_yaml`` rewrites this document with the pure-Python emitter:
    libyaml's text holds a ``\\U`` when a string holds an astral character (escaped so) or
    the text ``\\U`` itself (in a double-quoted scalar its backslash is doubled)."""
    stack = [data]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            if "\\U" in item or (not item.isascii() and _ASTRAL.search(item) is not None):
                return True
        elif kind is dict:
            stack.extend(item)
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return False


def _single_quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _DQ_NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        raise _Fallback  # a lone surrogate: libyaml cannot encode it and raises
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


def _double_quoted(value: str) -> str:
    return '"' + _DQ_ESCAPED.sub(_escape, value) + '"'


def _literal(value: str, indent: int) -> str:
    # The indentation indicator is needed when the text itself starts with a space or a
    # break; the chomping indicator keeps the trailing newlines exactly.
    hints = "2" if value[0] in " \n" else ""
    if not value.endswith("\n"):
        hints += "-"
    elif len(value) == 1 or value[-2] == "\n":
        hints += "+"
    pad = " " * indent
    body = "\n".join([pad + line if line else "" for line in value.split("\n")])
    return f" |{hints}\n{body}" + ("" if value.endswith("\n") else "\n")
