"""agenttape.AgentTape driven by llama-index-core: its legacy CallbackManager and its
instrumentation dispatcher, with MockLLM, a small CustomLLM and a BaseRetriever subclass."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import yaml
from llama_index.core.callbacks import CallbackManager
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    CompletionResponseGen,
    CustomLLM,
    LLMMetadata,
    MockLLM,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

import agenttape

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
LEGACY, DISPATCHER, BOTH = "legacy", "dispatcher", "both"


class Archive(BaseRetriever):
    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        node = TextNode(text=f"record of {query_bundle.query_str}", metadata={"box": 7})
        return [NodeWithScore(node=node, score=0.75)]


class Counting(CustomLLM):
    """Answers with the provider-style raw body LlamaIndex integrations pass on."""

    fail: bool = False

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="counting-1")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        if self.fail:
            raise ConnectionError("model offline")
        raw = {"usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}}
        return CompletionResponse(text=f"{len(prompt)} chars", raw=raw)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        # Token counts where LlamaIndex's OpenAI integration puts them.
        counts = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
        return ChatResponse(message=ChatMessage(role="assistant",
                                                content=f"{len(messages)} messages"),
                            additional_kwargs=counts)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False,
                        **kwargs: Any) -> CompletionResponseGen:
        def gen() -> CompletionResponseGen:
            text = ""
            for word in ("one ", "two"):
                text += word
                yield CompletionResponse(text=text, delta=word)

        return gen()


@pytest.fixture(params=[LEGACY, DISPATCHER, BOTH])
def wiring(request: pytest.FixtureRequest) -> Iterator[tuple[str, CallbackManager]]:
    """The same AgentTape reached through one or both of LlamaIndex's event systems."""
    tape = agenttape.AgentTape()
    manager = CallbackManager([tape] if request.param != DISPATCHER else [])
    dispatcher = get_dispatcher()
    if request.param != LEGACY:
        dispatcher.add_event_handler(tape)
    try:
        yield request.param, manager
    finally:
        if tape in dispatcher.event_handlers:
            dispatcher.event_handlers.remove(tape)


def _stored(session: agenttape.Session) -> list[dict[str, Any]]:
    text = session.path.read_text(encoding="utf-8")
    assert not UUID.search(text)  # event ids, span ids and node ids stay out
    interactions: list[dict[str, Any]] = yaml.safe_load(text)["interactions"]
    return interactions


def test_llm_and_retriever_are_recorded_once_whatever_the_wiring(
    wiring: tuple[str, CallbackManager],
) -> None:
    _, manager = wiring
    llm = Counting(callback_manager=manager)
    with agenttape.use_cassette("calls", mode="record") as session:
        assert llm.complete("hello").text == "5 chars"
        nodes = Archive(callback_manager=manager).retrieve("harbour")
    assert nodes[0].score == 0.75
    completion, retrieval = _stored(session)
    # The boundary is the LLM's own LlamaIndex class_name(); CustomLLM's is "custom_llm".
    assert (completion["kind"], completion["boundary"]) == ("llm", "custom_llm")
    assert completion["request"] == {"model": "counting-1", "prompt": "hello"}
    assert completion["response"] == {"text": "5 chars"}
    assert completion["usage"] == {"input_tokens": 4, "output_tokens": 2, "total_tokens": 6}
    assert completion["metadata"]["source"] == "callback"
    assert completion["metadata"]["framework"] == "llama_index"
    assert (retrieval["kind"], retrieval["boundary"]) == ("retrieval", "Archive")
    assert retrieval["request"] == {"name": "Archive", "args": {"query": "harbour"}}
    assert retrieval["response"] == [{"text": "record of harbour", "metadata": {"box": 7},
                                      "score": 0.75}]


def test_mock_llm_chat_is_recorded_as_the_completion_it_runs(
    wiring: tuple[str, CallbackManager],
) -> None:
    _, manager = wiring
    llm = MockLLM(max_tokens=3, callback_manager=manager)
    with agenttape.use_cassette("chat", mode="record") as session:
        reply = llm.chat([ChatMessage(role="user", content="hi there")])
    assert reply.message.content == "text text text"
    # MockLLM answers chat through complete(): the innermost LLM event is the one kept,
    # and the outer chat event only annotates it.
    (item,) = _stored(session)
    assert item["kind"] == "llm"
    assert item["boundary"] == "MockLLM"
    assert item["request"] == {"prompt": "user: hi there\nassistant: ",
                               "params": {"formatted": True}}
    assert item["response"] == {"text": "text text text"}
    assert item["metadata"]["callback"] == {"framework": "llama_index", "run_name": "MockLLM"}


def test_chat_messages_are_plain(wiring: tuple[str, CallbackManager]) -> None:
    _, manager = wiring
    with agenttape.use_cassette("chat_messages", mode="record") as session:
        reply = Counting(callback_manager=manager).chat(
            [ChatMessage(role="system", content="be brief"),
             ChatMessage(role="user", content="hi")])
    assert reply.message.content == "2 messages"
    (item,) = _stored(session)
    assert item["request"] == {"model": "counting-1", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}
    assert item["response"] == {"message": {"role": "assistant", "content": "2 messages"}}
    assert item["usage"] == {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}


def test_streaming_is_flagged_as_not_captured(wiring: tuple[str, CallbackManager]) -> None:
    _, manager = wiring
    llm = Counting(callback_manager=manager)
    with (agenttape.use_cassette("stream", mode="record") as session,
          pytest.warns(agenttape.StreamingNotRecordedWarning) as seen):
        pieces = [r.delta for r in llm.stream_complete("go")]
    assert pieces == ["one ", "two"]
    assert len(seen) == 1
    (item,) = _stored(session)
    assert item["response"] == {"text": "one two"}
    assert item["metadata"]["stream_captured"] is False


def test_an_llm_error_is_recorded(wiring: tuple[str, CallbackManager]) -> None:
    _, manager = wiring
    llm = Counting(callback_manager=manager, fail=True)
    with agenttape.use_cassette("error", mode="record") as session, pytest.raises(ConnectionError):
        llm.complete("hello")
    (item,) = _stored(session)
    assert item["kind"] == "llm"
    assert "model offline" in item["error"]["message"]


def test_replay_observes_the_retriever_and_writes_nothing(
    wiring: tuple[str, CallbackManager],
) -> None:
    _, manager = wiring
    with agenttape.use_cassette("observe", mode="record") as recorded:
        Archive(callback_manager=manager).retrieve("tides")
    before = recorded.path.read_bytes()
    with agenttape.use_cassette("observe", mode="none") as replay:
        Archive(callback_manager=manager).retrieve("tides")
        assert replay.engine is not None
        timeline = replay.engine.timeline()
    assert [(i.kind, i.boundary) for i in timeline] == [("retrieval", "Archive")]
    assert replay.written == []
    assert recorded.path.read_bytes() == before


def test_outside_a_session_it_does_nothing(wiring: tuple[str, CallbackManager]) -> None:
    _, manager = wiring
    assert Counting(callback_manager=manager).complete("hi").text == "2 chars"


def test_the_dispatcher_takes_the_object_as_it_is() -> None:
    tape = agenttape.AgentTape()
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(tape)
    try:
        assert tape in dispatcher.event_handlers
    finally:
        dispatcher.event_handlers.remove(tape)


async def test_async_calls_are_recorded_once(wiring: tuple[str, CallbackManager]) -> None:
    _, manager = wiring
    async with agenttape.use_cassette("async", mode="record") as session:
        assert (await Counting(callback_manager=manager).acomplete("hey")).text == "3 chars"
        await Archive(callback_manager=manager).aretrieve("shoal")
    assert [(i["kind"], i["boundary"]) for i in _stored(session)] == [
        ("llm", "custom_llm"), ("retrieval", "Archive")]


def test_state_true_records_a_query_and_its_response(wiring: tuple[str, CallbackManager],
                                                     ) -> None:
    from llama_index.core.query_engine import RetrieverQueryEngine

    mode, _ = wiring
    tape = agenttape.AgentTape(state=True)
    stateful = CallbackManager([tape] if mode != DISPATCHER else [])
    dispatcher = get_dispatcher()
    if mode != LEGACY:
        dispatcher.add_event_handler(tape)
    try:
        llm = MockLLM(max_tokens=2, callback_manager=stateful)
        engine = RetrieverQueryEngine.from_args(Archive(callback_manager=stateful), llm=llm,
                                                callback_manager=stateful)
        with agenttape.use_cassette("query", mode="record") as session:
            answer = engine.query("tides")
    finally:
        if tape in dispatcher.event_handlers:
            dispatcher.event_handlers.remove(tape)
    stored = _stored(session)
    state = [i for i in stored if i["kind"] == "memory_write"]
    assert len(state) == 1
    assert state[0]["boundary"] == "graph_state"
    assert state[0]["request"] == {"node": "query", "input": "tides"}
    assert state[0]["response"]["response"] == str(answer)
    assert state[0]["response"]["source_nodes"] == [
        {"text": "record of tides", "metadata": {"box": 7}, "score": 0.75}]
    assert ("retrieval", "Archive") in [(i["kind"], i["boundary"]) for i in stored]
