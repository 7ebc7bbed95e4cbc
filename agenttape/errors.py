"""Every error and warning agenttape raises, under one base class.

Errors carry their data as attributes and build their message from it, so callers
(the pytest plugin, the CLI) can render them differently without parsing text.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "AgentTapeError",
    "CassetteCorruptError",
    "CassetteNotFoundError",
    "ConfigError",
    "DeterminismDriftWarning",
    "SchemaVersionError",
    "StreamingNotRecordedWarning",
    "StreamingReplayError",
    "UnmatchedInteractionError",
]


class AgentTapeError(Exception):
    """Base class for all agenttape errors."""


class CassetteNotFoundError(AgentTapeError, FileNotFoundError):
    """The cassette file does not exist (raised by direct reads such as ``read_cassette``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        super().__init__(f"cassette not found: {self.path}")

    def __str__(self) -> str:
        return f"cassette not found: {self.path}"


class CassetteCorruptError(AgentTapeError):
    """A cassette cannot be parsed or violates the schema.

    ``line``/``column`` are 1-based positions in the file when the parser knows them;
    ``index``/``field`` locate the offending interaction and field when the schema check does.
    """

    def __init__(
        self,
        path: str | Path | None,
        reason: str,
        *,
        line: int | None = None,
        column: int | None = None,
        index: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        self.line = line
        self.column = column
        self.index = index
        self.field = field
        super().__init__(self._message())

    def _message(self) -> str:
        where = str(self.path) if self.path is not None else "<cassette>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        parts = [where]
        if self.index is not None:
            parts.append(f"interaction {self.index}")
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        return f"corrupt cassette ({', '.join(parts)}): {self.reason}"


class SchemaVersionError(AgentTapeError):
    """A cassette declares a schema version this agenttape cannot read."""

    def __init__(
        self, path: str | Path | None, found: object, supported: Sequence[str]
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.found = found
        self.supported = tuple(supported)
        where = str(self.path) if self.path is not None else "<cassette>"
        super().__init__(
            f"{where}: unsupported cassette version {found!r}; "
            f"this agenttape reads version(s) {', '.join(repr(v) for v in self.supported)}"
        )


class ConfigError(AgentTapeError, ValueError):
    """The configuration (agenttape.toml, pyproject.toml or arguments) is invalid."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        key: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.key = key
        self.suggestion = suggestion
        text = message
        if self.path is not None:
            text = f"{self.path}: {text}"
        if suggestion:
            text += f" (did you mean `{suggestion}`?)"
        super().__init__(text)


class StreamingReplayError(AgentTapeError):
    """A streaming LLM call was replayed but its recording holds no captured stream."""

    def __init__(self, message: str, *, boundary: str | None = None) -> None:
        self.boundary = boundary
        super().__init__(message)


class UnmatchedInteractionError(AgentTapeError):
    """A boundary crossing found no recording to replay.

    The message is built by :mod:`agenttape._diagnostics`; the attributes hold the data.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        boundary: str | None,
        request: Any,
        closest: Any = None,
        field_diffs: Sequence[Any] = (),
        cassette: Path | None = None,
        mode: str | None = None,
        unplayed: int = 0,
    ) -> None:
        self.kind = kind
        self.boundary = boundary
        self.request = request
        self.closest = closest
        self.field_diffs = list(field_diffs)
        self.cassette = cassette
        self.mode = mode
        self.unplayed = unplayed
        super().__init__(message)


class DeterminismDriftWarning(UserWarning):
    """A snapshotted environment variable differs between record and replay."""


class StreamingNotRecordedWarning(UserWarning):
    """A streaming call ran live while recording but its stream was not captured whole."""
