"""Partial replay: live= / frozen= tokens and derived cassettes (DESIGN.md §7)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import agenttape
from agenttape.engine import _token_matches

runs: Counter[str] = Counter()


@agenttape.tool
def charge_card(amount: int) -> str:
    runs["charge_card"] += 1
    return f"charged {amount}"


@agenttape.retrieval
def search_docs(q: str) -> list[str]:
    runs["search_docs"] += 1
    return [q.upper()]


@agenttape.tool
def search_web(q: str) -> str:
    runs["search_web"] += 1
    return q[::-1]


def agent(amount: int = 5) -> list[object]:
    return [search_docs("refund"), search_web("policy"), charge_card(amount)]


@pytest.fixture(autouse=True)
def recorded() -> None:
    with agenttape.use_cassette("shop", record=True):
        agent()
    runs.clear()


@pytest.mark.parametrize(
    ("token", "kind", "boundary", "expected"),
    [
        ("*", "tool", "x", True),
        ("tool", "tool", "x", True),
        ("x", "tool", "x", True),
        ("tool:x", "tool", "x", True),
        ("retrieval:x", "tool", "x", False),
        ("search_*", "tool", "search_web", True),
        ("search_*", "tool", "charge", False),
        ("tool:search_?eb", "tool", "search_web", True),
    ],
)
def test_tokens(token: str, kind: str, boundary: str, expected: bool) -> None:
    assert _token_matches([token], kind, boundary) is expected


def test_live_runs_those_boundaries_and_replays_the_rest() -> None:
    with agenttape.use_cassette("shop", mode="none", live={"search_*"}):
        assert agent() == [["REFUND"], "ycilop", "charged 5"]
    assert runs == {"search_docs": 1, "search_web": 1}


def test_live_by_kind_and_kind_name() -> None:
    with agenttape.use_cassette("shop", live={"retrieval", "tool:search_web"}):
        agent()
    assert runs == {"search_docs": 1, "search_web": 1}


def test_non_live_boundary_without_recording_raises_even_next_to_live_ones() -> None:
    with agenttape.use_cassette("shop", live={"search_docs"}), pytest.raises(
        agenttape.UnmatchedInteractionError
    ):
        agent(amount=999)
    assert runs["charge_card"] == 0


def test_frozen_replays_those_and_runs_everything_else() -> None:
    with agenttape.use_cassette("shop", mode="all", frozen={"charge_card"}):
        assert agent()[2] == "charged 5"
    assert runs == {"search_docs": 1, "search_web": 1}
    rewritten = agenttape.read_cassette(Path("cassettes/shop.yaml"))
    assert [i.boundary for i in rewritten.interactions] == [
        "search_docs", "search_web", "charge_card"
    ]


def test_frozen_boundary_without_recording_raises_in_recording_mode() -> None:
    with agenttape.use_cassette("shop", mode="all", frozen={"charge_card"}), pytest.raises(
        agenttape.UnmatchedInteractionError
    ):
        agent(amount=42)
    assert runs["charge_card"] == 0


def test_derived_cassette_in_mode_none_leaves_the_original_untouched() -> None:
    original = Path("cassettes/shop.yaml").read_bytes()

    @agenttape.retrieval(name="search_docs")
    def changed_search(q: str) -> list[str]:
        return [q.upper(), "NEW"]

    with agenttape.use_cassette("shop", live={"search_docs"}) as session:
        changed_search("refund")
        search_web("policy")
        charge_card(5)
    assert Path("cassettes/shop.yaml").read_bytes() == original
    derived = Path("cassettes/shop.derived.yaml")
    assert session.written == [derived.resolve()]
    timeline = agenttape.read_cassette(derived).interactions
    assert [i.boundary for i in timeline] == ["search_docs", "search_web", "charge_card"]
    assert timeline[0].response == ["REFUND", "NEW"]
    assert timeline[2].response == "charged 5"


def test_pure_replay_writes_no_derived_file() -> None:
    with agenttape.use_cassette("shop"):
        agent()
    assert not Path("cassettes/shop.derived.yaml").exists()
