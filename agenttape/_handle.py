"""What a test sees of its cassette (``CassetteHandle``) and the assertions it can make.

Standard library only at import: the pytest plugin imports this module when pytest starts,
long before any test asks for a cassette.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._model import Interaction
    from .session import Session

__all__ = ["CassetteHandle", "llm_text", "render_sequence_diff"]

T = TypeVar("T")
Step = tuple[str, str, str]  # (kind, boundary, match_key)

_CONTEXT = 2  # unchanged rows kept around a change; longer unchanged runs are folded
_LONG = 60


class CassetteHandle:
    """The cassette of one marked test: what ran, what was served, and assertions on it.

    Every property reads the session's engine when accessed, so it reflects the run so far.
    """

    def __init__(self, session: Session, *, nodeid: str = "") -> None:
        self.session = session
        self._nodeid = nodeid

    def __repr__(self) -> str:
        return f"<CassetteHandle {str(self.path)!r} mode={self.mode!r}>"

    @property
    def path(self) -> Path:
        return self.session.path

    @property
    def mode(self) -> str:
        return self.session.mode

    @property
    def interactions(self) -> list[Interaction]:
        """Everything served this run (replayed and live), in order."""
        engine = self.session.engine
        return engine.timeline() if engine is not None else []

    @property
    def tool_calls(self) -> list[str]:
        """The tool and retrieval boundary names crossed this run, in order."""
        return [i.boundary or i.kind for i in self.interactions
                if i.kind in ("tool", "retrieval")]

    @property
    def final_output(self) -> Any:
        """The text of the run's last LLM answer, else the last interaction's response."""
        timeline = self.interactions
        for interaction in reversed(timeline):
            if interaction.kind == "llm":
                text = llm_text(interaction.response)
                if text is not None:
                    return text
        return timeline[-1].response if timeline else None

    # -- assertions ---------------------------------------------------------------------
    def assert_tool_calls(self, expected: Sequence[str]) -> None:
        """Fail unless the tool/retrieval calls of this run are exactly ``expected``, in order."""
        __tracebackhide__ = True
        actual = self.tool_calls
        wanted = list(expected)
        if actual == wanted:
            return
        rows, summary = render_sequence_diff(wanted, actual, str)
        raise AssertionError(
            f"tool calls differ from the expected ones: {summary}\n"
            "  (- expected but not called, + called but not expected, ~ called out of order;"
            " [expected -> actual position])\n"
            + "\n".join(rows)
            + f"\n  expected: {wanted!r}\n  actual:   {actual!r}"
        )

    def assert_final_output(self, expected: Any) -> None:
        """Fail unless :attr:`final_output` equals ``expected``."""
        __tracebackhide__ = True
        actual = self.final_output
        if actual == expected:
            return
        if actual is None and not self.interactions:
            raise AssertionError(
                f"final output is None: nothing crossed a boundary in this run "
                f"(cassette {self.path}, mode {self.mode!r}); expected {expected!r}"
            )
        lines = ["final output differs from the expected value",
                 f"  expected: {_short(expected)}", f"  actual:   {_short(actual)}"]
        if isinstance(expected, str) and isinstance(actual, str) and (
            "\n" in expected or "\n" in actual or max(len(expected), len(actual)) > _LONG
        ):
            import difflib

            diff = difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                        "expected", "actual", lineterm="", n=1)
            lines += ["  diff:", *("    " + line for line in diff)]
        raise AssertionError("\n".join(lines))

    def assert_snapshot(self) -> None:
        """Fail when this run's (kind, boundary, match_key) sequence drifts from the cassette.

        In modes that rewrite the cassette (``all``/``record``, ``once`` without a file) the
        run *is* the new snapshot, so there is nothing to compare and it passes.
        """
        __tracebackhide__ = True
        session, engine = self.session, self.session.engine
        if engine is None or session.cassette is None:
            raise AssertionError(f"{session!r} is not open; assert_snapshot() runs inside the test")
        if engine.writes_recordings and session.mode != "new_episodes":
            return
        recorded = [_step(i) for i in session.cassette.interactions]
        # Calls that found no recording raised UnmatchedInteractionError; code that caught
        # it carried on, so they are extra calls of this run (where they fell is not known).
        refused = [(e.kind, e.boundary or e.kind, session.matchers[0].key(e.request))
                   for e in engine.unmatched]
        actual = [_step(i) for i in engine.timeline()] + refused
        if recorded == actual:
            return
        rows, summary = render_sequence_diff(recorded, actual, _show_step)
        if refused:
            rows.append(f"  ({_plural(len(refused), 'call')} found no recording and raised "
                        "UnmatchedInteractionError, which the code under test caught; "
                        "listed last)")
        hint = f"pytest --agenttape-record {self._nodeid}" if self._nodeid else (
            "pytest --agenttape-record <this test>")
        raise AssertionError(
            f"interactions drifted from the cassette: {summary}\n"
            f"  cassette: {session.path} (mode {session.mode!r}; "
            f"{len(recorded)} recorded, {len(actual)} this run)\n"
            "  (- recorded but not called, + called but not recorded, ~ called out of order;"
            " [recorded -> this run position])\n"
            + "\n".join(rows)
            + f"\n  if the change is intended, re-record: {hint}"
        )


def _step(interaction: Interaction) -> Step:
    return (interaction.kind, interaction.boundary or interaction.kind, interaction.match_key)


def _show_step(step: Step) -> str:
    kind, boundary, key = step
    algo, _, digest = key.partition(":")
    shown = f"{algo}:{digest[:12]}" if digest else key
    return f"{kind:<12} {boundary:<24} {shown}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def render_sequence_diff(
    expected: Sequence[T], actual: Sequence[T], show: Callable[[T], str]
) -> tuple[list[str], str]:
    """Rows of a readable diff of two sequences, and a one-line summary of the changes.

    An item dropped in one place and added in another is one *reordered* item, not a
    missing one plus an extra one: that is how a person describes a swapped tool call.
    """
    import difflib

    matcher = difflib.SequenceMatcher(a=list(expected), b=list(actual), autojunk=False)
    opcodes = matcher.get_opcodes()
    removed = [i for tag, i1, i2, _, _ in opcodes if tag in ("delete", "replace")
               for i in range(i1, i2)]
    added = [j for tag, _, _, j1, j2 in opcodes if tag in ("insert", "replace")
             for j in range(j1, j2)]
    moved_to: dict[int, int] = {}  # expected position -> actual position
    moved_from: dict[int, int] = {}
    for j in added:
        for i in removed:
            if i not in moved_to and expected[i] == actual[j]:
                moved_to[i], moved_from[j] = j, i
                break

    rows: list[tuple[str, str, str]] = []  # (sign, position, text)
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            rows += [(" ", f"[{i} -> {j}]", show(expected[i]))
                     for i, j in zip(range(i1, i2), range(j1, j2), strict=True)]
            continue
        rows += [("-", f"[{i}]", show(expected[i]) + "   missing")
                 for i in range(i1, i2) if i not in moved_to]
        for j in range(j1, j2):
            if j in moved_from:
                rows.append(("~", f"[{moved_from[j]} -> {j}]", show(actual[j]) + "   reordered"))
            else:
                rows.append(("+", f"[{j}]", show(actual[j]) + "   extra"))

    missing = len(removed) - len(moved_to)
    extra = len(added) - len(moved_from)
    parts = [_plural(n, word) for n, word in ((missing, "missing call"), (extra, "extra call"),
                                              (len(moved_to), "reordered call")) if n]
    return _fold(rows), ", ".join(parts) or "no changes"


def _fold(rows: Iterable[tuple[str, str, str]]) -> list[str]:
    """Format rows, folding long runs of unchanged ones into a single ``...`` line."""
    items = list(rows)
    width = max((len(pos) for _, pos, _ in items), default=0)
    changed = [n for n, (sign, _, _) in enumerate(items) if sign != " "]
    hidden = [sign == " " and all(abs(n - c) > _CONTEXT for c in changed)
              for n, (sign, _, _) in enumerate(items)]
    out: list[str] = []
    n = 0
    while n < len(items):
        end = n
        while end < len(items) and hidden[end]:
            end += 1
        if end - n > 1:  # folding a single row would not make the listing shorter
            out.append(f"    ... {end - n} unchanged")
            n = end
            continue
        sign, pos, text = items[n]
        out.append(f"  {sign} {pos:<{width}}  {text}")
        n += 1
    return out


# -- the text of an LLM answer ------------------------------------------------------------
# Recorded `llm` responses are provider JSON bodies, or for streams a list of SSE events
# (``{"event": ..., "data": {...}}``); the shapes below are the wire formats, not SDK objects.


def llm_text(response: Any) -> str | None:
    """The answer text of a recorded LLM response (OpenAI, Anthropic, Gemini, Ollama)."""
    if isinstance(response, str):
        return response
    events = _stream_events(response)
    if events is not None:
        return _stream_text(events)
    if not isinstance(response, dict):
        return None
    if isinstance(response.get("json"), dict) and "status_code" in response:
        return llm_text(response["json"])  # an HTTP-shaped record of an LLM call
    return _body_text(response)


def _stream_events(response: Any) -> list[Any] | None:
    if isinstance(response, list):
        return response
    if isinstance(response, dict):
        for key in ("events", "stream", "chunks"):
            if isinstance(response.get(key), list):
                return list(response[key])
    return None


def _joined(parts: Iterable[Any]) -> str | None:
    texts = [p for p in parts if isinstance(p, str)]
    return "".join(texts) if texts else None


def _body_text(body: dict[str, Any]) -> str | None:
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        first = choices[0]  # OpenAI chat completions (message) and legacy completions (text)
        message = first.get("message")
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, list):
                return _joined(p.get("text") for p in content if isinstance(p, dict))
            return content if isinstance(content, str) else None
        return first.get("text") if isinstance(first.get("text"), str) else None
    output = body.get("output")
    if isinstance(output, list):  # OpenAI responses: message items with output_text parts
        return _joined(part.get("text") for item in output if isinstance(item, dict)
                       and item.get("type") == "message"
                       for part in item.get("content") or [] if isinstance(part, dict)
                       and part.get("type") == "output_text")
    content = body.get("content")
    if isinstance(content, list):  # Anthropic messages: text blocks
        return _joined(b.get("text") for b in content
                       if isinstance(b, dict) and b.get("type") == "text")
    candidates = body.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        parts = (candidates[0].get("content") or {}).get("parts") or []  # Gemini
        return _joined(p.get("text") for p in parts if isinstance(p, dict))
    message = body.get("message")
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        return str(message["content"])  # Ollama chat
    for key in ("output_text", "response", "text", "content"):
        if isinstance(body.get(key), str):
            return str(body[key])
    return None


def _stream_text(events: list[Any]) -> str | None:
    pieces: list[str] = []
    for event in events:
        data = event.get("data", event) if isinstance(event, dict) else event
        if not isinstance(data, dict):
            continue  # "[DONE]" and other non-JSON payloads
        kind = data.get("type")
        if kind == "response.completed" and isinstance(data.get("response"), dict):
            return _body_text(data["response"])  # carries the whole answer
        if kind == "response.output_text.delta" and isinstance(data.get("delta"), str):
            pieces.append(data["delta"])
        elif kind == "content_block_delta" and isinstance(data.get("delta"), dict):
            text = data["delta"].get("text")  # Anthropic text_delta
            if isinstance(text, str):
                pieces.append(text)
        elif isinstance(data.get("choices"), list):
            for choice in data["choices"]:  # OpenAI chat chunks; the first choice only
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    delta = choice.get("delta") or {}
                    if isinstance(delta.get("content"), str):
                        pieces.append(delta["content"])
        elif "candidates" in data or "message" in data or "response" in data:
            text = _body_text(data)  # Gemini and Ollama stream whole-shaped partial bodies
            if text is not None and kind is None:
                pieces.append(text)
    return "".join(pieces) if pieces else None
