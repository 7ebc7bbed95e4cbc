"""Decide, per boundary crossing, whether to replay, run live, or pass through.

The engine is request -> decision: it knows nothing about httpx, requests, files or pytest.
Recordings are indexed once, lazily, by ``(kind, boundary, key)`` for every matcher of the
chain, so a lookup costs the same whatever the cassette size.
"""

from __future__ import annotations

import contextvars
import fnmatch
import threading
import time as _time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from ._diagnostics import render_unmatched
from ._model import Interaction
from .errors import UnmatchedInteractionError
from .matchers import Matcher, canonical_json, content_key, field_diffs, strip_volatile

__all__ = ["Decision", "Engine", "Pending", "Span", "inside_boundary", "open_span",
           "exported", "rebuild_error"]

Action = Literal["replay", "live", "passthrough"]
Key = tuple[str, str, str]

# Set while a boundary's real body runs: nested crossings pass through unrecorded, so the
# outermost boundary is the one that is recorded and replayed.
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("agenttape_inside", default=False)


def inside_boundary() -> bool:
    return _inside.get()


class Span:
    """Timeline positions of the crossings started in this context while the span is open.

    Framework callbacks open one per run, so at the run's end they can tell whether a
    transport (or another callback) already recorded the same call inside it.
    """

    __slots__ = ("open", "positions")

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.open = True

    def close(self) -> None:
        self.open = False
        # Frameworks may end a run in a copy of the context it began in (LangChain runs async
        # end events in a shielded task), where resetting a token would fail: closed spans
        # are skipped, and pruned by whichever context next opens or closes one.
        _spans.set(tuple(s for s in _spans.get() if s.open))


_spans: contextvars.ContextVar[tuple[Span, ...]] = contextvars.ContextVar(
    "agenttape_spans", default=()
)


def open_span() -> Span:
    span = Span()
    _spans.set((*(s for s in _spans.get() if s.open), span))
    return span


def _note(position: int) -> None:
    for span in _spans.get():
        if span.open:
            span.positions.append(position)


class Pending:
    """A live crossing whose outcome is not known yet (a running tool, an open stream)."""

    __slots__ = ("_done", "annotations", "boundary", "engine", "kind", "match_key",
                 "observed_keys", "position", "records", "request", "started", "tags")

    def __init__(self, engine: Engine, position: int, kind: str, boundary: str,
                 request: dict[str, Any], match_key: str, tags: list[str]) -> None:
        self.engine = engine
        self.position = position
        self.kind = kind
        self.boundary = boundary
        self.request = request
        self.match_key = match_key
        self.tags = tags
        self.started = _time.perf_counter()
        self._done = False
        # Set for a crossing a framework callback reported (Engine.begin_observed): its
        # matcher keys, looked up when it ends; `records` then says whether it was new.
        self.observed_keys: list[str] | None = None
        self.records = True
        # Metadata added by Engine.claim while the crossing was still open.
        self.annotations: dict[str, Any] = {}

    def finish(
        self,
        *,
        response: Any = None,
        error: dict[str, Any] | None = None,
        usage: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        fresh: bool = False,
    ) -> Interaction:
        """Store the outcome. Later calls are ignored (``close()`` may run twice).

        ``fresh``: ``response`` was built for this call and nothing else holds it, so when
        redaction provably changes nothing it is stored as it is rather than copied.
        """
        latency = round((_time.perf_counter() - self.started) * 1000, 3)
        redact = self.engine.redact
        if error is not None:
            response = None
        elif metadata and metadata.get("stream"):
            # A stream's pieces are redacted together: a key may be cut across two events.
            response = self.engine.redact_stream(response)
        elif not (fresh and self.engine.redaction_keeps(response)):
            response = redact(response)
        interaction = Interaction(
            index=self.position,
            kind=self.kind,
            request=self.request,
            response=response,
            error=redact(error) if error is not None else None,
            match_key=self.match_key,
            latency_ms=latency,
            usage=usage,
            tags=self.tags,
            boundary=self.boundary,
            metadata={**(redact(metadata) if metadata else {}), **self.annotations},
        )
        self.engine._complete(self, interaction)
        return interaction


@attrs.define(slots=True)
class Decision:
    action: Action
    interaction: Interaction | None = None
    pending: Pending | None = None


def _token_matches(tokens: Sequence[str], kind: str, boundary: str) -> bool:
    for token in tokens:
        if token in ("*", kind, boundary, f"{kind}:{boundary}"):
            return True
        if any(ch in token for ch in "*?[") and (
            fnmatch.fnmatchcase(boundary, token)
            or fnmatch.fnmatchcase(kind, token)
            or fnmatch.fnmatchcase(f"{kind}:{boundary}", token)
        ):
            return True
    return False


class Engine:
    """Replay/record decisions for one session. Thread-safe."""

    def __init__(
        self,
        recordings: Sequence[Interaction],
        *,
        mode: str,
        matchers: Sequence[Matcher],
        live: Iterable[str] = (),
        frozen: Iterable[str] = (),
        allow_playback_repeats: bool = False,
        cassette: Path | None = None,
        redact: Callable[[Any], Any] | None = None,
        volatile_fields: Iterable[str] = (),
        file_existed: bool = True,
        unchanged_by_redaction: Callable[[str], bool] | None = None,
        redact_stream: Callable[[Any], Any] | None = None,
    ) -> None:
        self.recordings = list(recordings)
        self.mode = mode
        self.matchers = list(matchers)
        # Looked up once: each crossing computes a key from its canonical JSON text.
        self._from_text: list[Callable[[dict[str, Any], str], str] | None] = [
            getattr(m.key, "from_text", None) for m in self.matchers]
        self.live = tuple(live)
        self.frozen = tuple(frozen)
        self.allow_playback_repeats = allow_playback_repeats
        self.cassette = cassette
        self.redact: Callable[[Any], Any] = redact or (lambda value: value)
        self.redact_stream: Callable[[Any], Any] = redact_stream or self.redact
        # Given a request's canonical JSON, whether `redact` would leave it as it is: then a
        # replayed request is matched without copying it (see Redactor.unchanged_json).
        self._unchanged: Callable[[str], bool] | None = (
            unchanged_by_redaction if redact is not None else (lambda _text: True))
        self._volatile = frozenset(f.lower() for f in volatile_fields)
        if mode in ("all", "record") or (mode == "once" and not file_existed):
            self._default: Literal["replay", "live", "either"] = "live"
        elif mode == "new_episodes":
            self._default = "either"
        else:
            self._default = "replay"
        self._lock = threading.Lock()
        self._played = [False] * len(self.recordings)
        self._index: list[dict[Key, deque[int]]] | None = None
        self._trusted = False  # whether _index[0] holds stored keys (see _build_index)
        self._last: list[dict[Key, int]] = [{} for _ in self.matchers]
        # Everything served this session, in start order: (interaction or None while pending).
        self._timeline: list[Interaction | None] = []
        self._pending: dict[int, Pending] = {}
        # Position -> the callback crossing (its position) that claimed it, see claim().
        self._claimed: dict[int, int] = {}
        self.new_positions: list[int] = []
        self.replayed = 0
        # Raised unmatched errors, kept so the session can surface one that an SDK swallowed.
        self.unmatched: list[UnmatchedInteractionError] = []
        self.live_count = 0
        self.tokens_saved = 0

    # -- public API ---------------------------------------------------------------------
    @property
    def writes_recordings(self) -> bool:
        """Whether live crossings belong in the cassette itself (vs. a derived file)."""
        return self._default != "replay"

    def redaction_keeps(self, value: Any) -> bool:
        """Whether redacting ``value`` (a response) would leave it as it is: one C-encoded
        JSON text and a few substring tests, where redaction walks the whole value."""
        if self._unchanged is None:
            return False
        if isinstance(value, dict) and "body_b64" in value:
            return False  # binary: redaction searches the decoded bytes (maybe a Blob)
        try:
            return self._unchanged(canonical_json(value))
        except (RecursionError, ValueError):
            return False  # let redaction itself report what it makes of the value

    def decide(self, kind: str, boundary: str, request: dict[str, Any], *,
               tags: Sequence[str] = ()) -> Decision:
        """Replay a recording, or hand back a :class:`Pending` for a live crossing."""
        if _inside.get():
            return Decision("passthrough")
        if self.frozen:
            strategy = "replay" if _token_matches(self.frozen, kind, boundary) else "live"
        elif self.live and _token_matches(self.live, kind, boundary):
            strategy = "live"
        else:
            strategy = self._default
        # Matching needs the request as it was recorded, i.e. redacted. Most requests hold
        # nothing to redact, which a look at their canonical JSON proves; the keys then come
        # from that same text, and a live crossing records the request as it is (every
        # caller hands over a request of its own making: a bound call, a canonical HTTP
        # request). Otherwise the redacted copy is matched and recorded.
        text: str | None = None
        if self._unchanged is not None:
            text = canonical_json(request)
            if not self._unchanged(text):
                text = None
        if text is None:
            request = self.redact(request)
        with self._lock:
            key: str | None = None
            found: Interaction | None = None
            from_text = self._from_text[0]
            if strategy != "live" and text is not None and from_text is not None and (
                    self._trusted):
                # The usual replay, inline: the recording stored under this request's key
                # is the very request recorded. Anything else takes the general path.
                key = from_text(request, text)
                queue = self._index[0].get((kind, boundary, key)) if self._index else None
                if queue:
                    played = self._played
                    while queue and played[queue[0]]:
                        queue.popleft()
                    if queue and self.recordings[queue[0]].request == request:
                        pos = queue.popleft()
                        played[pos] = True
                        if self.allow_playback_repeats:
                            self._last[0][(kind, boundary, key)] = pos
                        found = self.recordings[pos]
            keys: _Keys | None = None
            if strategy != "live":
                if found is None:
                    keys = _Keys(self, request, text, key)
                    found = self._take(kind, boundary, keys)
                if found is not None:
                    position = len(self._timeline)
                    if _spans.get():
                        _note(position)
                    self._timeline.append(found)
                    self.replayed += 1
                    if found.usage:
                        self.tokens_saved += _tokens(found.usage)
                    return Decision("replay", found)
                if strategy == "replay":
                    assert keys is not None
                    error = self._unmatched(kind, boundary, request, keys.all())
                    self.unmatched.append(error)
                    raise error
            if keys is None:
                keys = _Keys(self, request, text, key)
            position = len(self._timeline)
            self._timeline.append(None)
            pending = Pending(self, position, kind, boundary, request, keys[0], list(tags))
            self._pending[position] = pending
            self.live_count += 1
        _note(position)
        return Decision("live", pending=pending)

    def call(self, kind: str, boundary: str, request: dict[str, Any],
             executor: Callable[[], Any], *, usage: dict[str, Any] | None = None,
             tags: Sequence[str] = (), to_plain: Callable[[Any], Any] | None = None,
             raise_error: Callable[[dict[str, Any]], BaseException] | None = None,
             restore: Callable[[Any], Any] | None = None) -> Any:
        """Run one sync crossing: replay its value, or run ``executor`` and record it."""
        decision = self.decide(kind, boundary, request, tags=tags)
        if decision.action == "passthrough":
            return executor()
        if decision.interaction is not None:
            value = _replayed_value(decision.interaction, raise_error)
            return restore(value) if restore else value
        assert decision.pending is not None
        token = _inside.set(True)
        try:
            value = executor()
        except BaseException as exc:
            decision.pending.finish(error=_error_dict(exc), usage=usage)
            raise
        finally:
            _inside.reset(token)
        decision.pending.finish(response=to_plain(value) if to_plain else value, usage=usage,
                                 fresh=to_plain is not None)
        return value

    async def acall(self, kind: str, boundary: str, request: dict[str, Any],
                    executor: Callable[[], Awaitable[Any]], *,
                    usage: dict[str, Any] | None = None, tags: Sequence[str] = (),
                    to_plain: Callable[[Any], Any] | None = None,
                    raise_error: Callable[[dict[str, Any]], BaseException] | None = None,
                    restore: Callable[[Any], Any] | None = None) -> Any:
        decision = self.decide(kind, boundary, request, tags=tags)
        if decision.action == "passthrough":
            return await executor()
        if decision.interaction is not None:
            value = _replayed_value(decision.interaction, raise_error)
            return restore(value) if restore else value
        assert decision.pending is not None
        token = _inside.set(True)
        try:
            value = await executor()
        except BaseException as exc:
            decision.pending.finish(error=_error_dict(exc), usage=usage)
            raise
        finally:
            _inside.reset(token)
        decision.pending.finish(response=to_plain(value) if to_plain else value, usage=usage,
                                 fresh=to_plain is not None)
        return value

    def timeline(self, *, copies: bool = True) -> list[Interaction]:
        """Everything served so far, in start order, indexed from 0.

        Copies, unless ``copies=False``: then an interaction whose index is already its
        place is the engine's own (the cassette writer only reads them, and a copy runs
        every validator again, per interaction).
        """
        with self._lock:
            items = [i for i in self._timeline if i is not None]
        return [item if not copies and item.index == n else attrs.evolve(item, index=n)
                for n, item in enumerate(items)]

    def new_interactions(self) -> list[Interaction]:
        with self._lock:
            return [item for p in self.new_positions
                    if (item := self._timeline[p]) is not None]

    def close_pending(self) -> None:
        """Finish crossings still open at session exit (a stream never closed)."""
        for pending in list(self._pending.values()):
            pending.finish(metadata={"incomplete": True})

    def observe(self, interaction: Interaction) -> None:
        """Add an interaction seen but not served (callback objects during replay)."""
        with self._lock:
            self._timeline.append(interaction)

    # -- crossings seen by framework callbacks (agenttape.AgentTape) ----------------------
    def begin_observed(self, kind: str, boundary: str, request: dict[str, Any], *,
                       tags: Sequence[str] = ()) -> Pending:
        """Open a crossing a framework reported: never served, only recorded.

        It takes its timeline slot now (start order, like every crossing). When it ends, a
        recording it matches is marked played; it is recorded as new only in modes that
        write the cassette and, in ``new_episodes``, only when nothing matched. Matching
        waits for the end so that a boundary running inside it (``@agenttape.tool`` on the
        tool's function, a transport) takes its own recording first.
        """
        request = self.redact(request)
        keys = [m.key(request) for m in self.matchers]
        with self._lock:
            position = len(self._timeline)
            self._timeline.append(None)
            pending = Pending(self, position, kind, boundary, request, keys[0], list(tags))
            pending.observed_keys = keys
            self._pending[position] = pending
        _note(position)
        return pending

    def discard(self, pending: Pending) -> None:
        """Drop an open crossing without a trace; a later ``finish`` is ignored."""
        with self._lock:
            self._pending.pop(pending.position, None)

    def claim(self, span: Span, kinds: Collection[str], annotation: dict[str, Any], *,
              owner: int, boundary: str | None = None, match_key: str | None = None) -> bool:
        """Whether a crossing of ``kinds`` (and ``boundary``, ``match_key``) started inside
        ``span`` already stands for the run that opened it; the first unclaimed one gets
        ``annotation`` merged into its metadata and is claimed for ``owner`` (that run's
        position).

        One claimed by a run that itself started inside ``span`` counts too: the same call
        reported twice (LlamaIndex's two event systems nest).
        """
        annotation = self.redact(annotation)
        with self._lock:
            inner = set(span.positions)
            for position in span.positions:
                item, pending = self._timeline[position], self._pending.get(position)
                if item is not None:
                    kind, name, key = item.kind, item.boundary or item.kind, item.match_key
                elif pending is not None:
                    kind, name, key = pending.kind, pending.boundary, pending.match_key
                else:
                    continue  # a discarded slot
                if kind not in kinds or (boundary is not None and name != boundary) or (
                        match_key is not None and key != match_key):
                    continue
                claimer = self._claimed.get(position)
                if claimer is not None:
                    if claimer in inner:
                        return True
                    continue
                self._claimed[position] = owner
                if item is not None:
                    self._timeline[position] = attrs.evolve(
                        item, metadata={**item.metadata, **annotation})
                else:
                    assert pending is not None
                    pending.annotations.update(annotation)
                return True
        return False

    # -- internals ----------------------------------------------------------------------
    def _complete(self, pending: Pending, interaction: Interaction) -> None:
        with self._lock:
            if self._pending.pop(pending.position, None) is None:
                return
            if pending.observed_keys is not None:
                found = (self._take(pending.kind, pending.boundary, pending.observed_keys)
                         if self._default != "live" else None)
                pending.records = found is None and self.writes_recordings
            self._timeline[pending.position] = interaction
            if pending.records:
                self.new_positions.append(pending.position)

    def _build_index(self, *, trust_stored: bool) -> list[dict[Key, deque[int]]]:
        """Recordings by key, per matcher. With ``trust_stored``, the first matcher's keys
        are the ``match_key`` each recording was stored with (computing them all would cost
        as much as replaying them all); a hit is then verified, see :meth:`_verified`."""
        index: list[dict[Key, deque[int]]] = [{} for _ in self.matchers]
        self._trusted = trust_stored and content_key(self.matchers[0])
        for pos, rec in enumerate(self.recordings):
            if self._played[pos]:
                continue
            boundary = rec.boundary or rec.kind
            for m, matcher in enumerate(self.matchers):
                stored = m == 0 and self._trusted and rec.match_key
                key = (rec.kind, boundary, stored or matcher.key(rec.request))
                index[m].setdefault(key, deque()).append(pos)
        return index

    def _verified(self, pos: int, keys: _Keys | list[str]) -> bool:
        """Whether a recording found by its stored key really has the first matcher's key.

        A stored key is stale when the matcher settings changed since recording or the
        request was edited by hand. An incoming request equal to the recorded one has the
        same content key as it (both keys hash the same JSON, less the same fields), so
        only a different one costs a key computation.
        """
        rec = self.recordings[pos]
        if isinstance(keys, _Keys) and keys.request == rec.request:
            return True
        return self.matchers[0].key(rec.request) == keys[0]

    def _take(self, kind: str, boundary: str, keys: _Keys | list[str]) -> Interaction | None:
        if self._index is None:
            self._index = self._build_index(trust_stored=True)
        found = self._find(kind, boundary, keys)
        if found is None and self._trusted:
            # A stale stored key, or one of them hid the recording that matches: index
            # every recording by its computed keys and look again.
            self._index = self._build_index(trust_stored=False)
            found = self._find(kind, boundary, keys)
        if found is not None:
            return found
        if self.allow_playback_repeats:
            for m in range(len(self.matchers)):
                last = self._last[m].get((kind, boundary, keys[m]))
                if last is not None:
                    return self.recordings[last]
        return None

    def _find(self, kind: str, boundary: str, keys: _Keys | list[str]) -> Interaction | None:
        """The first unplayed recording under the first key of the chain that has one.
        While stored keys are trusted, only the first matcher is tried, and None also
        means a stored key proved stale (``_take`` then re-indexes and asks again)."""
        index, played, trusted = self._index, self._played, self._trusted
        if index is None:
            return None
        for m, by_key in enumerate(index):
            full = (kind, boundary, keys[m])
            queue = by_key.get(full)
            while queue:
                pos = queue[0]
                if played[pos]:
                    queue.popleft()
                    continue
                if m == 0 and trusted and not (
                        # The usual case, inline: the very request that was recorded.
                        (type(keys) is _Keys and keys.request == self.recordings[pos].request)
                        or self._verified(pos, keys)):
                    return None
                queue.popleft()
                played[pos] = True
                if self.allow_playback_repeats:
                    self._last[m][full] = pos
                return self.recordings[pos]
            if trusted:
                return None  # the rest of the chain only after re-indexing
        return None

    def _unmatched(self, kind: str, boundary: str, request: dict[str, Any],
                   keys: list[str]) -> UnmatchedInteractionError:
        same = [(pos, r) for pos, r in enumerate(self.recordings)
                if r.kind == kind and (r.boundary or r.kind) == boundary]
        shown = request
        volatile = any(m.name == "ignore_volatile" for m in self.matchers)

        def view(value: dict[str, Any]) -> Any:
            return strip_volatile(value, self._volatile) if volatile else value

        closest: Interaction | None = None
        diffs: list[Any] = []
        best: tuple[int, int] | None = None
        for pos, rec in same:
            candidate = field_diffs(view(rec.request), view(request))
            score = (len(candidate), 1 if self._played[pos] else 0)
            if best is None or score < best:
                best, closest, diffs = score, rec, candidate
        unplayed = sum(1 for pos, _ in same if not self._played[pos])
        message = render_unmatched(
            kind=kind, boundary=boundary, request=shown, cassette=self.cassette,
            mode=self.mode, closest=closest, diffs=diffs, unplayed=unplayed,
            recorded=len(same),
        )
        return UnmatchedInteractionError(
            message, kind=kind, boundary=boundary, request=shown, closest=closest,
            field_diffs=diffs, cassette=self.cassette, mode=self.mode, unplayed=unplayed,
        )


class _Keys:
    """One crossing's match keys, each computed on first use: the first matcher of the
    chain usually finds the recording, so the others never run."""

    __slots__ = ("_engine", "_keys", "_redacted", "_text", "request")

    def __init__(self, engine: Engine, request: dict[str, Any], text: str | None,
                 first: str | None = None) -> None:
        self._engine = engine
        self.request = request
        # Not None: `request` is unredacted, but redaction would not change it, and this
        # is its canonical JSON.
        self._text = text
        self._redacted: dict[str, Any] | None = None if text is not None else request
        self._keys: list[str | None] = [None] * len(engine.matchers)
        self._keys[0] = first  # the first matcher's key, when already computed

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, m: int) -> str:
        key = self._keys[m]
        if key is None:
            from_text = self._engine._from_text[m]
            if self._text is not None and from_text is not None:
                key = from_text(self.request, self._text)
            else:
                # A user's key function gets the redacted copy, as it always does.
                key = self._engine.matchers[m].key(self.redacted())
            self._keys[m] = key
        return key

    def redacted(self) -> dict[str, Any]:
        if self._redacted is None:
            self._redacted = self._engine.redact(self.request)
        return self._redacted

    def all(self) -> list[str]:
        return [self[m] for m in range(len(self))]


def _tokens(usage: dict[str, Any] | None) -> int:
    if not usage:
        return 0
    total = usage.get("total_tokens")
    if isinstance(total, int):
        return total
    parts = [usage.get("input_tokens"), usage.get("output_tokens")]
    return sum(p for p in parts if isinstance(p, int))


def _error_dict(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__qualname__, "module": type(exc).__module__,
            "message": str(exc)}


def _replayed_value(interaction: Interaction,
                    raise_error: Callable[[dict[str, Any]], BaseException] | None) -> Any:
    if interaction.error is not None:
        raise (raise_error or rebuild_error)(interaction.error)
    return interaction.response


def rebuild_error(error: dict[str, Any]) -> BaseException:
    """The recorded exception, rebuilt without ever importing a module named in a cassette.

    The original type is used when it is a builtin or its module is already imported and
    it can be built from the message; otherwise a ``RuntimeError`` names it. Only
    ``Exception`` subclasses are rebuilt: a cassette must not be able to stop a test run
    (``KeyboardInterrupt``, ``SystemExit``) or cancel the task that replays it.
    """
    import builtins
    import sys

    type_name = str(error.get("type", "Exception"))
    module_name = str(error.get("module", "builtins"))
    message = str(error.get("message", ""))
    module = builtins if module_name == "builtins" else sys.modules.get(module_name)
    cls = exported(module, type_name)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(message)
        except Exception:
            pass
    qualified = type_name if module_name == "builtins" else f"{module_name}.{type_name}"
    return RuntimeError(f"replayed {qualified}: {message}")


def exported(namespace: Any, dotted: str) -> Any:
    """``namespace.a.b`` read from ``__dict__`` alone, or None.

    Names come from cassettes, which may be hostile: ``getattr`` would run a module's
    ``__getattr__`` (lazy imports: ``agenttape.requests_session`` imports requests) or a
    class's descriptors, so only what is already defined is ever looked at.
    """
    value = namespace
    for part in dotted.split("."):
        try:
            value = vars(value).get(part)
        except TypeError:  # no __dict__: not a module or class
            return None
        if value is None:
            return None
    return value
