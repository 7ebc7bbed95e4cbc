"""Server-sent events: an incremental parser and the serialiser used on replay.

Parsing follows the WHATWG rules (``\\r\\n``, ``\\r`` or ``\\n`` line ends, ``:`` comments,
multi-line ``data``) so a recording holds exactly the events a client would see. In a
cassette an event is ``{event?, id?, retry?, data}`` with ``data`` JSON-decoded when it is a
JSON object or array, so reviewers read structure instead of escaped strings; anything else
(``[DONE]``, plain text, a bare number) stays the exact string that was sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

__all__ = ["SseEvent", "SseParser", "event_bytes", "serialize_events"]


@attrs.define(slots=True)
class SseEvent:
    """One dispatched event; ``data`` is the raw text (lines joined with ``\\n``)."""

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def to_record(self) -> dict[str, Any]:
        """The cassette form: field order chosen for reading, ``data`` decoded when JSON."""
        out: dict[str, Any] = {}
        if self.event is not None:
            out["event"] = self.event
        if self.id is not None:
            out["id"] = self.id
        if self.retry is not None:
            out["retry"] = self.retry
        out["data"] = decode_data(self.data)
        return out


def decode_data(text: str) -> Any:
    """JSON objects and arrays become structure; every other payload stays text.

    Only containers are decoded so that re-serialising gives back the same payload:
    ``"hi"`` (a JSON string) would otherwise come back as ``hi``.
    """
    if text[:1] not in ("{", "["):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, (dict, list)) else text


def encode_data(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class SseParser:
    """Feed bytes as they arrive; get back the events completed so far."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if self._pending_cr and chunk.startswith(b"\n"):
            # A "\r\n" split across two chunks: the "\r" already ended the line.
            chunk = chunk[1:]
        self._pending_cr = False
        self._buffer += chunk
        events: list[SseEvent] = []
        for line in self._lines():
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def finish(self) -> list[SseEvent]:
        """Flush a last event the server sent without its closing blank line."""
        events: list[SseEvent] = []
        if self._buffer:
            line, self._buffer = self._buffer, b""
            event = self._line(line)
            if event is not None:
                events.append(event)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    def _lines(self) -> Iterator[bytes]:
        buffer = self._buffer
        start = 0
        length = len(buffer)
        while start < length:
            cr = buffer.find(b"\r", start)
            lf = buffer.find(b"\n", start)
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                break
            end = min(ends)
            line = buffer[start:end]
            if buffer[end : end + 1] == b"\r":
                if end + 1 == length:
                    self._pending_cr = True
                    start = end + 1
                    yield line
                    break
                start = end + 2 if buffer[end + 1 : end + 2] == b"\n" else end + 1
            else:
                start = end + 1
            yield line
        self._buffer = buffer[start:]

    def _line(self, raw: bytes) -> SseEvent | None:
        if not raw:
            return self._dispatch()
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        data, event, id_, retry = self._data, self._event, self._id, self._retry
        self._data, self._event, self._retry = [], None, None
        # The id persists per the spec, but storing it once per event it was sent with
        # keeps replayed bytes equal to what was recorded.
        self._id = None
        if not data:
            return None
        return SseEvent("\n".join(data), event, id_, retry)


def parse_events(chunks: Iterable[bytes]) -> list[SseEvent]:
    parser = SseParser()
    events: list[SseEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    events.extend(parser.finish())
    return events


def event_bytes(event: Mapping[str, Any]) -> bytes:
    """Wire bytes of one cassette event (the inverse of :meth:`SseEvent.to_record`)."""
    parts: list[str] = []
    if event.get("event") is not None:
        parts.append(f"event: {event['event']}\n")
    if event.get("id") is not None:
        parts.append(f"id: {event['id']}\n")
    if event.get("retry") is not None:
        parts.append(f"retry: {event['retry']}\n")
    for line in encode_data(event.get("data", "")).split("\n"):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def serialize_events(events: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(event_bytes(event) for event in events)
