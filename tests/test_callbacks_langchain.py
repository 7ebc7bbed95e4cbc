"""agenttape.AgentTape driven by real langchain-core runs (and langchain-openai over a socket).

The fake chat models, ``@tool`` and a ``BaseRetriever`` subclass are LangChain's own classes:
their callback manager decides what reaches the object, so these tests check that every
attribute it reads is there and that what ends up in the cassette is plain and stable.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import tool
from llm_server import LLMServer

# Imported before pytester snapshots sys.modules (see test_pytest_plugin.py).
import agenttape
import agenttape.callbacks
import agenttape.engine
import agenttape.session

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TOOL_CALL = {"name": "add", "args": {"a": 2, "b": 3}, "id": "call_1"}
USAGE = {"input_tokens": 7, "output_tokens": 4, "total_tokens": 11}
EXECUTED: list[str] = []


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    EXECUTED.append(f"add:{a}+{b}")
    return a + b


class Library(BaseRetriever):
    """A retriever with its own class name, so the boundary name is checked."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        EXECUTED.append(f"library:{query}")
        return [Document(page_content=f"notes on {query}", metadata={"shelf": 4})]


@pytest.fixture(autouse=True)
def _clear_executed() -> Iterator[None]:
    EXECUTED.clear()
    yield


def _model() -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([
        AIMessage(content="", tool_calls=[TOOL_CALL], usage_metadata=USAGE)]))


def _chain(model: GenericFakeChatModel) -> Runnable[str, Any]:
    """retriever -> prompt text -> chat model -> the tool call it asked for."""
    return (Library() | RunnableLambda(lambda docs: docs[0].page_content) | model
            | RunnableLambda(lambda message: add.invoke(message.tool_calls[0])))


def _stored(session: agenttape.Session) -> list[dict[str, Any]]:
    interactions: list[dict[str, Any]] = yaml.safe_load(
        session.path.read_text(encoding="utf-8"))["interactions"]
    return interactions


def _kinds(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(i["kind"], i["boundary"]) for i in items]


def test_a_chain_records_each_kind_under_langchains_names() -> None:
    with agenttape.use_cassette("chain", mode="record") as session:
        out = _chain(_model()).invoke("tides", config={"callbacks": [agenttape.AgentTape()]})
    assert out.content == "5"
    text = session.path.read_text(encoding="utf-8")
    stored = _stored(session)
    assert _kinds(stored) == [("retrieval", "Library"), ("llm", "genericfakechatmodel"),
                              ("tool", "add")]
    retrieval, llm, call = stored
    assert retrieval["request"] == {"name": "Library", "args": {"query": "tides"}}
    assert retrieval["response"] == [{"page_content": "notes on tides",
                                      "metadata": {"shelf": 4}}]
    assert llm["request"] == {"messages": [{"role": "user", "content": "notes on tides"}]}
    assert llm["response"] == {"message": {"role": "assistant", "content": "",
                                           "tool_calls": [{"name": "add",
                                                           "args": {"a": 2, "b": 3}}]}}
    assert llm["usage"] == USAGE
    assert call["request"] == {"name": "add", "args": {"a": 2, "b": 3}}
    assert call["response"] == "5"
    for item in stored:
        assert item["metadata"] == {"source": "callback", "framework": "langchain"}
    # Run ids (UUIDv7), parent ids and LangChain's per-run message ids never reach the file.
    assert not UUID.search(text)
    assert "lc_run" not in text


def test_the_same_run_twice_gives_the_same_requests() -> None:
    keys = []
    for name in ("first", "second"):
        with agenttape.use_cassette(name, mode="record") as session:
            _chain(_model()).invoke("tides", config={"callbacks": [agenttape.AgentTape()]})
        keys.append([item["match_key"] for item in _stored(session)])
    assert keys[0] == keys[1]


def test_state_true_records_chain_inputs_and_outputs_as_graph_state() -> None:
    with agenttape.use_cassette("state", mode="record") as session:
        _chain(_model()).invoke("tides",
                                config={"callbacks": [agenttape.AgentTape(state=True)]})
    stored = _stored(session)
    state = [i for i in stored if i["kind"] == "memory_write"]
    assert {i["boundary"] for i in state} == {"graph_state"}
    whole = state[0]  # the sequence starts first and is recorded in start order
    assert whole["request"] == {"node": "RunnableSequence", "input": "tides"}
    assert whole["response"] == {"role": "tool", "content": "5", "name": "add"}
    assert [i["request"]["node"] for i in state] == [
        "RunnableSequence", "RunnableLambda", "RunnableLambda"]
    assert _kinds([i for i in stored if i["kind"] != "memory_write"]) == [
        ("retrieval", "Library"), ("llm", "genericfakechatmodel"), ("tool", "add")]


async def test_async_invoke_records_the_same() -> None:
    async with agenttape.use_cassette("async", mode="record") as session:
        out = await _chain(_model()).ainvoke("tides",
                                             config={"callbacks": [agenttape.AgentTape()]})
    assert out.content == "5"
    stored = _stored(session)
    assert _kinds(stored) == [("retrieval", "Library"), ("llm", "genericfakechatmodel"),
                              ("tool", "add")]
    assert stored[1]["usage"] == USAGE


async def test_concurrent_async_runs_pair_start_and_end_by_run_id() -> None:
    tape = agenttape.AgentTape()
    async with agenttape.use_cassette("gather", mode="record") as session:
        results = await asyncio.gather(*(
            add.ainvoke({"a": n, "b": n}, config={"callbacks": [tape]}) for n in range(5)))
    assert results == [0, 2, 4, 6, 8]
    pairs = sorted((i["request"]["args"]["a"], i["response"]) for i in _stored(session))
    assert pairs == [(n, 2 * n) for n in range(5)]


def test_streaming_is_assembled_and_flagged_as_not_captured() -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage(content="low tide at noon")]))
    with (agenttape.use_cassette("stream", mode="record") as session,
          pytest.warns(agenttape.StreamingNotRecordedWarning, match="stream_captured")):
        pieces = [c.content for c in model.stream(
            "when?", config={"callbacks": [agenttape.AgentTape()]})]
    assert len(pieces) > 1
    (llm,) = _stored(session)
    assert llm["response"] == {"message": {"role": "assistant", "content": "low tide at noon"}}
    assert llm["metadata"] == {"source": "callback", "framework": "langchain",
                               "stream_captured": False}


def test_a_failing_tool_is_recorded_as_its_error() -> None:
    @tool
    def broken(city: str) -> str:
        """Always fails."""
        raise LookupError(f"no station in {city}")

    with agenttape.use_cassette("error", mode="record") as session, pytest.raises(LookupError):
        broken.invoke({"city": "Oslo"}, config={"callbacks": [agenttape.AgentTape()]})
    (item,) = _stored(session)
    assert item["kind"] == "tool"
    assert item["request"] == {"name": "broken", "args": {"city": "Oslo"}}
    assert item["error"] == {"type": "LookupError", "module": "builtins",
                             "message": "no station in Oslo"}
    assert "response" not in item


def test_replay_observes_the_framework_and_writes_nothing() -> None:
    with agenttape.use_cassette("observe", mode="record") as recorded:
        _chain(_model()).invoke("tides", config={"callbacks": [agenttape.AgentTape()]})
    before = recorded.path.read_bytes()
    EXECUTED.clear()

    with agenttape.use_cassette("observe", mode="none") as replay:
        out = _chain(_model()).invoke("tides", config={"callbacks": [agenttape.AgentTape()]})
        assert replay.engine is not None
        timeline = replay.engine.timeline()
    assert out.content == "5"
    # Record-only: the framework really ran its tool and retriever; the callback only saw it.
    assert EXECUTED == ["library:tides", "add:2+3"]
    assert [(i.kind, i.boundary) for i in timeline] == [
        ("retrieval", "Library"), ("llm", "genericfakechatmodel"), ("tool", "add")]
    assert replay.written == []
    assert recorded.path.read_bytes() == before
    assert replay.engine.new_positions == []


def test_new_episodes_does_not_record_an_observed_crossing_twice() -> None:
    with agenttape.use_cassette("episodes", mode="record"):
        add.invoke({"a": 1, "b": 1}, config={"callbacks": [agenttape.AgentTape()]})
    with agenttape.use_cassette("episodes", mode="new_episodes") as session:
        add.invoke({"a": 1, "b": 1}, config={"callbacks": [agenttape.AgentTape()]})
        add.invoke({"a": 9, "b": 9}, config={"callbacks": [agenttape.AgentTape()]})
    assert [i["request"]["args"] for i in _stored(session)] == [{"a": 1, "b": 1},
                                                                 {"a": 9, "b": 9}]


def _total_tool(func: Any) -> Any:
    from langchain_core.tools import StructuredTool

    return StructuredTool.from_function(func, name="total", description="Add two integers.")


def _plain_total(a: int, b: int) -> int:
    EXECUTED.append(f"total:{a}+{b}")
    return a + b


@agenttape.tool(name="total")
def _decorated_total(a: int, b: int) -> int:
    EXECUTED.append(f"total:{a}+{b}")
    return a + b


def test_a_decorated_tool_body_is_recorded_once_and_replays_what_the_callback_saw() -> None:
    # Recorded by the callback alone...
    with agenttape.use_cassette("total", mode="record") as recorded:
        _total_tool(_plain_total).invoke({"a": 2, "b": 3},
                                         config={"callbacks": [agenttape.AgentTape()]})
    assert EXECUTED == ["total:2+3"]
    (item,) = _stored(recorded)
    assert item["metadata"]["source"] == "callback"
    EXECUTED.clear()

    # ...then replayed by @agenttape.tool on the tool's function: the callback matches at
    # the end of the run, so the decorator inside it gets the recording, not the callback.
    with agenttape.use_cassette("total", mode="none") as replay:
        out = _total_tool(_decorated_total).invoke(
            {"a": 2, "b": 3}, config={"callbacks": [agenttape.AgentTape()]})
        assert replay.engine is not None
        assert replay.engine.replayed == 1
        timeline = replay.engine.timeline()
    assert out == 5
    assert EXECUTED == []
    assert [(i.kind, i.boundary) for i in timeline] == [("tool", "total")]

    # Both on the same call while recording: one interaction, the decorator's, annotated.
    with agenttape.use_cassette("total_both", mode="record") as both:
        _total_tool(_decorated_total).invoke({"a": 2, "b": 3},
                                             config={"callbacks": [agenttape.AgentTape()]})
    (item,) = _stored(both)
    assert item["metadata"] == {"callback": {"framework": "langchain", "run_name": "total"}}


def test_outside_a_session_it_does_nothing() -> None:
    tape = agenttape.AgentTape()
    assert _chain(_model()).invoke("tides", config={"callbacks": [tape]}).content == "5"
    assert EXECUTED == ["library:tides", "add:2+3"]
    assert tape._runs == {}


def test_inside_another_boundary_only_the_outer_one_is_recorded() -> None:
    @agenttape.tool
    def research(topic: str) -> str:
        docs = Library().invoke(topic, config={"callbacks": [agenttape.AgentTape()]})
        return str(docs[0].page_content)

    with agenttape.use_cassette("nested", mode="record") as session:
        assert research("reefs") == "notes on reefs"
    assert _kinds(_stored(session)) == [("tool", "research")]


def test_an_internal_failure_is_one_warning_and_the_run_goes_on() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise ValueError("cannot be shown")

    value = Unprintable()

    @tool
    def odd(x: int) -> object:
        """Returns something agenttape cannot turn into JSON."""
        return value

    with (agenttape.use_cassette("odd", mode="record") as session,
          pytest.warns(RuntimeWarning, match=r"on_tool_end failed.*cannot be shown")):
        out = odd.invoke({"x": 1}, config={"callbacks": [agenttape.AgentTape()]})
    assert out is value
    # The crossing was opened but never finished: it is kept, marked incomplete.
    (item,) = _stored(session)
    assert item["metadata"] == {"incomplete": True}


def test_the_model_and_tool_constructors_accept_it() -> None:
    # LangChain validates these fields as BaseCallbackHandler instances.
    tape = agenttape.AgentTape(tag="ctor")
    model = GenericFakeChatModel(messages=iter([AIMessage(content="hi")]), callbacks=[tape])
    with agenttape.use_cassette("ctor", mode="record") as session:
        assert model.invoke("hello").content == "hi"
    (item,) = _stored(session)
    assert item["tags"] == ["ctor"]
    assert isinstance(tape, agenttape.AgentTape)


# -- langchain-openai over a real socket, with agenttape's http client -------------------

def _llm_config(server: LLMServer) -> agenttape.Config:
    return agenttape.Config.load().evolve(llm_hosts=[f"127.0.0.1:{server.port}"])


async def _openai_run(server: LLMServer) -> list[str]:
    from langchain_openai import ChatOpenAI

    # langchain-openai builds plain httpx clients itself, so it is given httpx ones
    # (openai 3.x accepts httpx or httpx2).
    sync_client = agenttape.http_client(library="httpx")
    async_client = agenttape.async_http_client(library="httpx")
    model = ChatOpenAI(
        model="gpt-4o-mini", base_url=server.openai_base_url, api_key="sk-test-callbacks",
        http_client=sync_client, http_async_client=async_client,
        callbacks=[agenttape.AgentTape()], max_retries=0,
    )
    try:
        answers = [model.invoke("hello there").content]
        answers.append("".join(str(c.content) for c in model.stream("stream this")))
        answers.append((await model.ainvoke("and async")).content)
    finally:
        sync_client.close()
        await async_client.aclose()
    return [str(a) for a in answers]


async def test_chat_openai_through_a_transport_is_recorded_once_and_replays_offline(
    llm_server: LLMServer,
) -> None:
    config = _llm_config(llm_server)
    async with agenttape.use_cassette("openai", mode="record", config=config) as recorded:
        answers = await _openai_run(llm_server)
    assert answers == ["Echo: hello there", "Echo: stream this", "Echo: and async"]
    stored = _stored(recorded)
    # One llm interaction per call: the transport's, annotated by the callback. The stream
    # was captured by the transport, so no StreamingNotRecordedWarning (warnings are errors).
    assert _kinds(stored) == [("llm", "openai")] * 3
    for item in stored:
        assert item["metadata"]["callback"] == {"framework": "langchain",
                                                "run_name": "ChatOpenAI"}
        assert "source" not in item["metadata"]
    assert stored[1]["metadata"]["stream"] is True

    hits = llm_server.hits
    llm_server.stop()
    async with agenttape.use_cassette("openai", mode="none", config=config) as replay:
        assert await _openai_run(llm_server) == answers
        assert replay.engine is not None
        assert replay.engine.replayed == 3
    assert llm_server.hits == hits
    assert replay.written == []


# -- the pytest fixture sees tools a framework ran during replay --------------------------

INNER_TEST = '''
import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

import agenttape


@tool
def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


class Shelf(BaseRetriever):
    def _get_relevant_documents(self, query, *, run_manager):
        return [Document(page_content=query)]


@pytest.mark.agenttape
def test_chain(agenttape_cassette):
    chain = Shelf() | RunnableLambda(lambda docs: shout.invoke(docs[0].page_content))
    assert chain.invoke("quiet", config={"callbacks": [agenttape.AgentTape()]}) == "QUIET"
    agenttape_cassette.assert_tool_calls(["Shelf", "shout"])
'''


def test_assert_tool_calls_sees_framework_tools_when_replaying(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\n"
                     "asyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n")
    pytester.makepyfile(test_inner=INNER_TEST)
    pytester.runpytest_inprocess("--agenttape-record").assert_outcomes(passed=1)
    cassette = next(pytester.path.rglob("test_chain.yaml"))
    recorded = cassette.read_bytes()
    pytester.runpytest_inprocess("--agenttape-mode", "none").assert_outcomes(passed=1)
    assert cassette.read_bytes() == recorded
