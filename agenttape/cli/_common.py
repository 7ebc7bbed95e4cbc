"""What every command shares: finding a cassette from what the user typed, and errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._model import Cassette
    from ..config import Config

__all__ = [
    "EXTENSIONS",
    "CliError",
    "cassette_files",
    "display",
    "load",
    "resolve",
    "write_output",
]

EXTENSIONS = (".yaml", ".yml", ".json")


class CliError(Exception):
    """A problem with what the user asked for: shown as one line, exit code 2."""


def display(path: Path) -> str:
    """A path as the user would type it: relative to the cwd when it lies under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _config() -> Config:
    from ..config import Config

    return Config.load()


def resolve(name: str, config: Config | None = None) -> Path:
    """The cassette file ``name`` means: an existing path, or a bare name in cassette_dir.

    Bare names try ``.yaml``, ``.yml`` and ``.json`` in that order, so ``checkout`` and
    ``checkout.derived`` both work.
    """
    given = Path(name)
    if given.is_file():
        return given
    cfg = config if config is not None else _config()
    base = cfg.cassette_dir
    candidates: list[Path] = []
    if given.suffix in EXTENSIONS:
        candidates.append(base / name)
    candidates.extend(base / f"{name}{ext}" for ext in EXTENSIONS)
    candidates.extend(Path(f"{name}{ext}") for ext in EXTENSIONS)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    message = f"no cassette {name!r} (looked for {display(base / name)}.yaml, .yml, .json)"
    hint = _closest(name, base)
    if hint:
        message += f"; did you mean {hint!r}?"
    raise CliError(message)


def _closest(name: str, base: Path) -> str | None:
    import difflib

    names = [_bare(p, base) for p in cassette_files(base)]
    found = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return found[0] if found else None


def _bare(path: Path, base: Path) -> str:
    rel = path.relative_to(base)
    return str(rel.with_suffix("")).replace(os.sep, "/")


def cassette_files(folder: Path) -> Iterator[Path]:
    """Every cassette file under ``folder``, sorted, skipping ``.assets`` folders."""
    if not folder.is_dir():
        return
    found = [
        p
        for ext in EXTENSIONS
        for p in folder.rglob(f"*{ext}")
        if p.is_file() and not any(part.endswith(".assets") for part in p.parts)
    ]
    yield from sorted(found)


def load(name: str, config: Config | None = None) -> tuple[Path, Cassette]:
    from .._storage import read_cassette

    path = resolve(name, config)
    return path, read_cassette(path)


def write_output(text: str, output: str | None) -> None:
    """``text`` to the file ``output``, or to stdout when it is None or ``-``."""
    if output is None or output == "-":
        sys.stdout.write(text)
        if not text.endswith("\n"):
            sys.stdout.write("\n")
        sys.stdout.flush()
        return
    target = Path(output)
    if target.parent and not target.parent.is_dir():
        raise CliError(f"cannot write {output}: folder {display(target.parent)} does not exist")
    target.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
