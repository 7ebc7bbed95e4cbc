"""The text of ``UnmatchedInteractionError``: the message users read most, designed not dumped."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._model import Interaction
from .matchers import FieldDiff

__all__ = ["render_unmatched"]

_LONG = 80
_MAX_REQUEST_LINES = 40


def _short(value: Any) -> str:
    if isinstance(value, str) and value == "<missing>":
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _LONG else text[: _LONG - 3] + "..."


def _block(value: Any, indent: str = "    ") -> str:
    text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
    lines = text.splitlines()
    if len(lines) > _MAX_REQUEST_LINES:
        hidden = len(lines) - _MAX_REQUEST_LINES
        lines = [*lines[:_MAX_REQUEST_LINES], f"... ({hidden} more lines)"]
    return "\n".join(indent + line for line in lines)


def _render_diff(diff: FieldDiff) -> str:
    a, b = diff.expected, diff.received
    if isinstance(a, str) and isinstance(b, str) and (
        "\n" in a or "\n" in b or len(a) > _LONG or len(b) > _LONG
    ):
        # Long prompts: show only what changed, as a reviewer would read it.
        udiff = difflib.unified_diff(
            _split(a), _split(b), fromfile="recorded", tofile="incoming", lineterm="", n=1
        )
        body = "\n".join("      " + line for line in udiff)
        return f"  {diff.path}:\n{body}"
    return f"  {diff.path}: expected {_short(a)}, received {_short(b)}"


def _split(text: str) -> list[str]:
    if "\n" in text:
        return text.splitlines()
    # One long line: wrap on sentence-ish boundaries so the diff points at the change.
    words = text.split(" ")
    lines, current = [], ""
    for word in words:
        if current and len(current) + len(word) + 1 > _LONG:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return lines


def render_unmatched(
    *,
    kind: str,
    boundary: str | None,
    request: Any,
    cassette: Path | None,
    mode: str,
    closest: Interaction | None,
    diffs: Sequence[FieldDiff],
    unplayed: int,
    recorded: int,
    reason: str | None = None,
) -> str:
    name = boundary or kind
    lines = [
        f"no recording matches this {kind} call to `{name}`"
        + (f" ({reason})" if reason else ""),
        "",
        f"  called:    {kind} `{name}`",
        f"  cassette:  {cassette if cassette is not None else '(none)'}",
        f"  mode:      {mode}",
        "",
        "incoming request:",
        _block(request),
        "",
    ]
    if closest is None:
        lines.append(f"closest recording: none — the cassette has no {kind} recording of `{name}`")
    else:
        lines += [
            f"closest recording: interaction #{closest.index} ({closest.kind} `{name}`)",
            "",
            "field differences (expected = recorded, received = incoming):",
        ]
        if diffs:
            lines += [_render_diff(d) for d in diffs]
        else:
            lines.append("  (none — an identical recording exists but has already been played)")
    lines += [
        "",
        f"unplayed recordings of `{name}`: {unplayed} of {recorded}",
        "",
        "how to fix:",
        "  - intended change? re-record: pytest --agenttape-record, or use mode=\"new_episodes\""
        " to append the new call",
        "  - volatile field? add its name to ignore_volatile_fields in agenttape.toml",
        f"  - should it run for real? use live={{\"{name}\"}}",
    ]
    if closest is not None and not diffs:
        lines.append("  - the same call repeats? set allow_playback_repeats = true")
    return "\n".join(lines)
