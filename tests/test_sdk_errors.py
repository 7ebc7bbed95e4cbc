"""An unmatched request inside an SDK that swallows transport errors still surfaces as ours."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from conftest import SECRET_API_KEY
from llm_server import LLMServer

import agenttape


def ask(client: anthropic.Anthropic, text: str) -> str:
    message = client.messages.create(
        model="claude-test-model", max_tokens=32, messages=[{"role": "user", "content": text}]
    )
    block = message.content[0]
    assert block.type == "text"
    return block.text


def test_anthropic_connection_error_is_replaced_by_the_unmatched_diagnostic(
    llm_server: LLMServer, llm_config: Any
) -> None:
    client = anthropic.Anthropic(
        base_url=llm_server.anthropic_base_url, api_key=SECRET_API_KEY, max_retries=0,
        http_client=agenttape.http_client(),
    )
    with client:
        with agenttape.use_cassette("claude", record=True, config=llm_config):
            assert ask(client, "hello") == "Echo: hello"
        llm_server.stop()

        with pytest.raises(agenttape.UnmatchedInteractionError) as info:  # noqa: SIM117
            with agenttape.use_cassette("claude", config=llm_config):
                assert ask(client, "hello") == "Echo: hello"
                ask(client, "a question never recorded")
    assert isinstance(info.value.__cause__, anthropic.APIConnectionError)
    assert [(d.path, d.received) for d in info.value.field_diffs] == [
        ("messages[0].content", "a question never recorded")
    ]


def test_a_keyboard_interrupt_is_never_replaced(llm_server: LLMServer, llm_config: Any) -> None:
    with pytest.raises(KeyboardInterrupt), agenttape.use_cassette("ki", config=llm_config):
        with pytest.raises(agenttape.UnmatchedInteractionError):
            agenttape.record_call("tool", {"name": "x"}, lambda: 1)
        raise KeyboardInterrupt
