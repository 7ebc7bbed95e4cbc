"""The resolved configuration and its discovery (``agenttape.toml`` / ``[tool.agenttape]``).

Every value is checked by one table of check functions, shared by three doors: the file
loader (which knows the file to blame), the attrs validators (construction, ``evolve`` and
attribute assignment) and the ``check_*`` helpers that ``use_cassette`` arguments go through.
So a bad mode reads the same wherever it came from.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from .errors import ConfigError

__all__ = [
    "DEFAULT_VOLATILE_FIELDS",
    "FORMATS",
    "FREEZE_FEATURES",
    "MATCHER_NAMES",
    "MODES",
    "Config",
    "RedactConfig",
    "check_format",
    "check_freeze",
    "check_mode",
    "env_mode",
]

MODES = ("none", "once", "new_episodes", "all", "record")
FORMATS = ("yaml", "json")
FREEZE_FEATURES = ("clock", "uuid", "random")
MATCHER_NAMES = ("ignore_volatile", "exact", "ordered", "sequential")
DEFAULT_VOLATILE_FIELDS = (
    "timestamp",
    "created",
    "created_at",
    "request_id",
    "x-request-id",
    "x-amzn-requestid",
    "nonce",
    "trace_id",
    "traceparent",
    "date",
    "user-agent",
    "idempotency-key",
)

ENV_MODE = "AGENTTAPE_MODE"
CONFIG_FILE = "agenttape.toml"
PYPROJECT_FILE = "pyproject.toml"


# --- value checks ------------------------------------------------------------------------
# A check raises _Invalid with the problem phrased after the key ("must be ...; got ...");
# the caller adds the key and, when it knows it, the file. That split is what lets one
# message serve a TOML file, a constructor call and a use_cassette argument.


class _Invalid(Exception):
    def __init__(self, problem: str, suggestion: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.suggestion = suggestion


# Named in TOML's words: the file is where most people meet these messages.
_TYPE_NAMES = {
    bool: "boolean",
    int: "integer",
    float: "float",
    str: "string",
    list: "list",
    tuple: "tuple",
    dict: "table",
}


def _shown(value: object) -> str:
    kind = _TYPE_NAMES.get(type(value), type(value).__name__)
    return f"{value!r} ({kind})"


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    import difflib  # only ever needed on the error path

    found = difflib.get_close_matches(word, list(candidates), n=1)
    return found[0] if found else None


def _listing(choices: Iterable[str]) -> str:
    return ", ".join(choices)


def _check_choice(value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be one of {_listing(choices)}; got {_shown(value)}")
    if value not in choices:
        raise _Invalid(
            f"must be one of {_listing(choices)}; got {value!r}", _closest(value, choices)
        )
    return value


def _check_items(values: list[Any], choices: tuple[str, ...] | None) -> None:
    for item in values:
        if not isinstance(item, str):
            raise _Invalid(f"must contain only strings; got {_shown(item)}")
        if choices is not None and item not in choices:
            raise _Invalid(
                f"has unknown entry {item!r}; valid entries: {_listing(choices)}",
                _closest(item, choices),
            )


def _string_list(choices: tuple[str, ...] | None = None) -> Callable[[object], None]:
    expected = "a list of strings" + (f" from {_listing(choices)}" if choices else "")

    def check(value: object) -> None:
        if not isinstance(value, list):
            # `freeze = "clock"` is the usual slip; show the spelling that works.
            hint = f'["{value}"]' if isinstance(value, str) else None
            raise _Invalid(f"must be {expected}; got {_shown(value)}", hint)
        _check_items(value, choices)

    return check


def _check_matchers(value: object) -> None:
    _string_list(MATCHER_NAMES)(value)
    if not value:
        # An empty fallback chain could never match a recording: every replay would fail.
        raise _Invalid(f"must name at least one matcher from {_listing(MATCHER_NAMES)}")


def _check_mode(value: object) -> str:
    return _check_choice(value, MODES)


def _check_format(value: object) -> str:
    return _check_choice(value, FORMATS)


def _check_bool(value: object) -> None:
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false; got {_shown(value)}")


def _check_size(value: object) -> None:
    # bool is an int subclass; `true` for a byte count is a mistake, not 1.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Invalid(f"must be a non-negative integer (bytes); got {_shown(value)}")


def _check_string(value: object) -> None:
    if not isinstance(value, str):
        raise _Invalid(f"must be a string; got {_shown(value)}")


def _check_optional_model(value: object) -> None:
    # TOML cannot spell "unset"; an empty string would send requests with model "".
    if value is not None and (not isinstance(value, str) or not value):
        raise _Invalid(f"must be a non-empty string (a model name); got {_shown(value)}")


def _check_cassette_dir(value: object) -> None:
    if isinstance(value, Path):
        return
    if not isinstance(value, str) or not value:
        raise _Invalid(f"must be a non-empty string (a folder path); got {_shown(value)}")


def _check_source(value: object) -> None:
    if value is not None and not isinstance(value, Path):
        raise _Invalid(f"must be a Path or None; got {_shown(value)}")


def _check_redact(value: object) -> None:
    if not isinstance(value, RedactConfig):
        raise _Invalid(f"must be a RedactConfig; got {_shown(value)}")


_CHECKS: dict[str, Callable[[object], object]] = {
    "cassette_dir": _check_cassette_dir,
    "default_mode": _check_mode,
    "default_matchers": _check_matchers,
    "format": _check_format,
    "freeze": _string_list(FREEZE_FEATURES),
    "ignore_volatile_fields": _string_list(),
    "env_snapshot": _string_list(),
    "assets_threshold_bytes": _check_size,
    "allow_playback_repeats": _check_bool,
    "llm_hosts": _string_list(),
    "model_override": _check_optional_model,
    "redact": _check_redact,
    "source": _check_source,
}

_REDACT_CHECKS: dict[str, Callable[[object], object]] = {
    "enabled": _check_bool,
    "denylist": _string_list(),
    # Bad patterns are not a config error: redaction warns and skips them at use time.
    "regexes": _string_list(),
    "redact_emails": _check_bool,
    "placeholder": _check_string,
}


def _error(key: str, problem: _Invalid, path: Path | None = None) -> ConfigError:
    return ConfigError(
        f"`{key}` {problem.problem}", path=path, key=key, suggestion=problem.suggestion
    )


def _validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    is_redact = isinstance(instance, RedactConfig)
    checks = _REDACT_CHECKS if is_redact else _CHECKS
    try:
        checks[attribute.name](value)
    except _Invalid as problem:
        key = f"redact.{attribute.name}" if is_redact else attribute.name
        raise _error(key, problem) from None


def _to_path(value: str | os.PathLike[str]) -> Path:
    # A converter runs before validators, so it has to reject non-paths itself.
    if isinstance(value, Path):
        return value
    if isinstance(value, os.PathLike) or (isinstance(value, str) and value):
        return Path(value)
    raise _error("cassette_dir", _Invalid(f"must be a non-empty path; got {_shown(value)}"))


# --- public validators for use_cassette arguments -----------------------------------------


def check_mode(value: object, *, source: str = "mode") -> str:
    """Return ``value`` if it is a cassette mode, else raise :class:`ConfigError`.

    ``source`` names where the value came from in the message (``mode``, ``AGENTTAPE_MODE``).
    """
    try:
        return _check_mode(value)
    except _Invalid as problem:
        raise _error(source, problem) from None


def check_format(value: object, *, source: str = "format") -> str:
    """Return ``value`` if it is a cassette format (``yaml``/``json``), else raise."""
    try:
        return _check_format(value)
    except _Invalid as problem:
        raise _error(source, problem) from None


def check_freeze(values: Iterable[str], *, source: str = "freeze") -> list[str]:
    """Return ``values`` as a list if each is a freeze feature, else raise.

    Any iterable of names is accepted (a set or tuple argument is natural in Python); a bare
    string is refused, since iterating it would yield letters.
    """
    try:
        if isinstance(values, str) or not isinstance(values, Iterable):
            _string_list(FREEZE_FEATURES)(values)
        items = list(values)
        _check_items(items, FREEZE_FEATURES)
    except _Invalid as problem:
        raise _error(source, problem) from None
    return items


def env_mode() -> str | None:
    """The mode set by ``AGENTTAPE_MODE`` (validated), or None when unset or empty.

    Empty counts as unset because CI templates often export the variable with no value.
    """
    value = os.environ.get(ENV_MODE)
    if not value:
        return None
    return check_mode(value, source=ENV_MODE)


# --- the configuration ---------------------------------------------------------------------


@attrs.define(kw_only=True)
class RedactConfig:
    """The ``[redact]`` table: what is masked before anything is written."""

    enabled: bool = attrs.field(default=True, validator=_validate)
    denylist: list[str] = attrs.field(factory=list, validator=_validate)
    regexes: list[str] = attrs.field(factory=list, validator=_validate)
    redact_emails: bool = attrs.field(default=True, validator=_validate)
    placeholder: str = attrs.field(default="***REDACTED***", validator=_validate)


@attrs.define(kw_only=True)
class Config:
    """The resolved configuration; every field has a default.

    Validated on construction, on :meth:`evolve` and on attribute assignment, so a
    ``Config`` that exists is a valid one. ``source`` is the file it was loaded from.
    """

    cassette_dir: Path = attrs.field(
        default=Path("cassettes"), converter=_to_path, validator=_validate
    )
    default_mode: str = attrs.field(default="none", validator=_validate)
    default_matchers: list[str] = attrs.field(
        factory=lambda: ["ignore_volatile"], validator=_validate
    )
    format: str = attrs.field(default="yaml", validator=_validate)
    freeze: list[str] = attrs.field(factory=lambda: list(FREEZE_FEATURES), validator=_validate)
    ignore_volatile_fields: list[str] = attrs.field(
        factory=lambda: list(DEFAULT_VOLATILE_FIELDS), validator=_validate
    )
    env_snapshot: list[str] = attrs.field(factory=list, validator=_validate)
    assets_threshold_bytes: int = attrs.field(default=4096, validator=_validate)
    allow_playback_repeats: bool = attrs.field(default=False, validator=_validate)
    llm_hosts: list[str] = attrs.field(factory=list, validator=_validate)
    model_override: str | None = attrs.field(default=None, validator=_validate)
    redact: RedactConfig = attrs.field(factory=RedactConfig, validator=_validate)
    source: Path | None = attrs.field(default=None, validator=_validate)

    @classmethod
    def load(cls, start: str | os.PathLike[str] | None = None) -> Config:
        """Find and read the configuration for ``start`` (default: the current folder).

        Walks up from ``start``; in each folder ``agenttape.toml`` wins, else a
        ``pyproject.toml`` with a ``[tool.agenttape]`` table. With no file, the defaults
        apply and ``cassette_dir`` is relative to ``start``. ``AGENTTAPE_MODE`` then
        overrides ``default_mode``.
        """
        folder = Path(os.path.abspath(os.getcwd() if start is None else start))
        if folder.is_file():
            folder = folder.parent
        found = _discover(folder)
        if found is None:
            config = cls(cassette_dir=folder / "cassettes")
        else:
            config = _from_table(cls, *found)
        mode = env_mode()
        if mode is not None:
            config.default_mode = mode
        return config

    def evolve(self, **changes: Any) -> Config:
        """A validated copy with ``changes`` applied (``use_cassette`` argument overrides)."""
        return attrs.evolve(self, **changes)


# --- discovery and parsing -----------------------------------------------------------------

_TOP_KEYS = tuple(name for name in _CHECKS if name != "source")
_REDACT_KEYS = tuple(_REDACT_CHECKS)

# Config.load runs on every session enter, so a parsed file is kept until its stat changes.
# Values are the agenttape table, or None for a pyproject.toml that has none.
_cache: dict[tuple[str, int, int, int], dict[str, Any] | None] = {}
_CACHE_LIMIT = 64


def _discover(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    while True:
        for name in (CONFIG_FILE, PYPROJECT_FILE):
            candidate = folder / name
            try:
                info = os.stat(candidate)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            table = _read_table(candidate, info)
            if table is not None:
                return candidate, table
        if folder.parent == folder:
            return None
        folder = folder.parent


def _read_table(path: Path, info: os.stat_result) -> dict[str, Any] | None:
    key = (str(path), info.st_mtime_ns, info.st_size, info.st_ino)
    if key in _cache:
        return _cache[key]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", path=path) from None
    is_pyproject = path.name == PYPROJECT_FILE
    if is_pyproject and b"agenttape" not in data:
        # Most pyproject.toml files on the way up are not ours; skip them without parsing.
        table = None
    else:
        document = _parse(path, data)
        table = _pyproject_table(path, document) if is_pyproject else document
    if len(_cache) >= _CACHE_LIMIT:
        _cache.clear()
    _cache[key] = table
    return table


def _parse(path: Path, data: bytes) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

    try:
        # utf-8-sig: editors that write a BOM would otherwise fail on line 1.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"invalid TOML: not UTF-8 (byte {exc.start} is {data[exc.start]:#04x})", path=path
        ) from None
    try:
        document: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message already ends with "(at line N, column M)".
        raise ConfigError(f"invalid TOML: {exc}", path=path) from None
    return document


def _pyproject_table(path: Path, document: dict[str, Any]) -> dict[str, Any] | None:
    tool = document.get("tool")
    if not isinstance(tool, dict) or "agenttape" not in tool:
        return None
    table = tool["agenttape"]
    if not isinstance(table, dict):
        raise ConfigError(
            f"[tool.agenttape] must be a table; got {_shown(table)}",
            path=path,
            key="tool.agenttape",
        )
    return table


def _check_keys(
    path: Path, table: dict[str, Any], valid: tuple[str, ...], *, prefix: str, where: str
) -> None:
    for name in table:
        if name in valid:
            continue
        key = prefix + name
        if name == "tool" and not prefix and path.name == CONFIG_FILE:
            raise ConfigError(
                "unknown key `tool`: agenttape.toml takes its keys at the top level "
                "([tool.agenttape] is the pyproject.toml form)",
                path=path,
                key=key,
            )
        suggestion = _closest(name, valid)
        message = f"unknown key `{key}`{where}"
        if suggestion is None:
            message += f"; valid keys: {_listing(prefix + v for v in valid)}"
        raise ConfigError(
            message, path=path, key=key, suggestion=prefix + suggestion if suggestion else None
        )


def _checked(
    path: Path, table: dict[str, Any], checks: dict[str, Callable[[object], object]], prefix: str
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in table.items():
        try:
            checks[name](value)
        except _Invalid as problem:
            raise _error(prefix + name, problem, path) from None
        # Copied so that a caller mutating its Config cannot change the cached table.
        values[name] = list(value) if isinstance(value, list) else value
    return values


def _from_table(cls: type[Config], path: Path, table: dict[str, Any]) -> Config:
    in_pyproject = path.name == PYPROJECT_FILE
    where = " in [tool.agenttape]" if in_pyproject else ""
    _check_keys(path, table, _TOP_KEYS, prefix="", where=where)
    values = dict(table)
    redact_table = values.pop("redact", {})
    if not isinstance(redact_table, dict):
        raise _error("redact", _Invalid(f"must be a table; got {_shown(redact_table)}"), path)
    redact_where = " in [tool.agenttape.redact]" if in_pyproject else " in [redact]"
    _check_keys(path, redact_table, _REDACT_KEYS, prefix="redact.", where=redact_where)
    values = _checked(path, values, _CHECKS, "")
    # Relative to the file, not the cwd: the same tests must find the same cassettes
    # whether pytest runs from the repo root or a subfolder.
    raw_dir = values.pop("cassette_dir", "cassettes")
    cassette_dir = path.parent / os.path.expanduser(raw_dir)
    return cls(
        cassette_dir=Path(os.path.normpath(cassette_dir)),
        redact=RedactConfig(**_checked(path, redact_table, _REDACT_CHECKS, "redact.")),
        source=path,
        **values,
    )
