"""Cassette files on disk: YAML/JSON reading and writing, assets, the parse cache, paths.

Reading is hostile-input safe: strict UTF-8, YAML limited to plain JSON-like data (no tags,
no anchors reused, no timestamps turned into datetimes), every failure a
:class:`~agenttape.errors.CassetteCorruptError` naming the file and position. Writing is
atomic and produces text meant to be read in a pull-request diff.

PyYAML is imported inside functions only: ``import agenttape`` must stay cheap.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import hashlib
import json
import math
import os
import re
import secrets
import stat
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, BinaryIO

from . import _b64
from ._model import Cassette, shallow_dict
from .errors import CassetteCorruptError, CassetteNotFoundError, ConfigError

if TYPE_CHECKING:
    from yaml.error import Mark
    from yaml.nodes import Node

__all__ = [
    "FORMATS",
    "assets_dir",
    "cassette_path",
    "derived_path",
    "format_of",
    "parse_cache_dir",
    "read_cassette",
    "read_for_replay",
    "write_cassette",
]

FORMATS = ("yaml", "json")
_SUFFIX_FORMAT = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
# Implicit resolvers the reader drops: plain `2024-01-01` stays the string it was written
# as (JSON has no dates), and `=` is just a string, as in YAML 1.2.
_READER_DROPS = frozenset({"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"})

# Test hook: False forces PyYAML's pure-Python classes, as on a machine without libyaml.
_USE_LIBYAML = True

_BOM = b"\xef\xbb\xbf"
# The characters YAML allows in a stream (PyYAML's Reader uses the same class).
_YAML_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
# Line breaks other than "\n" that YAML 1.1 also treats as line breaks. PyYAML's Python
# emitter writes them raw in block and single-quoted scalars, where reading them back turns
# them into "\n" or a space; only double quotes escape them (\N, \L, \P).
_ODD_BREAKS = re.compile("[\x85\u2028\u2029]")

_ASSET_KEY = "body_asset"
_BODY_KEY = "body_b64"
# A `body_asset` value with this prefix is a reference; any other value is ordinary data.
_ASSET_PREFIX = "sha256:"
_ASSET_REF = re.compile(r"sha256:([0-9a-f]{64})")
_ASSET_FILE = re.compile(r"([0-9a-f]{64})\.bin")
# Finds references in any format's text without parsing it (used when pruning assets).
_ASSET_REF_IN_TEXT = re.compile(rb"""body_asset["']?\s*:\s*["']?sha256:([0-9a-f]{64})""")

_CACHE_MIN_BYTES = 64 * 1024
# Bump when what the reader produces for the same bytes changes: old entries then miss.
_CACHE_FORMAT = 1
_CACHE_MAX_TOTAL_BYTES = 512 * 1024 * 1024

_WINDOWS_ILLEGAL = re.compile(r'[<>:"|?*\\\x00-\x1f\x7f]')
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)


# --------------------------------------------------------------------------- paths


def format_of(path: str | os.PathLike[str]) -> str:
    """Return ``"yaml"`` or ``"json"`` from the file suffix (``.yaml``, ``.yml``, ``.json``)."""
    suffix = PurePath(path).suffix.lower()
    try:
        return _SUFFIX_FORMAT[suffix]
    except KeyError:
        raise ConfigError(
            f"cannot tell the cassette format of {os.fspath(path)!r}: "
            "the name must end with .yaml, .yml or .json",
            key="format",
        ) from None


def cassette_path(
    name: str | os.PathLike[str], cassette_dir: str | os.PathLike[str], fmt: str = "yaml"
) -> Path:
    """Resolve a cassette name to its file.

    A relative ``name`` lives under ``cassette_dir`` (``a/b`` makes a subfolder) and may not
    leave it; characters Windows forbids are replaced with ``_`` so a cassette recorded on
    one OS can be checked out on any. An absolute ``name`` is used as given. ``.yaml`` or
    ``.json`` is added per ``fmt`` unless the name already ends with a cassette suffix.
    """
    if fmt not in FORMATS:
        raise ConfigError(
            f"unknown cassette format {fmt!r}; use one of {', '.join(FORMATS)}", key="format"
        )
    pure = PurePath(name)
    if pure.is_absolute():
        return _with_suffix(Path(pure), fmt)
    if pure.anchor:
        raise ConfigError(
            f"cassette name {os.fspath(name)!r} is relative to a drive or root, not to the "
            "cassette folder; use a plain relative name or a full absolute path",
            key="cassette",
        )
    parts = [part for part in pure.parts if part != "."]
    if ".." in parts:
        raise ConfigError(
            f"cassette name {os.fspath(name)!r} contains '..' and would leave the cassette "
            f"folder {os.fspath(cassette_dir)}; use a name inside it, or an absolute path "
            "to store the cassette elsewhere",
            key="cassette",
        )
    if not parts:
        raise ConfigError(f"cassette name {os.fspath(name)!r} is empty", key="cassette")
    relative = Path(*(_safe_component(part) for part in parts))
    return _with_suffix(Path(cassette_dir) / relative, fmt)


def derived_path(path: str | os.PathLike[str]) -> Path:
    """``name.derived.yaml`` beside ``name.yaml``: where partial replay writes its timeline."""
    p = Path(path)
    return p.with_name(f"{p.stem}.derived{p.suffix}")


def assets_dir(path: str | os.PathLike[str]) -> Path:
    """The sidecar folder ``<stem>.assets/`` holding a cassette's large binary bodies."""
    p = Path(path)
    return p.with_name(f"{p.stem}.assets")


def _with_suffix(path: Path, fmt: str) -> Path:
    if path.suffix.lower() in _SUFFIX_FORMAT:
        return path
    return path.with_name(f"{path.name}.{fmt}")


def _safe_component(part: str) -> str:
    safe = _WINDOWS_ILLEGAL.sub("_", part)
    stripped = safe.rstrip(". ")
    # Windows silently drops trailing dots and spaces, which would merge distinct names.
    safe = stripped + "_" * (len(safe) - len(stripped))
    if safe.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        safe = "_" + safe
    return safe


# --------------------------------------------------------------------------- reading


def read_cassette(path: str | os.PathLike[str]) -> Cassette:
    """Load a cassette file (format from the suffix; anything but ``.json`` is YAML).

    Raises :class:`CassetteNotFoundError` when the file is missing,
    :class:`CassetteCorruptError` (file and position in the message) when it cannot be
    read, and :class:`SchemaVersionError` for a version this agenttape does not know.
    The file is never modified.
    """
    return _read(Path(path), blobs=False)


def read_for_replay(path: str | os.PathLike[str]) -> Cassette:
    """:func:`read_cassette` for a session: a response body kept in an asset is loaded as a
    :class:`~agenttape._b64.Blob` (its bytes, held once) rather than as base64 text."""
    return _read(Path(path), blobs=True)


def _read(p: Path, *, blobs: bool) -> Cassette:

    raw = _read_file(p)
    is_json = p.suffix.lower() == ".json"
    # Parsing allocates millions of acyclic objects; the cyclic collector's repeated full
    # passes over them about double the load time and can never free anything.
    with _gc_paused():
        try:
            cache_entry: Path | None = None
            cache_blob: bytes | None = None
            data: Any = _MISS
            if not is_json and len(raw) > _CACHE_MIN_BYTES:
                cache_entry = _cache_entry(raw)
                if cache_entry is not None:
                    data = _cache_load(cache_entry)
            if data is _MISS:
                text = _decode(raw, p)
                data = _parse_json(text, p) if is_json else _parse_yaml(text, p)
                if cache_entry is not None:
                    # Snapshot now: resolving assets below edits `data` in place, and the
                    # cache must hold the file's own content.
                    cache_blob = _cache_blob(cache_entry, data)
            if _ASSET_KEY.encode() in raw:
                _resolve_assets(data, p, blobs=blobs)
            cassette = Cassette.from_dict(data, path=p)
        except RecursionError:
            raise CassetteCorruptError(p, "the data is nested too deeply to load") from None
    if cache_entry is not None and cache_blob is not None:
        _cache_store(cache_entry, cache_blob)
    return cassette


def _read_file(p: Path) -> bytes:
    try:
        return _read_regular(p)
    except FileNotFoundError:
        raise CassetteNotFoundError(p) from None
    except IsADirectoryError:
        raise CassetteCorruptError(p, "is a directory, not a cassette file") from None
    except OSError as exc:
        raise CassetteCorruptError(p, f"cannot read the file: {exc.strerror or exc}") from exc


def _read_regular(p: Path) -> bytes:
    """A regular file's bytes; OSError for anything else."""
    with _open_regular(p) as f:
        return f.read()


@contextlib.contextmanager
def _open_regular(p: Path) -> Iterator[BinaryIO]:
    """A regular file opened for reading; OSError for anything else. Cassettes and assets
    come from pull requests: a committed symlink to /dev/zero would never end, one to a
    FIFO would block (O_NONBLOCK keeps the open itself from waiting for a writer)."""
    fd = os.open(p, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(p))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", str(p))
        yield f


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _decode(raw: bytes, p: Path) -> str:
    body = raw[len(_BOM) :] if raw.startswith(_BOM) else raw
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(body, exc.start)
        raise CassetteCorruptError(
            p,
            f"not valid UTF-8: byte 0x{body[exc.start]:02x} cannot start or continue a "
            "character (cassettes are UTF-8 text)",
            line=line,
            column=column,
        ) from None


def _byte_position(body: bytes, offset: int) -> tuple[int, int]:
    line_start = body.rfind(b"\n", 0, offset) + 1
    line = body.count(b"\n", 0, offset) + 1
    column = len(body[line_start:offset].decode("utf-8", errors="replace")) + 1
    return line, column


def _text_position(text: str, offset: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


# ---- JSON


class _NonFinite(ValueError):
    pass


def _reject_constant(token: str) -> Any:
    raise _NonFinite(token)


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise _NonFinite(token)
    return value


def _json_loads(text: str | bytes) -> Any:
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def _parse_json(text: str, p: Path) -> Any:
    try:
        return _json_loads(text)
    except json.JSONDecodeError as exc:
        raise CassetteCorruptError(
            p, f"invalid JSON: {exc.msg}", line=exc.lineno, column=exc.colno
        ) from None
    except _NonFinite as exc:
        token = str(exc)
        # json gives no position for these; on this error path a search is good enough.
        found = re.search(r"(?<![\w.])" + re.escape(token) + r"(?![\w.])", text)
        line, column = _text_position(text, found.start()) if found else (None, None)
        raise CassetteCorruptError(
            p,
            f"{token} is not a JSON number; cassettes hold finite numbers only",
            line=line,
            column=column,
        ) from None
    except ValueError as exc:  # e.g. an integer longer than Python's digit limit
        raise CassetteCorruptError(p, f"invalid JSON: {exc}") from None


# ---- YAML


def _yaml_loader_class() -> type[Any]:
    return _yaml_classes(_USE_LIBYAML)[0]


def _yaml_dumper_class() -> type[Any]:
    return _yaml_classes(_USE_LIBYAML)[1]


@functools.cache
def _yaml_classes(use_libyaml: bool) -> tuple[type[Any], type[Any]]:
    import yaml
    from yaml.representer import SafeRepresenter
    from yaml.resolver import Resolver

    # Copied from Resolver itself, not from SafeLoader/SafeDumper: other libraries register
    # extra tags and resolvers on those shared classes, and must not change our files.
    # Wildcard (None) entries are not standard and _fast_resolver ignores them.
    standard = {
        first: list(entries)
        for first, entries in Resolver.yaml_implicit_resolvers.items()
        if first is not None
    }
    reader_resolvers = {
        first: [(tag, rx) for tag, rx in entries if tag not in _READER_DROPS]
        for first, entries in standard.items()
    }
    c_loader = getattr(yaml, "CSafeLoader", None) if use_libyaml else None
    c_dumper = getattr(yaml, "CSafeDumper", None) if use_libyaml else None
    loader_base: type[Any] = c_loader or yaml.SafeLoader
    dumper_base: type[Any] = c_dumper or yaml.SafeDumper

    # Only the composer and the resolver are used: _construct turns nodes into data.
    loader_body: dict[str, Any] = {
        "yaml_implicit_resolvers": reader_resolvers,
        "yaml_path_resolvers": {},
        "yaml_constructors": {},
        "yaml_multi_constructors": {},
        "resolve": _fast_resolver(reader_resolvers),
        "descend_resolver": lambda self, parent, index: None,
        "ascend_resolver": lambda self: None,
    }
    if c_loader is None:
        loader_body["fetch_flow_collection_start"] = _capped_flow_start
    loader = type("_CassetteLoader", (loader_base,), loader_body)

    def represent_str(dumper: Any, data: str) -> Any:
        # A literal block keeps multi-line text (prompts, answers) readable in diffs; the
        # emitter itself falls back to a quoted style when a block cannot hold the string.
        if _ODD_BREAKS.search(data):
            style: str | None = '"'
        else:
            style = "|" if "\n" in data else None
        return dumper.represent_scalar(_STR, data, style=style)

    dumper = type(
        "_CassetteDumper",
        (dumper_base,),
        {
            # The writer's full standard table quotes every string that any YAML 1.1
            # reader could take for a non-string ("yes", "2024-01-01", "<<").
            "yaml_implicit_resolvers": standard,
            "yaml_path_resolvers": {},
            "resolve": _fast_resolver(standard),
            "descend_resolver": lambda self, parent, index: None,
            "ascend_resolver": lambda self: None,
            "yaml_representers": {
                str: represent_str,
                bool: SafeRepresenter.represent_bool,
                int: SafeRepresenter.represent_int,
                float: SafeRepresenter.represent_float,
                type(None): SafeRepresenter.represent_none,
                dict: SafeRepresenter.represent_dict,
                list: SafeRepresenter.represent_list,
            },
            "yaml_multi_representers": {},
            # The data is a fresh tree, so there is nothing to share; never emit `&`/`*`.
            "ignore_aliases": lambda self, data: True,
        },
    )
    return loader, dumper


def _fast_resolver(table: dict[Any, list[tuple[str, re.Pattern[str]]]]) -> Any:
    """PyYAML's ``resolve`` without path resolvers or wildcards, which we never have.

    It runs once per node when loading (~20% of a large load) and twice per scalar when
    dumping, so the generic version's per-call list concatenation and attribute lookups
    are worth skipping; the result is the same.
    """
    from yaml.nodes import ScalarNode, SequenceNode

    empty: list[tuple[str, re.Pattern[str]]] = []

    def resolve(self: Any, kind: Any, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in table.get(value[:1], empty):
                    if regexp.match(value):
                        return tag
            return _STR
        return _SEQ if kind is SequenceNode else _MAP

    return resolve


# PyYAML's pure-Python scanner costs O(depth) per token inside flow collections (`[[[[`),
# so absurd nesting would take seconds to fail. libyaml stops at 1000 levels by itself; the
# pure-Python composer recurses and cannot go much beyond 300 anyway.
_MAX_FLOW_DEPTH = 256


def _capped_flow_start(self: Any, token_class: Any) -> None:
    from yaml.scanner import Scanner, ScannerError

    if self.flow_level >= _MAX_FLOW_DEPTH:
        raise ScannerError(
            None, None, f"collections are nested more than {_MAX_FLOW_DEPTH} deep", self.get_mark()
        )
    Scanner.fetch_flow_collection_start(self, token_class)


class _Rejected(Exception):
    def __init__(self, reason: str, mark: Mark | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mark = mark


def _parse_yaml(text: str, p: Path) -> Any:
    import yaml
    from yaml.reader import ReaderError

    loader: Any = None
    try:
        # PyYAML's pure-Python reader already checks characters in the constructor.
        loader = _yaml_loader_class()(text)
        root = loader.get_single_node()
        if root is None:
            raise CassetteCorruptError(p, "the file is empty (no YAML document in it)")
        return _construct(root)
    except _Rejected as exc:
        line, column = _mark_position(exc.mark)
        raise CassetteCorruptError(p, exc.reason, line=line, column=column) from None
    except yaml.MarkedYAMLError as exc:
        line, column = _mark_position(exc.problem_mark or exc.context_mark)
        reason = " ".join(filter(None, [exc.context, exc.problem])) or "invalid YAML"
        raise CassetteCorruptError(p, f"invalid YAML: {reason}", line=line, column=column) from None
    except ReaderError:
        bad = _YAML_NON_PRINTABLE.search(text)
        line, column = _text_position(text, bad.start()) if bad else (None, None)
        char = f" #x{ord(bad.group()):04x}" if bad else ""
        raise CassetteCorruptError(
            p, f"invalid YAML: character{char} is not allowed in YAML", line=line, column=column
        ) from None
    except yaml.YAMLError as exc:
        raise CassetteCorruptError(p, f"invalid YAML: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _mark_position(mark: Mark | None) -> tuple[int | None, int | None]:
    if mark is None:
        return None, None
    return mark.line + 1, mark.column + 1


def _construct(root: Node) -> Any:
    """Turn composed YAML nodes into plain data, accepting only what JSON could hold.

    Replaces PyYAML's constructor (about 3x faster; a test checks the result equals
    ``yaml.load`` with the same resolvers). Each collection node is visited once and one
    reached a second time (an alias) is rejected, so the work is bounded by the file's
    size: an alias bomb fails at its first reuse instead of expanding.
    """
    from yaml.constructor import SafeConstructor
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    helper = SafeConstructor()
    converters: dict[str, Callable[[Any], Any]] = {
        _INT: functools.partial(SafeConstructor.construct_yaml_int, helper),
        _FLOAT: functools.partial(SafeConstructor.construct_yaml_float, helper),
        _BOOL: functools.partial(SafeConstructor.construct_yaml_bool, helper),
        _NULL: functools.partial(SafeConstructor.construct_yaml_null, helper),
    }

    def scalar(node: Any) -> Any:
        tag = node.tag
        if tag == _STR:
            return node.value
        convert = converters.get(tag)
        if convert is None:
            raise _Rejected(_tag_reason(tag), node.start_mark)
        try:
            value = convert(node)
        except (ValueError, KeyError, TypeError, OverflowError) as exc:
            raise _Rejected(
                f"{node.value!r} is not a valid {_short_tag(tag)}: {exc}", node.start_mark
            ) from None
        if type(value) is float and not math.isfinite(value):
            raise _Rejected(
                f"{node.value} is not a finite number; cassettes hold JSON-compatible numbers only",
                node.start_mark,
            )
        return value

    seen: set[int] = set()

    def container(node: Any, used_at: Mark) -> Any:
        kind = type(node)
        if node.tag != (_MAP if kind is MappingNode else _SEQ):
            raise _Rejected(_tag_reason(node.tag), node.start_mark)
        if id(node) in seen:
            raise _Rejected(
                f"the collection anchored at line {node.start_mark.line + 1} is used again "
                "through a YAML alias; cassettes may not reuse anchors (aliases can expand "
                "exponentially)",
                used_at,
            )
        seen.add(id(node))
        return {} if kind is MappingNode else []

    if type(root) is ScalarNode:
        return scalar(root)
    result = container(root, root.start_mark)
    # Breadth-first, so the first reuse reported is the earliest one in the file.
    queue: deque[tuple[Any, Any]] = deque([(root, result)])
    while queue:
        node, target = queue.popleft()
        if type(node) is MappingNode:
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:
                    raise _Rejected(
                        "YAML merge keys (<<) are not supported in cassettes",
                        key_node.start_mark,
                    )
                if type(key_node) is not ScalarNode or key_node.tag != _STR:
                    raise _Rejected(
                        "mapping keys must be strings (JSON objects have string keys); "
                        "quote the key",
                        key_node.start_mark,
                    )
                if type(value_node) is ScalarNode:
                    target[key_node.value] = scalar(value_node)
                else:
                    # An alias node carries its anchor's position; the key shows the reuse.
                    child = container(value_node, key_node.start_mark)
                    target[key_node.value] = child
                    queue.append((value_node, child))
        else:
            assert type(node) is SequenceNode
            for item in node.value:
                if type(item) is ScalarNode:
                    target.append(scalar(item))
                else:
                    child = container(item, node.start_mark)
                    target.append(child)
                    queue.append((item, child))
    return result


def _short_tag(tag: str) -> str:
    prefix = "tag:yaml.org,2002:"
    return "!!" + tag[len(prefix) :] if tag.startswith(prefix) else tag


def _tag_reason(tag: str) -> str:
    return (
        f"the YAML tag {_short_tag(tag)} is not allowed; cassettes hold only plain "
        "JSON-like data (mappings, lists, strings, numbers, true/false, null)"
    )


# ---- assets


def _resolve_assets(data: Any, p: Path, *, blobs: bool = False) -> None:
    """Replace each ``body_asset: sha256:<hex>`` with the ``body_b64`` it stands for (as a
    Blob in a response when ``blobs``: requests are matched on their JSON text)."""
    folder = assets_dir(p)
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            ref = node.get(_ASSET_KEY)
            if isinstance(ref, str) and ref.startswith(_ASSET_PREFIX):
                _inline_asset(node, ref, folder, where, p,
                              blob=blobs and _replayed_by_a_transport(data, where))
            stack.extend((v, (*where, k)) for k, v in node.items() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, (*where, i)) for i, v in enumerate(node) if isinstance(v, dict | list))


def _replayed_by_a_transport(data: Any, where: tuple[str | int, ...]) -> bool:
    """Whether ``where`` is inside the response of an ``http`` or ``llm`` interaction: the
    transports replay such a body from its bytes. Anything else (a tool's result) is handed
    back to the caller as it is stored, so it keeps its base64 text."""
    if len(where) < 3 or where[0] != "interactions" or where[2] != "response":
        return False
    try:
        interaction = data["interactions"][where[1]]
    except (KeyError, IndexError, TypeError):
        return False
    return isinstance(interaction, dict) and interaction.get("kind") in ("http", "llm")


def _inline_asset(
    node: dict[str, Any], ref: str, folder: Path, where: tuple[str | int, ...], p: Path,
    *, blob: bool = False,
) -> None:
    index, field = _locate((*where, _ASSET_KEY))
    # Exactly 64 lowercase hex digits, so a reference can never name a path outside
    # the assets folder.
    match = _ASSET_REF.fullmatch(ref)
    if match is None:
        raise CassetteCorruptError(
            p,
            f"{ref!r} is not an asset reference (expected sha256: and 64 hex digits)",
            index=index,
            field=field,
        )
    if _BODY_KEY in node:
        raise CassetteCorruptError(
            p, f"has both {_BODY_KEY} and {_ASSET_KEY}", index=index, field=field
        )
    digest = match.group(1)
    asset = folder / f"{digest}.bin"
    try:
        payload = _read_regular(asset)
    except OSError as exc:
        raise CassetteCorruptError(
            p,
            f"asset {asset} cannot be read ({exc.strerror or exc}); re-record the cassette "
            "or restore the file",
            index=index,
            field=field,
        ) from None
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CassetteCorruptError(
            p,
            f"asset {asset} does not match its sha256 (the file was changed)",
            index=index,
            field=field,
        )
    value: str | _b64.Blob
    if blob:
        value = _b64.Blob(payload)
    else:
        pieces = [payload]
        del payload  # let go while its text is built: a large asset is not held twice more
        value = _b64.encode_consuming(pieces)
    items = [(_BODY_KEY, value) if k == _ASSET_KEY else (k, v) for k, v in node.items()]
    node.clear()
    node.update(items)


def _locate(where: tuple[str | int, ...]) -> tuple[int | None, str]:
    """Split a data path into (interaction index, dotted field) for error messages."""
    index: int | None = None
    rest = where
    if len(where) >= 2 and where[0] == "interactions" and isinstance(where[1], int):
        index, rest = where[1], where[2:]
    return index, _dotted(rest)


def _dotted(where: tuple[str | int, ...]) -> str:
    text = ""
    for part in where:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


# ---- parse cache


class _Miss:
    pass


_MISS: Any = _Miss()


def parse_cache_dir() -> Path | None:
    """Where parsed YAML cassettes are cached, or None when caching is off.

    ``AGENTTAPE_NO_CACHE=1`` turns it off; ``AGENTTAPE_CACHE_DIR`` chooses the folder;
    otherwise ``$XDG_CACHE_HOME/agenttape/parsed`` or ``~/.cache/agenttape/parsed``.
    """
    if os.environ.get("AGENTTAPE_NO_CACHE", "").strip().lower() not in ("", "0", "false", "no"):
        return None
    explicit = os.environ.get("AGENTTAPE_CACHE_DIR", "").strip()
    if explicit:
        with contextlib.suppress(RuntimeError):  # `~user` naming no user
            return Path(explicit).expanduser()
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    # The XDG spec says a relative value is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "agenttape" / "parsed"
    try:
        return Path.home() / ".cache" / "agenttape" / "parsed"
    except RuntimeError:  # no home directory to be found
        return None


def _cache_entry(raw: bytes) -> Path | None:
    folder = parse_cache_dir()
    if folder is None:
        return None
    return folder / f"{hashlib.sha256(raw).hexdigest()}.v{_CACHE_FORMAT}.json"


def _cache_digest(entry: Path) -> str:
    return entry.name.split(".", 1)[0]


def _cache_load(entry: Path) -> Any:
    try:
        blob = entry.read_bytes()
        payload = _json_loads(blob)
    except (OSError, ValueError, RecursionError):
        return _MISS
    if (
        not isinstance(payload, dict)
        or payload.get("format") != _CACHE_FORMAT
        or payload.get("sha256") != _cache_digest(entry)
        or "data" not in payload
    ):
        return _MISS
    with contextlib.suppress(OSError):
        os.utime(entry)  # recency for pruning
    return payload["data"]


def _cache_blob(entry: Path, data: Any) -> bytes | None:
    try:
        text = json.dumps(
            {"format": _CACHE_FORMAT, "sha256": _cache_digest(entry), "data": data},
            separators=(",", ":"),
            allow_nan=False,
            check_circular=False,
        )
    except (ValueError, TypeError, RecursionError):
        return None
    return text.encode("ascii")


def _cache_prepare(raw: bytes, data: Any) -> tuple[Path, bytes] | None:
    """The entry for a file holding ``raw`` whose parse is ``data``, or None when a load
    would not cache it (small file, caching off)."""
    if len(raw) <= _CACHE_MIN_BYTES:
        return None
    entry = _cache_entry(raw)
    if entry is None:
        return None
    blob = _cache_blob(entry, data)
    return None if blob is None else (entry, blob)


def _cache_store(entry: Path, blob: bytes) -> None:
    # The cache is an optimisation: a read-only or full disk must not fail a load.
    with contextlib.suppress(OSError):
        entry.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(entry, blob, durable=False)
        _prune_cache(entry.parent, keep=entry)


def _prune_cache(folder: Path, keep: Path) -> None:
    entries: list[tuple[float, int, Path]] = []
    for item in folder.glob("*.json"):
        with contextlib.suppress(OSError):
            st = item.stat()
            entries.append((st.st_mtime, st.st_size, item))
    total = sum(size for _, size, _ in entries)
    for _, size, item in sorted(entries, key=lambda e: e[0]):
        if total <= _CACHE_MAX_TOTAL_BYTES:
            break
        if item != keep:
            with contextlib.suppress(OSError):
                item.unlink()
                total -= size


# --------------------------------------------------------------------------- writing


def write_cassette(
    cassette: Cassette, path: str | os.PathLike[str], *, assets_threshold_bytes: int = 4096
) -> Path:
    """Write ``cassette`` atomically to ``path`` (format from the suffix) and return it.

    ``body_b64`` payloads larger than ``assets_threshold_bytes`` once decoded go to the
    ``<stem>.assets/`` folder beside the file. A failure leaves the old file untouched.
    Raises ``TypeError``/``ValueError`` naming the field when the data is not JSON-like.
    """
    if (
        not isinstance(assets_threshold_bytes, int)
        or isinstance(assets_threshold_bytes, bool)
        or assets_threshold_bytes < 0
    ):
        raise ValueError(
            f"assets_threshold_bytes must be a non-negative integer; got {assets_threshold_bytes!r}"
        )
    p = Path(path)
    fmt = format_of(p)
    with _gc_paused():
        assets: dict[str, bytes | bytearray] = {}
        data = _plain_tree(cassette, assets, assets_threshold_bytes, p)
        blob, cached = (_dump_json(data), None) if fmt == "json" else _dump_yaml_cached(data)
    p.parent.mkdir(parents=True, exist_ok=True)
    if assets:
        folder = assets_dir(p)
        if folder.is_symlink():
            # Assets are written, and unreferenced ones deleted, in this folder: through a
            # link (one a checked-out pull request brought) that could be any folder.
            raise ValueError(f"cannot write cassette {p}: {folder} is a symlink; assets are "
                             "only written into a real folder beside the cassette")
        folder.mkdir(exist_ok=True)
        for digest, payload in assets.items():
            _write_asset(folder / f"{digest}.bin", digest, payload)
        _fsync_dir(folder)
    _atomic_write(p, blob)
    if cached is not None:
        _cache_store(*cached)  # so the first replay after recording skips the parser
    _prune_assets(p)
    return p


def _dump_json(data: Any) -> bytes:
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def _dump_yaml_cached(data: Any) -> tuple[bytes, tuple[Path, bytes] | None]:
    """The YAML text of ``data``, and the parse-cache entry a load of that text would store.

    Reading the text back gives exactly ``data`` (tests/test_yaml_emit.py checks it on
    generated trees), asset references still unresolved, which is what a load caches.
    """
    blob = _dump_yaml(data)
    return blob, _cache_prepare(blob, data)


def _dump_yaml(data: Any) -> bytes:
    # PyYAML's representer and emitter cost ~0.2 ms per interaction. The fast writer makes
    # the same bytes for the trees it can vouch for and returns None for any other.
    import yaml

    from . import _yaml_emit

    dumper = _yaml_dumper_class()
    blob = _yaml_emit.dump(
        data,
        dumper.yaml_implicit_resolvers,
        libyaml=issubclass(dumper, getattr(yaml, "CSafeDumper", ())),
    )
    return _dump_yaml_pyyaml(data) if blob is None else blob


def _dump_yaml_pyyaml(data: Any) -> bytes:
    """The reference writer: what :func:`_dump_yaml` returns, through PyYAML alone."""
    blob = _yaml_dump(data, _yaml_dumper_class())
    # libyaml escapes every character beyond U+FFFF, emoji included ("\U0001F389"), and
    # then cannot use a `|` block for the whole string. PyYAML's own emitter prints them
    # as they are, so it rewrites such documents; it is ~4x slower, hence only then.
    if b"\\U" in blob and _USE_LIBYAML:
        blob = _yaml_dump(data, _yaml_classes(False)[1])
    return blob


def _yaml_dump(data: Any, dumper: type[Any]) -> bytes:
    import yaml

    blob: bytes = yaml.dump(
        data,
        Dumper=dumper,
        encoding="utf-8",
        allow_unicode=True,
        default_flow_style=False,
        sort_keys=False,
        width=10**9,  # never fold long strings: a folded line diffs badly
    )
    return blob


class _NotPlain(Exception):
    def __init__(self, reason: str, error: type[Exception]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.where: list[str | int] = []


def _plain_tree(
    cassette: Cassette, assets: dict[str, bytes | bytearray], threshold: int, p: Path | None
) -> Any:
    """The cassette as exact JSON types, with large ``body_b64`` values moved to ``assets``."""

    def plain(value: Any) -> Any:
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            return value
        if kind is float:
            if not math.isfinite(value):
                raise _NotPlain(f"{value} is not a finite number", ValueError)
            return value
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if type(key) is not str:
                    if not isinstance(key, str):
                        raise _NotPlain(f"mapping key {key!r} is not a string", TypeError)
                    key = str.__str__(key)
                if key != _ASSET_KEY and key != _BODY_KEY:
                    # Most values: a leaf of an exact JSON type is kept without a call.
                    leaf = type(item)
                    if leaf is str or leaf is int or leaf is bool or item is None:
                        out[key] = item
                        continue
                    try:
                        out[key] = plain(item)
                    except _NotPlain as exc:
                        exc.where.insert(0, key)
                        raise
                    continue
                if key == _ASSET_KEY and type(item) is str and item.startswith(_ASSET_PREFIX):
                    raise _NotPlain(
                        f"a {_ASSET_KEY!r} string starting with {_ASSET_PREFIX!r} would be read "
                        "back as an asset reference",
                        ValueError,
                    )
                try:
                    if key == _BODY_KEY and type(item) is _b64.Blob:
                        if len(item.data) > threshold and _ASSET_KEY not in value:
                            # Straight from the bytes: the body is never turned into text.
                            assets[item.sha256()] = item.data
                            out[_ASSET_KEY] = f"sha256:{item.sha256()}"
                        else:
                            out[key] = str(item)
                        continue
                    if (
                        key == _BODY_KEY
                        and type(item) is str
                        and len(item) > threshold
                        and _ASSET_KEY not in value
                    ):
                        moved = _externalise(item, threshold)
                        if moved is not None:
                            digest, payload = moved
                            assets[digest] = payload
                            out[_ASSET_KEY] = f"sha256:{digest}"
                            continue
                    out[key] = plain(item)
                except _NotPlain as exc:
                    exc.where.insert(0, key)
                    raise
            return out
        if isinstance(value, list):
            items: list[Any] = []
            for position, item in enumerate(value):
                leaf = type(item)
                if leaf is str or leaf is int or leaf is bool or item is None:
                    items.append(item)
                    continue
                try:
                    items.append(plain(item))
                except _NotPlain as exc:
                    exc.where.insert(0, position)
                    raise
            return items
        # Subclasses (str enums, IntEnum) are stored as their plain value.
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return plain(float(value))
        raise _NotPlain(
            f"{kind.__name__} is not JSON-like (use dict, list, str, int, float, bool, None)",
            TypeError,
        )

    try:
        return plain(shallow_dict(cassette))
    except _NotPlain as exc:
        where = _dotted(tuple(exc.where)) or "<root>"
        raise exc.error(f"cannot write cassette {p}: {exc.reason} at {where}") from None
    except RecursionError:
        raise ValueError(
            f"cannot write cassette {p}: the data is nested too deeply or contains itself"
        ) from None


def _externalise(encoded: str, threshold: int) -> tuple[str, bytes | bytearray] | None:
    # Slice by slice (agenttape._b64): a whole-text decode and re-encode would hold a
    # 100 MB body three more times next to its text.
    payload = _b64.decode(encoded)
    if payload is None:
        return None
    # Only canonical base64 can be rebuilt exactly from the bytes on the way back in.
    if len(payload) <= threshold or not _b64.encodes(encoded, payload):
        return None
    return hashlib.sha256(payload).hexdigest(), payload


def _write_asset(target: Path, digest: str, payload: bytes | bytearray) -> None:
    with contextlib.suppress(OSError):
        # Content-addressed: an intact existing file is already right. A damaged one is
        # rewritten, or re-recording could never repair it.
        if _file_sha256(target) == digest:
            return
    _atomic_write(target, payload, dir_fsync=False)


def _file_sha256(path: Path) -> str:
    """A file's SHA-256, read a slice at a time (an asset may be as large as a download)."""
    digest = hashlib.sha256()
    with _open_regular(path) as f:
        while piece := f.read(1 << 20):
            digest.update(piece)
    return digest.hexdigest()


def _prune_assets(p: Path) -> None:
    """Delete assets no sibling cassette of the same stem refers to any more."""
    folder = assets_dir(p)
    if not folder.is_dir() or folder.is_symlink():
        return
    referenced: set[str] = set()
    for suffix in _SUFFIX_FORMAT:
        sibling = p.with_name(f"{p.stem}{suffix}")
        # Read back from disk rather than trusting what we wrote: a concurrent writer
        # may have replaced the file since, and its assets must survive.
        with contextlib.suppress(OSError):
            referenced.update(m.decode() for m in _ASSET_REF_IN_TEXT.findall(sibling.read_bytes()))
    for item in folder.iterdir():
        match = _ASSET_FILE.fullmatch(item.name)
        if match and match.group(1) not in referenced:
            with contextlib.suppress(OSError):
                item.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()  # only succeeds when empty


# ---- atomic files


def _atomic_write(path: Path, blob: bytes | bytearray, *, durable: bool = True,
                  dir_fsync: bool = True) -> None:
    """Write ``blob`` to ``path`` so readers see the old file or the new one, never a mix."""
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        _replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable and dir_fsync:
        _fsync_dir(path.parent)


def _create_temp(path: Path) -> tuple[int, str]:
    # Like tempfile.mkstemp(dir=..., prefix="." + name, suffix=".tmp"), but created with
    # mode 0o666 minus the umask, so os.replace does not leave a rewritten cassette 0600.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {path}")


def _replace(tmp: str, path: Path) -> None:
    if os.name != "nt":
        os.replace(tmp, path)
        return
    # Windows refuses to replace a file another process has open; readers hold it briefly.
    for attempt in range(20):
        try:
            os.replace(tmp, path)
            return
        except PermissionError:
            if attempt == 19:
                raise
            time.sleep(0.05)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; Windows cannot open directories this way.
    if os.name == "nt":
        return
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
