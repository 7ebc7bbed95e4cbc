"""The SSE parser and serialiser: what a cassette stores is what a client would have seen."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agenttape.transports.sse import (
    SseEvent,
    SseParser,
    decode_data,
    parse_events,
    serialize_events,
)


def _records(chunks: list[bytes]) -> list[dict[str, Any]]:
    return [event.to_record() for event in parse_events(chunks)]


def test_openai_style_stream() -> None:
    wire = b'data: {"a":1}\n\ndata: {"b":[2]}\n\ndata: [DONE]\n\n'
    assert _records([wire]) == [{"data": {"a": 1}}, {"data": {"b": [2]}}, {"data": "[DONE]"}]


def test_named_events_ids_retry_and_comments() -> None:
    wire = (b": keep-alive comment\n"
            b"event: message_start\nid: 7\nretry: 1500\ndata: {\"type\":\"x\"}\n\n"
            b"event: ping\ndata: {}\n\n")
    assert _records([wire]) == [
        {"event": "message_start", "id": "7", "retry": 1500, "data": {"type": "x"}},
        {"event": "ping", "data": {}},
    ]


def test_multiline_data_and_line_endings() -> None:
    for newline in (b"\n", b"\r\n", b"\r"):
        wire = newline.join([b"data: first", b"data: second", b"", b"data:x", b"", b""])
        assert _records([wire]) == [{"data": "first\nsecond"}, {"data": "x"}]


def test_crlf_split_between_chunks() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r") == [SseEvent("a")]
    assert parser.feed(b"\ndata: b\r\n\r\n") == [SseEvent("b")]


def test_events_arrive_as_soon_as_they_are_complete() -> None:
    parser = SseParser()
    assert parser.feed(b"event: tick\nda") == []
    assert parser.feed(b"ta: 1\n") == []
    assert parser.feed(b"\n") == [SseEvent("1", "tick")]


def test_unterminated_last_event_is_flushed_on_finish() -> None:
    parser = SseParser()
    assert parser.feed(b"data: tail") == []
    assert parser.finish() == [SseEvent("tail")]


def test_event_without_data_is_not_dispatched() -> None:
    assert _records([b"event: lonely\n\n"]) == []


def test_only_json_containers_are_decoded() -> None:
    assert decode_data('{"a": 1}') == {"a": 1}
    assert decode_data("[1, 2]") == [1, 2]
    # Re-serialising a decoded "hi" would drop its quotes: strings stay as sent.
    assert decode_data('"hi"') == '"hi"'
    assert decode_data("42") == "42"
    assert decode_data("[DONE]") == "[DONE]"
    assert decode_data("{not json") == "{not json"


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                       blacklist_characters="\r\n\0"), max_size=20)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_event = st.fixed_dictionaries(
    {"data": st.one_of(st.dictionaries(_text, _json, max_size=3), st.lists(_json, max_size=3),
                       st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                                      blacklist_characters="\r\0"),
                               min_size=1, max_size=30)
                       .filter(lambda s: decode_data(s) == s and not s.endswith("\n")))},
    optional={"event": _text.filter(lambda s: s != "" and s == s.strip()),
              "id": _text.filter(lambda s: s == s.lstrip()),
              "retry": st.integers(min_value=0, max_value=10**6)},
)


@given(events=st.lists(_event, max_size=6), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_serialise_then_parse_round_trips(events: list[dict[str, Any]], cuts: list[int]) -> None:
    wire = serialize_events(events)
    points = sorted({c % (len(wire) + 1) for c in cuts})
    chunks = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    expected = [{k: e[k] for k in ("event", "id", "retry", "data") if k in e} for e in events]
    assert _records(chunks) == expected
