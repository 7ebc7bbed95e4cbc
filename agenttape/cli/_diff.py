"""``diff A B``: what changed between two runs (typically ``name`` and ``name.derived``).

Interactions are aligned on their ``(kind, boundary)`` sequence with difflib, so one
extra tool call shows as one addition instead of shifting every later pair. Aligned pairs
are compared field by field with :func:`agenttape.matchers.field_diffs`. Latency, match
keys and metadata are not compared: they differ between any two runs.
"""

from __future__ import annotations

import argparse
import difflib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from ._common import display, load
from ._summary import message_lines, request_summary, response_text

if TYPE_CHECKING:
    from .._model import Cassette, Interaction
    from ..matchers import FieldDiff

__all__ = ["Entry", "align", "register", "render_diff"]

Status = Literal["equal", "changed", "added", "removed"]
TYPES = ("run", "prompt", "state", "output", "all")
RUN_FIELDS = ("request", "response", "error", "usage", "tags")
OUTPUT_FIELDS = ("response", "error")
MEMORY_KINDS = ("memory_read", "memory_write")
_LONG = 80


@attrs.define
class Entry:
    """One row of an alignment: ``a`` and/or ``b`` and, when both, their differences."""

    status: Status
    a: Interaction | None
    b: Interaction | None
    diffs: list[FieldDiff] = attrs.Factory(list)


def _signature(inter: Interaction) -> tuple[str, str]:
    return inter.kind, inter.boundary or inter.kind


def _compare(a: Interaction, b: Interaction, fields: Sequence[str]) -> list[FieldDiff]:
    from ..matchers import field_diffs

    left = {f: getattr(a, f) for f in fields}
    right = {f: getattr(b, f) for f in fields}
    return field_diffs(left, right)


def align(a: Sequence[Interaction], b: Sequence[Interaction],
          fields: Sequence[str] = RUN_FIELDS) -> list[Entry]:
    matcher = difflib.SequenceMatcher(
        a=[_signature(i) for i in a], b=[_signature(i) for i in b], autojunk=False
    )
    entries: list[Entry] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for x, y in zip(a[i1:i2], b[j1:j2], strict=True):
                diffs = _compare(x, y, fields)
                entries.append(Entry("changed" if diffs else "equal", x, y, diffs))
            continue
        entries.extend(Entry("removed", x, None) for x in a[i1:i2])
        entries.extend(Entry("added", None, y) for y in b[j1:j2])
    return entries


# --- rendering ---------------------------------------------------------------------------------


def _short(value: Any) -> str:
    if isinstance(value, str) and value == "<missing>":
        return "(absent)"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _LONG else text[: _LONG - 1] + "…"


def _split(text: str) -> list[str]:
    if "\n" in text:
        return text.splitlines()
    words, lines, current = text.split(" "), [], ""
    for word in words:
        if current and len(current) + len(word) + 1 > _LONG:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    lines.append(current)
    return lines


def render_field_diff(diff: FieldDiff, indent: str = "    ") -> list[str]:
    a, b = diff.expected, diff.received
    if isinstance(a, str) and isinstance(b, str) and (
        "\n" in a or "\n" in b or len(a) > _LONG or len(b) > _LONG
    ):
        lines = [f"{indent}{diff.path}:"]
        udiff = difflib.unified_diff(_split(a), _split(b), "A", "B", lineterm="", n=1)
        lines += [f"{indent}  {line}" for line in udiff]
        return lines
    return [f"{indent}{diff.path}: {_short(a)} -> {_short(b)}"]


def _label(inter: Interaction) -> str:
    return f"{inter.kind} {inter.boundary or inter.kind}"


def _render_entries(entries: list[Entry], what: str) -> tuple[list[str], bool]:
    lines: list[str] = []
    counts = {"changed": 0, "removed": 0, "added": 0, "equal": 0}
    for entry in entries:
        counts[entry.status] += 1
        if entry.status == "changed":
            assert entry.a is not None and entry.b is not None
            lines.append(f"~ A#{entry.a.index} B#{entry.b.index}  {_label(entry.b)}")
            for diff in entry.diffs:
                lines.extend(render_field_diff(diff))
        elif entry.status == "removed":
            assert entry.a is not None
            lines.append(f"- A#{entry.a.index}  {_label(entry.a)}  {request_summary(entry.a)}")
        elif entry.status == "added":
            assert entry.b is not None
            lines.append(f"+ B#{entry.b.index}  {_label(entry.b)}  {request_summary(entry.b)}")
    differ = any(counts[k] for k in ("changed", "removed", "added"))
    lines.append(f"{what}: {counts['changed']} changed, {counts['removed']} removed, "
                 f"{counts['added']} added, {counts['equal']} unchanged")
    return lines, differ


def _prompt_text(cassette: Cassette) -> list[str]:
    lines: list[str] = []
    calls = [i for i in cassette.interactions if i.kind == "llm"]
    for n, inter in enumerate(calls, 1):
        model = inter.request.get("model", "")
        lines.append(f"[llm call {n} | {inter.boundary or 'llm'} | {model}]")
        for role, text in message_lines(inter.request):
            body = text.splitlines() or [""]
            lines.append(f"{role}: {body[0]}")
            lines.extend(f"  {rest}" for rest in body[1:])
    return lines


def _prompt_section(a: Cassette, b: Cassette) -> tuple[list[str], bool]:
    left, right = _prompt_text(a), _prompt_text(b)
    udiff = list(difflib.unified_diff(left, right, "A llm messages", "B llm messages",
                                      lineterm=""))
    n_a = sum(1 for i in a.interactions if i.kind == "llm")
    n_b = sum(1 for i in b.interactions if i.kind == "llm")
    if not udiff:
        return [f"prompt: identical ({n_a} llm request(s))"], False
    return [*udiff, f"prompt: llm requests differ ({n_a} in A, {n_b} in B)"], True


def _final_answer(cassette: Cassette) -> str | None:
    for inter in reversed(cassette.interactions):
        if inter.kind == "llm" and inter.error is None:
            text = response_text(inter.response)
            if text is not None:
                return text
    return None


def render_diff(a_path: Path, a: Cassette, b_path: Path, b: Cassette,
                kind: str = "run") -> tuple[str, bool]:
    """The text of ``agenttape diff`` and whether anything differs."""
    lines = [f"--- A {display(a_path)} ({len(a.interactions)} interactions)",
             f"+++ B {display(b_path)} ({len(b.interactions)} interactions)"]
    differ = False
    sections = ("run", "prompt", "state", "output") if kind == "all" else (kind,)
    for section in sections:
        if kind == "all":
            lines.append(f"\n== {section} ==")
        if section == "run":
            out, d = _render_entries(align(a.interactions, b.interactions), "run")
        elif section == "prompt":
            out, d = _prompt_section(a, b)
        elif section == "state":
            def memory(c: Cassette) -> list[Interaction]:
                return [i for i in c.interactions if i.kind in MEMORY_KINDS]
            out, d = _render_entries(align(memory(a), memory(b), ("request", "response",
                                                                  "error")), "state")
        else:
            out, d = _render_entries(align(a.interactions, b.interactions, OUTPUT_FIELDS),
                                     "output")
            fa, fb = _final_answer(a), _final_answer(b)
            if fa != fb:
                d = True
                out.insert(0, "final answer:")
                from ..matchers import FieldDiff

                diff = FieldDiff("final answer", fa if fa is not None else "<missing>",
                                 fb if fb is not None else "<missing>")
                for n, line in enumerate(render_field_diff(diff, "  ")):
                    out.insert(1 + n, line)
        lines.extend(out)
        differ = differ or d
    return "\n".join(lines), differ


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("diff", parents=[common],
                       help="structured diff of two cassettes (exit 1 when they differ)",
                       description="Compare two cassettes: run = every interaction "
                       "(added / removed / changed fields), prompt = unified diff of the "
                       "llm messages, state = memory_read/memory_write interactions, "
                       "output = responses and the final answer. Exit 1 when the chosen "
                       "view differs, 0 when equal.")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    p.add_argument("--type", dest="diff_type", choices=TYPES, default="run",
                   help="what to compare (default: run)")
    p.set_defaults(func=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    a_path, a = load(args.a)
    b_path, b = load(args.b)
    text, differ = render_diff(a_path, a, b_path, b, args.diff_type)
    print(text)
    return 1 if differ else 0
