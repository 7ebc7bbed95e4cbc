"""Matchers: keys, volatile fields, fallback chains, custom matchers, field diffs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import agenttape
from agenttape.matchers import field_diffs, hash_key, resolve_matchers


def llm(messages: list[dict[str, Any]], **extra: Any) -> Any:
    request = {"endpoint": "chat.completions", "model": "m", "messages": messages, **extra}
    return agenttape.record_call(
        "llm", request, lambda: {"answer": messages[-1]["content"]}, boundary="openai"
    )


def test_keys_are_sha256_and_independent_of_dict_order() -> None:
    key = hash_key({"b": 1, "a": [1, {"y": 2, "x": 1}]})
    assert key.startswith("sha256:") and len(key) == 7 + 64
    assert key == hash_key({"a": [1, {"x": 1, "y": 2}], "b": 1})


def test_ignore_volatile_drops_fields_at_any_depth_case_insensitively() -> None:
    [matcher] = resolve_matchers(["ignore_volatile"], ["timestamp", "Request_ID"])
    a = {"x": 1, "Timestamp": 5, "nested": [{"request_id": "a", "y": 2}]}
    b = {"x": 1, "timestamp": 9, "nested": [{"REQUEST_ID": "b", "y": 2}]}
    assert matcher.key(a) == matcher.key(b)
    assert matcher.key(a) != matcher.key({**a, "x": 2})


def test_a_tool_parameter_named_like_a_volatile_field_still_matters() -> None:
    [matcher] = resolve_matchers(["ignore_volatile"], ["date"])
    one = {"name": "book", "args": {"date": "2026-01-01", "meta": {"date": 1}}}
    two = {"name": "book", "args": {"date": "2026-01-02", "meta": {"date": 2}}}
    assert matcher.key(one) != matcher.key(two)
    assert matcher.key(one) == matcher.key({**one, "args": {**one["args"], "meta": {"date": 3}}})


def test_volatile_fields_are_ignored_in_replay() -> None:
    with agenttape.use_cassette("vol", record=True):
        llm([{"role": "user", "content": "hi"}], timestamp=1)
    with agenttape.use_cassette("vol"):
        assert llm([{"role": "user", "content": "hi"}], timestamp=2) == {"answer": "hi"}


def test_exact_matcher_sees_volatile_fields() -> None:
    with agenttape.use_cassette("exact", record=True, matchers=["exact"]):
        llm([{"role": "user", "content": "hi"}], timestamp=1)
    with agenttape.use_cassette("exact", matchers=["exact"]), pytest.raises(
        agenttape.UnmatchedInteractionError
    ) as info:
        llm([{"role": "user", "content": "hi"}], timestamp=2)
    assert [(d.path, d.expected, d.received) for d in info.value.field_diffs] == [
        ("timestamp", 1, 2)
    ]


@pytest.mark.parametrize("name", ["ordered", "sequential"])
def test_ordered_matcher_ignores_content(name: str) -> None:
    with agenttape.use_cassette("ord", record=True):
        llm([{"role": "user", "content": "one"}])
        llm([{"role": "user", "content": "two"}])
    with agenttape.use_cassette("ord", matchers=[name]):
        assert llm([{"role": "user", "content": "changed"}]) == {"answer": "one"}
        assert llm([{"role": "user", "content": "changed"}]) == {"answer": "two"}


def test_fallback_chain_first_matcher_with_an_unplayed_recording_wins() -> None:
    with agenttape.use_cassette("chain", record=True):
        llm([{"role": "user", "content": "one"}])
        llm([{"role": "user", "content": "two"}])
    with agenttape.use_cassette("chain", matchers=["ignore_volatile", "ordered"]):
        assert llm([{"role": "user", "content": "two"}]) == {"answer": "two"}
        # no content match left for "three": the ordered fallback serves the next unplayed
        assert llm([{"role": "user", "content": "three"}]) == {"answer": "one"}


def test_custom_matcher_instances_and_callables() -> None:
    by_model = agenttape.Matcher("by_model", lambda request: str(request.get("model")))

    def by_last_word(request: dict[str, Any]) -> str:
        return str(request["messages"][-1]["content"]).split()[-1]

    with agenttape.use_cassette("custom", record=True):
        llm([{"role": "user", "content": "say hello"}])
    with agenttape.use_cassette("custom", matchers=[by_model]):
        assert llm([{"role": "user", "content": "other"}]) == {"answer": "say hello"}
    with agenttape.use_cassette("custom", matchers=[by_last_word]):
        assert llm([{"role": "user", "content": "please hello"}]) == {"answer": "say hello"}


def test_default_matchers_from_config() -> None:
    Path("agenttape.toml").write_text('default_matchers = ["exact"]\n')
    with agenttape.use_cassette("cfg", record=True):
        llm([{"role": "user", "content": "hi"}], timestamp=1)
    with agenttape.use_cassette("cfg"), pytest.raises(agenttape.UnmatchedInteractionError):
        llm([{"role": "user", "content": "hi"}], timestamp=2)


def test_unknown_matcher_names_list_the_valid_ones() -> None:
    with pytest.raises(agenttape.ConfigError) as info:
        resolve_matchers(["fuzzy"], [])
    assert "ignore_volatile, exact, ordered, sequential" in str(info.value)


def test_field_diffs_paths() -> None:
    diffs = field_diffs(
        {"messages": [{"content": "a"}, {"content": "b"}], "n": 1},
        {"messages": [{"content": "a"}, {"content": "c"}, {"content": "d"}], "n": 1},
    )
    assert [(d.path, d.expected, d.received) for d in diffs] == [
        ("messages[1].content", "b", "c"),
        ("messages[2]", "<missing>", {"content": "d"}),
    ]
