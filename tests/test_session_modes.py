"""Sessions and modes: what runs for real, what replays, what is written (DESIGN.md §4)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import agenttape

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


@agenttape.tool
def add(a: int, b: int = 10) -> int:
    calls["add"] += 1
    return a + b


@agenttape.retrieval(name="kb_search")
def search(query: str, k: int = 2) -> list[str]:
    calls["kb_search"] += 1
    return [f"{query}-{i}" for i in range(k)]


@agenttape.memory_write
def remember(key: str, value: Any) -> None:
    calls["remember"] += 1


@agenttape.memory_read
def recall(key: str) -> str:
    calls["recall"] += 1
    return f"value of {key}"


def agent() -> list[Any]:
    out: list[Any] = [add(1), add(2, b=3), search("cats")]
    remember("k", {"v": 1})
    out.append(recall("k"))
    return out


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_record_then_replay_runs_nothing_real() -> None:
    with agenttape.use_cassette("agent", mode="record") as session:
        recorded = agent()
    assert calls == {"add": 2, "kb_search": 1, "remember": 1, "recall": 1}
    assert session.path == Path.cwd() / "cassettes" / "agent.yaml"
    assert session.path.exists()

    calls.clear()
    with agenttape.use_cassette("agent", mode="none") as session:
        replayed = agent()
    assert replayed == recorded
    assert sum(calls.values()) == 0
    assert session.engine is not None and session.engine.replayed == 5


def test_timeline_hands_out_copies_and_what_is_written_is_the_engines_own() -> None:
    with agenttape.use_cassette("copies", mode="record") as session:
        agent()
        engine = session.engine
        assert engine is not None
        handed_out = engine.timeline()
        handed_out[0].response = "changed by the caller"
        handed_out[1].tags = ["changed"]
        assert engine.timeline()[0].response == 11
        own = engine.timeline(copies=False)
        assert own[0] is engine.timeline(copies=False)[0]
        assert [i.index for i in own] == list(range(5))
    written = agenttape.read_cassette(session.path)
    assert written.interactions[0].response == 11
    assert written.interactions[1].tags == []


def test_outside_a_session_decorators_are_the_original_function() -> None:
    assert add(1) == 11
    assert add.__name__ == "add" and add.__wrapped__(2) == 12  # type: ignore[attr-defined]
    assert calls["add"] == 2


def test_positional_and_keyword_calls_match_each_other() -> None:
    with agenttape.use_cassette("kw", record=True):
        add(1, 5)
    with agenttape.use_cassette("kw"):
        assert add(a=1, b=5) == 6
    assert calls["add"] == 1
    request = agenttape.read_cassette(Path("cassettes/kw.yaml")).interactions[0].request
    assert request == {"name": "add", "args": {"a": 1, "b": 5}}


def test_defaults_are_filled_so_explicit_default_matches() -> None:
    with agenttape.use_cassette("defaults", record=True):
        add(1)
    with agenttape.use_cassette("defaults"):
        assert add(1, 10) == 11
    assert calls["add"] == 1


def test_none_mode_with_missing_file_raises_unmatched_at_first_crossing() -> None:
    with agenttape.use_cassette("missing", mode="none") as session, pytest.raises(
        agenttape.UnmatchedInteractionError
    ) as info:
        add(1)
    assert calls["add"] == 0
    assert info.value.mode == "none"
    assert info.value.closest is None
    assert not session.path.exists()


def test_none_mode_never_writes() -> None:
    with agenttape.use_cassette("ro", record=True):
        add(1)
    before = Path("cassettes/ro.yaml").read_bytes()
    with agenttape.use_cassette("ro", mode="none"), pytest.raises(
        agenttape.UnmatchedInteractionError
    ):
        add(2)
    assert Path("cassettes/ro.yaml").read_bytes() == before


def test_once_records_when_absent_and_replays_when_present() -> None:
    with agenttape.use_cassette("once", mode="once"):
        assert add(1) == 11
    assert calls["add"] == 1 and Path("cassettes/once.yaml").exists()
    with agenttape.use_cassette("once", mode="once"):
        assert add(1) == 11
        with pytest.raises(agenttape.UnmatchedInteractionError):
            add(2)
    assert calls["add"] == 1


def test_new_episodes_appends_and_never_rewrites_old_entries() -> None:
    with agenttape.use_cassette("episodes", record=True):
        add(1)
    first = agenttape.read_cassette(Path("cassettes/episodes.yaml"))
    with agenttape.use_cassette("episodes", mode="new_episodes"):
        assert add(1) == 11  # replayed
        assert add(7) == 17  # new: runs and is appended
    assert calls["add"] == 2
    second = agenttape.read_cassette(Path("cassettes/episodes.yaml"))
    assert second.interactions[0] == first.interactions[0]
    assert second.created_at == first.created_at
    assert [i.request["args"]["a"] for i in second.interactions] == [1, 7]
    assert [i.index for i in second.interactions] == [0, 1]


def test_new_episodes_with_nothing_new_does_not_touch_the_file() -> None:
    with agenttape.use_cassette("quiet", record=True):
        add(1)
    path = Path("cassettes/quiet.yaml")
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    with agenttape.use_cassette("quiet", mode="new_episodes"):
        add(1)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


@pytest.mark.parametrize("mode", ["all", "record"])
def test_all_and_record_replace_the_file(mode: str) -> None:
    with agenttape.use_cassette("again", record=True):
        add(1)
        add(2)
    with agenttape.use_cassette("again", mode=mode):
        add(3)
    assert calls["add"] == 3
    cassette = agenttape.read_cassette(Path("cassettes/again.yaml"))
    assert [i.request["args"]["a"] for i in cassette.interactions] == [3]
    assert cassette.meta["mode"] == mode


@pytest.mark.parametrize(
    ("mode", "present", "runs", "writes"),
    [
        ("none", True, 0, False),
        ("none", False, 0, False),
        ("once", True, 0, False),
        ("once", False, 1, True),
        ("new_episodes", True, 0, False),
        ("new_episodes", False, 1, True),
        ("all", True, 1, True),
        ("all", False, 1, True),
        ("record", True, 1, True),
        ("record", False, 1, True),
    ],
)
def test_mode_matrix(mode: str, present: bool, runs: int, writes: bool) -> None:
    path = Path("cassettes/matrix.yaml")
    if present:
        with agenttape.use_cassette("matrix", record=True):
            add(1)
        calls.clear()
    before = path.read_bytes() if present else None
    with agenttape.use_cassette("matrix", mode=mode):
        if mode == "none" and not present:
            with pytest.raises(agenttape.UnmatchedInteractionError):
                add(1)
        else:
            assert add(1) == 11
    assert calls["add"] == runs
    if writes:
        assert path.exists()
        assert agenttape.read_cassette(path).interactions[0].response == 11
    else:
        assert (path.read_bytes() if path.exists() else None) == before


def test_agenttape_mode_env_overrides_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTAPE_MODE", "none")
    with agenttape.use_cassette("env", mode="all") as session:
        assert session.mode == "none"
        with pytest.raises(agenttape.UnmatchedInteractionError):
            add(1)
    assert calls["add"] == 0


def test_session_that_raises_still_writes_what_it_recorded() -> None:
    with pytest.raises(KeyError), agenttape.use_cassette("crash", record=True):
        add(1)
        raise KeyError("agent crashed")
    cassette = agenttape.read_cassette(Path("cassettes/crash.yaml"))
    assert cassette.meta["incomplete"] is True
    assert [i.response for i in cassette.interactions] == [11]


def test_identical_requests_replay_in_recorded_order() -> None:
    counter = iter(range(100))

    @agenttape.tool
    def tick(label: str) -> int:
        return next(counter)

    with agenttape.use_cassette("ticks", record=True):
        recorded = [tick("x"), tick("x"), tick("y"), tick("x")]
    with agenttape.use_cassette("ticks"):
        assert [tick("y"), tick("x"), tick("x"), tick("x")] == [
            recorded[2], recorded[0], recorded[1], recorded[3]
        ]
        with pytest.raises(agenttape.UnmatchedInteractionError) as info:
            tick("x")
    assert info.value.unplayed == 0


def test_allow_playback_repeats_repeats_the_last_recording() -> None:
    with agenttape.use_cassette("repeat", record=True):
        add(1)
    config = agenttape.Config.load().evolve(allow_playback_repeats=True)
    with agenttape.use_cassette("repeat", config=config):
        assert [add(1), add(1), add(1)] == [11, 11, 11]
    assert calls["add"] == 1


def test_methods_drop_self_and_use_their_own_name() -> None:
    class Payments:
        def __init__(self) -> None:
            self.charged = 0

        @agenttape.tool(name="charge_card")
        def charge(self, amount: int) -> dict[str, Any]:
            self.charged += amount
            return {"ok": True, "amount": amount}

    with agenttape.use_cassette("methods", record=True):
        assert Payments().charge(5) == {"ok": True, "amount": 5}
    other = Payments()
    with agenttape.use_cassette("methods"):
        assert other.charge(amount=5) == {"ok": True, "amount": 5}
    assert other.charged == 0
    request = agenttape.read_cassette(Path("cassettes/methods.yaml")).interactions[0]
    assert request.boundary == "charge_card" and request.request["args"] == {"amount": 5}


def test_exceptions_are_recorded_and_reraised_on_replay() -> None:
    @agenttape.tool
    def explode(n: int) -> None:
        calls["explode"] += 1
        raise ValueError(f"bad n {n}")

    with agenttape.use_cassette("errors", record=True), pytest.raises(ValueError, match="bad n 3"):
        explode(3)
    interaction = agenttape.read_cassette(Path("cassettes/errors.yaml")).interactions[0]
    assert interaction.error == {"type": "ValueError", "module": "builtins", "message": "bad n 3"}
    assert interaction.response is None
    assert "response:" not in _text(Path("cassettes/errors.yaml"))
    with agenttape.use_cassette("errors"), pytest.raises(ValueError, match="bad n 3"):
        explode(3)
    assert calls["explode"] == 1


def test_replayed_error_never_imports_the_module_it_names(tmp_path: Path) -> None:
    import sys

    agenttape.write_cassette(
        agenttape.Cassette(interactions=[agenttape.Interaction(
            index=0, kind="tool", boundary="add",
            request={"name": "add", "args": {"a": 1, "b": 10}},
            error={"type": "Boom", "module": "antigravity_never_imported", "message": "nope"},
        )]),
        Path("cassettes/foreign.yaml"),
    )
    with agenttape.use_cassette("foreign"), pytest.raises(RuntimeError) as info:
        add(1)
    assert "antigravity_never_imported.Boom: nope" in str(info.value)
    assert "antigravity_never_imported" not in sys.modules


def test_outermost_boundary_wins() -> None:
    @agenttape.tool
    def outer(x: int) -> int:
        calls["outer"] += 1
        return add(x) * 2

    with agenttape.use_cassette("nested", record=True):
        assert outer(1) == 22
    cassette = agenttape.read_cassette(Path("cassettes/nested.yaml"))
    assert [i.boundary for i in cassette.interactions] == ["outer"]
    calls.clear()
    with agenttape.use_cassette("nested"):
        assert outer(1) == 22
    assert sum(calls.values()) == 0


def test_record_call_low_level_hook() -> None:
    fetched: list[str] = []

    def fetch(city: str) -> dict[str, Any]:
        fetched.append(city)
        return {"city": city, "temp": 12}

    assert agenttape.record_call("tool", {"name": "weather"}, lambda: fetch("Oslo"))["temp"] == 12
    with agenttape.use_cassette("weather", record=True):
        result = agenttape.record_call(
            "tool",
            {"name": "weather", "args": {"city": "London"}},
            executor=lambda: fetch("London"),
            boundary="weather",
            usage={"input_tokens": 3},
            tags=["external"],
        )
    with agenttape.use_cassette("weather"):
        again = agenttape.record_call(
            "tool", {"name": "weather", "args": {"city": "London"}},
            executor=lambda: fetch("London"), boundary="weather",
        )
    assert result == again == {"city": "London", "temp": 12}
    assert fetched == ["Oslo", "London"]
    stored = agenttape.read_cassette(Path("cassettes/weather.yaml")).interactions[0]
    assert stored.usage == {"input_tokens": 3} and stored.tags == ["external"]
    with pytest.raises(ValueError, match="kind must be one of"):
        agenttape.record_call("nope", {}, lambda: None)


def test_replay_and_record_decorators_sync_and_async() -> None:
    @agenttape.record("deco")
    def capture() -> int:
        return add(4)

    @agenttape.replay("deco")
    def again() -> int:
        return add(4)

    @agenttape.replay("deco")
    async def again_async() -> int:
        return add(4)

    assert capture() == 14
    assert again() == 14
    assert asyncio.run(again_async()) == 14
    assert calls["add"] == 1


async def test_async_tools_under_gather_with_out_of_order_completion() -> None:
    @agenttape.tool
    async def slow_echo(value: int, delay: float) -> int:
        calls["slow_echo"] += 1
        await asyncio.sleep(delay)
        return value * 100

    args = [(i, 0.05 - i * 0.01) for i in range(5)]
    async with agenttape.use_cassette("gather", record=True):
        recorded = await asyncio.gather(*(slow_echo(v, d) for v, d in args))
    assert calls["slow_echo"] == 5
    async with agenttape.use_cassette("gather"):
        replayed = await asyncio.gather(*(slow_echo(v, d) for v, d in reversed(args)))
    assert list(reversed(replayed)) == recorded == [0, 100, 200, 300, 400]
    assert calls["slow_echo"] == 5


def test_tools_called_from_a_thread_pool_see_the_session() -> None:
    with agenttape.use_cassette("threads", record=True), ThreadPoolExecutor(4) as pool:
        recorded = list(pool.map(add, range(8)))
    assert calls["add"] == 8
    with agenttape.use_cassette("threads"), ThreadPoolExecutor(4) as pool:
        replayed = list(pool.map(add, reversed(range(8))))
    assert list(reversed(replayed)) == recorded
    assert calls["add"] == 8


def test_nested_sessions_restore_the_outer_one() -> None:
    with agenttape.use_cassette("outer", record=True) as outer:
        assert agenttape.active_session() is outer
        with agenttape.use_cassette("inner", record=True) as inner:
            assert agenttape.active_session() is inner
            add(1)
        assert agenttape.active_session() is outer
        add(2)
    assert agenttape.active_session() is None
    inner_c = agenttape.read_cassette(Path("cassettes/inner.yaml"))
    outer_c = agenttape.read_cassette(Path("cassettes/outer.yaml"))
    assert [i.request["args"]["a"] for i in inner_c.interactions] == [1]
    assert [i.request["args"]["a"] for i in outer_c.interactions] == [2]


def test_sessions_in_two_threads_stay_apart() -> None:
    import threading

    barrier = threading.Barrier(2)
    seen: dict[str, Any] = {}

    def run(name: str, value: int) -> None:
        with agenttape.use_cassette(name, record=True) as session:
            barrier.wait()
            add(value)
            seen[name] = agenttape.active_session() is session
            barrier.wait()

    threads = [threading.Thread(target=run, args=(f"t{i}", i)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"t0": True, "t1": True}
    for i in range(2):
        cassette = agenttape.read_cassette(Path(f"cassettes/t{i}.yaml"))
        assert [x.request["args"]["a"] for x in cassette.interactions] == [i]


def test_json_format_writes_name_json() -> None:
    with agenttape.use_cassette("as_json", record=True, format="json") as session:
        add(1)
    assert session.path.name == "as_json.json"
    with agenttape.use_cassette("as_json", format="json"):
        assert add(1) == 11
    assert calls["add"] == 1


def test_tags_go_to_meta() -> None:
    with agenttape.use_cassette("tagged", record=True, tags=["smoke", "v2"]):
        add(1)
    assert agenttape.read_cassette(Path("cassettes/tagged.yaml")).meta["tags"] == ["smoke", "v2"]


def test_argument_errors_are_config_errors() -> None:
    with pytest.raises(agenttape.ConfigError, match="mutually exclusive"):
        agenttape.use_cassette("x", live={"a"}, frozen={"b"})
    with pytest.raises(ValueError, match="ignore_volatile, exact, ordered"):
        agenttape.use_cassette("x", matchers=["fuzzy"])
    with pytest.raises(agenttape.ConfigError):
        agenttape.use_cassette("x", mode="sometimes")
    with pytest.raises(agenttape.ConfigError):
        agenttape.use_cassette("x", record=True, mode="none")


def test_cassette_dir_argument() -> None:
    with agenttape.use_cassette("here", record=True, cassette_dir="elsewhere") as session:
        add(1)
    assert session.path == Path.cwd() / "elsewhere" / "here.yaml"
    assert session.path.exists()


def test_random_state_is_untouched_without_a_session() -> None:
    random.seed(5)
    expected = random.random()
    random.seed(5)
    with agenttape.use_cassette("rng", record=True, freeze=[]):
        pass
    assert random.random() == expected
