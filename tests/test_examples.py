"""The examples replay their committed cassettes offline, and re-record to the same calls.

Each example is loaded from its file (examples/ is not a package) as a fresh module, so its
counter of real executions starts empty. Replay runs with no server at all: the LLM examples
point their SDK at a port where nothing listens, the requests example at a rates service
that is not running.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from llm_server import LLMServer

import agenttape
from agenttape._model import Interaction

ROOT = Path(__file__).resolve().parent.parent
LLM_EXAMPLES = ["openai_tools_agent", "anthropic_streaming_agent", "langchain_chain"]
EXAMPLES = [*LLM_EXAMPLES, "requests_tool"]
RERECORD = "re-record it: python examples/{name}.py --record"


def _load(name: str) -> ModuleType:
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # recorded errors are rebuilt from imported modules only
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example(request: pytest.FixtureRequest,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.delenv("RATES_API_URL", raising=False)
    module = _load(request.param)
    try:
        yield module
    finally:
        http = getattr(module, "http", None)
        if http is not None:
            http.close()
        sys.modules.pop(module.__name__, None)


def _committed(module: ModuleType) -> agenttape.Cassette:
    path = module.CASSETTE_DIR / f"{module.CASSETTE}.yaml"
    assert path.is_file(), f"{path} is missing; " + RERECORD.format(name=module.CASSETTE)
    return agenttape.read_cassette(path)


def _last_llm_text(cassette: agenttape.Cassette) -> str:
    """The final answer as the cassette holds it: a JSON body or a stream of events."""
    last = [i for i in cassette.interactions if i.kind == "llm"][-1]
    response: Any = last.response
    if isinstance(response, list):  # an Anthropic stream: its text deltas
        return "".join(event["data"]["delta"]["text"] for event in response
                       if event.get("event") == "content_block_delta"
                       and event["data"]["delta"].get("type") == "text_delta")
    return str(response["choices"][0]["message"]["content"])


def _replays_offline(module: ModuleType, answer: Any, session: agenttape.Session,
                     cassette: agenttape.Cassette) -> None:
    assert session.engine is not None
    assert session.engine.live_count == 0
    assert session.engine.replayed == len(cassette.interactions) > 0
    assert session.written == []
    executed = getattr(module, "executed", {})  # the requests example counts `served`
    assert not executed, f"boundaries really ran during replay: {dict(executed)}"


@pytest.mark.parametrize("example", LLM_EXAMPLES, indirect=True)
def test_llm_examples_replay_offline_without_running_tools(example: ModuleType) -> None:
    cassette = _committed(example)
    answer, session = example.run("none", example.OFFLINE_URL)
    _replays_offline(example, answer, session, cassette)
    assert answer == _last_llm_text(cassette)
    kinds = {i.kind for i in cassette.interactions}
    assert {"llm", "tool", "retrieval"} <= kinds


@pytest.mark.parametrize("example", ["anthropic_streaming_agent"], indirect=True)
def test_the_anthropic_example_is_recorded_and_replayed_as_streams(example: ModuleType) -> None:
    cassette = _committed(example)
    streams = [i for i in cassette.interactions if i.kind == "llm"]
    assert len(streams) == 2
    for item in streams:
        assert isinstance(item.response, list)
        assert item.response[0]["event"] == "message_start"
        assert item.response[-1]["event"] == "message_stop"


@pytest.mark.parametrize("example", ["langchain_chain"], indirect=True)
def test_the_langchain_example_is_annotated_by_the_callback_and_not_doubled(
    example: ModuleType,
) -> None:
    cassette = _committed(example)
    assert [(i.kind, i.boundary) for i in cassette.interactions] == [
        ("retrieval", "PolicyRetriever"), ("llm", "openai"), ("tool", "check_stock"),
        ("llm", "openai")]
    for item in cassette.interactions:
        assert item.metadata["callback"]["framework"] == "langchain"


@pytest.mark.parametrize("example", ["requests_tool"], indirect=True)
def test_the_requests_example_replays_without_the_service(example: ModuleType) -> None:
    cassette = _committed(example)
    (call,) = cassette.interactions
    assert (call.kind, call.boundary) == ("http", "127.0.0.1:8765")
    prices, session = example.run("none")
    _replays_offline(example, prices, session, cassette)
    rates = call.response["json"]["rates"]
    assert prices == {"USD": round(59.0 * rates["USD"], 2), "GBP": round(59.0 * rates["GBP"], 2)}
    assert example.served == []


@pytest.mark.parametrize("example", EXAMPLES, indirect=True)
def test_each_example_runs_as_a_script_in_replay(
    example: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert example.main([]) == 0
    out = capsys.readouterr().out
    assert " replayed, 0 live" in out


def _shape(item: Interaction) -> tuple[str, str, str]:
    if item.kind == "http":  # the port differs between recordings; the call does not
        url = item.request["url"].split("/", 3)[-1]
        return item.kind, item.request["method"], url
    return item.kind, item.boundary or "", item.match_key


@pytest.mark.parametrize("example", LLM_EXAMPLES, indirect=True)
def test_llm_examples_record_against_the_standin_then_replay_offline(
    example: ModuleType, llm_server: LLMServer, tmp_path: Path
) -> None:
    base = (llm_server.anthropic_base_url if "anthropic" in example.CASSETTE
            else llm_server.openai_base_url)
    recorded, session = example.run("record", base, cassette_dir=tmp_path)
    assert session.written == [tmp_path / f"{example.CASSETTE}.yaml"]
    assert sum(example.executed.values()) >= 2
    fresh = agenttape.read_cassette(session.written[0])
    assert [_shape(i) for i in fresh.interactions] == [
        _shape(i) for i in _committed(example).interactions
    ], "the committed cassette is stale; " + RERECORD.format(name=example.CASSETTE)

    hits = llm_server.hits
    llm_server.stop()
    example.executed.clear()
    replayed, session = example.run("none", base, cassette_dir=tmp_path)
    assert replayed == recorded
    assert llm_server.hits == hits
    _replays_offline(example, replayed, session, fresh)


@pytest.mark.parametrize("example", ["requests_tool"], indirect=True)
def test_the_requests_example_records_against_its_service_then_replays_offline(
    example: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as probe:  # a free port for this run's rates service
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("RATES_API_URL", f"http://127.0.0.1:{port}")
    with example.rates_service(os.environ["RATES_API_URL"]):
        recorded, session = example.run("record", cassette_dir=tmp_path)
    assert example.served == ["/v1/latest?base=EUR"]
    fresh = agenttape.read_cassette(session.written[0])
    assert [_shape(i) for i in fresh.interactions] == [
        _shape(i) for i in _committed(example).interactions]

    example.http.close()  # drop the pooled connection to the stopped service
    replayed, session = example.run("none", cassette_dir=tmp_path)
    assert replayed == recorded
    assert example.served == ["/v1/latest?base=EUR"]
    assert session.engine is not None and session.engine.live_count == 0
