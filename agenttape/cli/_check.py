"""Cassette hygiene: ``redact`` (in place) and ``validate`` (for CI and pre-commit)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ._common import CliError, cassette_files, display, resolve

if TYPE_CHECKING:
    from .._model import Cassette
    from ..config import Config
    from ..redaction import Redactor

__all__ = ["Finding", "register", "validate_file"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("redact", parents=[common],
                       help="re-apply the configured redaction to a cassette, in place",
                       description="Re-apply the [redact] configuration to every request, "
                       "response, error, metadata and meta value and rewrite the file "
                       "atomically. Use after adding a denylist key or regex.")
    p.add_argument("cassette", metavar="CASSETTE")
    p.set_defaults(func=cmd_redact)

    p = sub.add_parser("validate", parents=[common],
                       help="check cassettes: schema, secrets, determinism risks",
                       description="Check cassettes for CI and pre-commit: schema errors "
                       "and surviving secrets are errors (exit 1); determinism risks and "
                       "unfinished recordings are warnings (exit 1 only with --strict). "
                       "One line per finding: path:interaction N: message.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="cassette files, folders or bare names (default: every cassette "
                   "under cassette_dir)")
    p.add_argument("--strict", action="store_true", help="warnings fail too")
    p.set_defaults(func=cmd_validate)


# --- redact ------------------------------------------------------------------------------------


def redact_cassette(cassette: Cassette, redactor: Redactor,
                    config: Config) -> tuple[Cassette, int, bool]:
    """A redacted copy, how many interactions changed, and whether ``meta`` did."""
    from ..matchers import resolve_matchers

    first = resolve_matchers(config.default_matchers, config.ignore_volatile_fields)[0]
    changed = 0
    interactions = []
    for inter in cassette.interactions:
        request = redactor.redact(inter.request)
        new = attrs.evolve(
            inter,
            request=request,
            # joined: a key cut across a stream's events, as `validate` reports it.
            response=None if inter.error is not None else redactor.redact(inter.response,
                                                                          joined=True),
            error=redactor.redact(inter.error) if inter.error is not None else None,
            metadata=redactor.redact(inter.metadata),
            # The stored key describes the stored request; keep them in step.
            match_key=first.key(request) if request != inter.request else inter.match_key,
        )
        changed += new != inter
        interactions.append(new)
    meta = redactor.redact(cassette.meta)
    return attrs.evolve(cassette, meta=meta, interactions=interactions), changed, (
        meta != cassette.meta)


def cmd_redact(args: argparse.Namespace) -> int:
    from .._storage import read_cassette, write_cassette
    from ..config import Config
    from ..redaction import Redactor

    config = Config.load()
    path = resolve(args.cassette, config)
    redactor = Redactor.from_config(config.redact)
    if not redactor.enabled:
        raise CliError("redaction is disabled ([redact] enabled = false); nothing to do")
    cassette = read_cassette(path)
    redacted, changed, meta_changed = redact_cassette(cassette, redactor, config)
    if not changed and not meta_changed:
        print(f"{display(path)}: nothing to redact")
        return 0
    write_cassette(redacted, path, assets_threshold_bytes=config.assets_threshold_bytes)
    what = f"{changed} interaction(s)" + (" and meta" if meta_changed else "")
    print(f"{display(path)}: redacted {what}; rewritten in place")
    return 0


# --- validate ----------------------------------------------------------------------------------


@attrs.define
class Finding:
    path: Path
    message: str
    index: int | None = None
    line: int | None = None
    column: int | None = None
    error: bool = True

    def __str__(self) -> str:
        where = display(self.path)
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        if self.index is not None:
            where += f":interaction {self.index}"
        return f"{where}: {'' if self.error else 'warning: '}{self.message}"


_TIMESTAMP = re.compile(
    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?\b"
)
_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-"
    r"[0-9a-fA-F]{12}\b"
)
_SECRET_PATH = re.compile(r"^interactions\[(\d+)\]\.?(.*)$")


def _strings(value: Any, path: str, skip: frozenset[str]) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key.lower() in skip:
                continue  # volatile: never part of matching, so never a replay risk
            yield from _strings(item, f"{path}.{key}" if path else str(key), skip)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _strings(item, f"{path}[{n}]", skip)
    elif isinstance(value, str):
        yield path, value


def _determinism(path: Path, cassette: Cassette, config: Config) -> list[Finding]:
    freeze = cassette.meta.get("freeze")
    features = set(freeze.get("features") or []) if isinstance(freeze, dict) else set()
    checks = [
        (name, rx, fix)
        for name, rx, fix in (
            ("clock", _TIMESTAMP, "a timestamp"),
            ("uuid", _UUID, "a uuid"),
        )
        if name not in features
    ]
    if not checks:
        return []
    skip = frozenset(f.lower() for f in config.ignore_volatile_fields)
    found = []
    for inter in cassette.interactions:
        for where, text in _strings(inter.request, "request", skip):
            for feature, rx, what in checks:
                m = rx.search(text)
                if m:
                    found.append(Finding(
                        path,
                        f"{where} holds {what} ({m.group(0)!r}) but {feature!r} is not frozen;"
                        f" a new value on replay will not match. Freeze {feature!r} and take "
                        "the value from agenttape, or add the field to ignore_volatile_fields",
                        index=inter.index, error=False,
                    ))
    return found


def validate_file(path: Path, config: Config, redactor: Redactor) -> list[Finding]:
    from .._storage import read_cassette
    from ..errors import CassetteCorruptError, SchemaVersionError

    try:
        cassette = read_cassette(path)
    except CassetteCorruptError as exc:
        field = f"field {exc.field!r}: " if exc.field else ""
        return [Finding(path, f"schema: {field}{exc.reason}", index=exc.index, line=exc.line,
                        column=exc.column)]
    except SchemaVersionError as exc:
        supported = ", ".join(repr(v) for v in exc.supported)
        return [Finding(path, f"schema: unsupported version {exc.found!r} (supported: "
                              f"{supported})")]
    findings: list[Finding] = []
    for where, pattern in redactor.find_secrets(cassette.to_dict()):
        m = _SECRET_PATH.match(where)
        index = int(m.group(1)) if m else None
        field = (m.group(2) if m else where) or "<interaction>"
        findings.append(Finding(path, f"secret ({pattern}) at {field}; run `agenttape "
                                      f"redact {display(path)}` and rotate the key",
                                index=index))
    for position, inter in enumerate(cassette.interactions):
        if inter.index != position:
            findings.append(Finding(path, f"index {inter.index} at position {position}",
                                    index=inter.index, error=False))
        if inter.metadata.get("incomplete"):
            findings.append(Finding(path, "crossing never finished while recording "
                                          "(metadata.incomplete)", index=inter.index,
                                    error=False))
    if cassette.meta.get("incomplete"):
        findings.append(Finding(path, "the recorded run raised before it finished "
                                      "(meta.incomplete); re-record it", error=False))
    findings.extend(_determinism(path, cassette, config))
    return findings


def _targets(paths: list[str], config: Config) -> list[Path]:
    if not paths:
        return list(cassette_files(config.cassette_dir))
    out: list[Path] = []
    for given in paths:
        if Path(given).is_dir():
            out.extend(cassette_files(Path(given)))
        elif Path(given).exists():
            out.append(Path(given))
        else:
            out.append(resolve(given, config))
    return out


def cmd_validate(args: argparse.Namespace) -> int:
    from ..config import Config
    from ..redaction import Redactor

    config = Config.load()
    targets = _targets(list(args.paths), config)
    if not targets:
        print(f"no cassettes under {display(config.cassette_dir)}")
        return 0
    # Patterns only: validate must flag a secret even where redaction is switched off.
    redactor = Redactor.from_config(config.redact)
    errors = warnings = 0
    for path in targets:
        for finding in validate_file(path, config, redactor):
            print(finding)
            errors += finding.error
            warnings += not finding.error
    print(f"{len(targets)} cassette(s) checked: {errors} error(s), {warnings} warning(s)")
    return 1 if errors or (args.strict and warnings) else 0
