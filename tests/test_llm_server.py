"""The test LLM server speaks the wire formats the real SDKs expect (no agenttape involved).

If one of these fails, every agenttape test built on the server is suspect, so they check the
SDKs' own parsed objects and stream helpers rather than raw bytes where they can.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from typing import Any

import anthropic
import httpx
import openai
import pytest
import requests
from llm_server import LLMServer

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "units": {"type": "object"},
            },
            "required": ["city"],
        },
    },
}


def openai_client(server: LLMServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url=server.openai_base_url, **kwargs)


def anthropic_client(server: LLMServer, **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test-key", base_url=server.anthropic_base_url, **kwargs)


def user(text: str) -> Any:
    return {"role": "user", "content": text}


# ---------------------------------------------------------------- OpenAI chat completions


def test_chat_completion_echoes_last_user_message_with_usage(llm_server: LLMServer) -> None:
    with openai_client(llm_server) as client:
        completion = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[user("first"), {"role": "assistant", "content": "ok"}, user("hello there")],
        )
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    usage = completion.usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0
    assert llm_server.hits_by_path["/v1/chat/completions"] == 1


def test_same_request_gives_same_content_but_fresh_ids(llm_server: LLMServer) -> None:
    body = {"model": "m", "messages": [user("same")]}
    with httpx.Client() as client:
        first = client.post(llm_server.openai_base_url + "/chat/completions", json=body)
        second = client.post(llm_server.openai_base_url + "/chat/completions", json=body)
    one, two = first.json(), second.json()
    assert one["id"] != two["id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    for data in (one, two):
        del data["id"], data["created"]
    assert one == two


def test_chat_tool_call_round_trip(llm_server: LLMServer) -> None:
    with openai_client(llm_server) as client:
        question = "use get_weather for Paris"
        first = client.chat.completions.create(
            model="gpt-4o-mini", messages=[user(question)], tools=[WEATHER_TOOL]
        )
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content is None
        calls = choice.message.tool_calls
        assert calls is not None and len(calls) == 1
        call = calls[0]
        assert call.type == "function"
        assert call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": question, "days": 1}

        second = client.chat.completions.create(
            model="gpt-4o-mini",
            tools=[WEATHER_TOOL],
            messages=[
                user(question),
                choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
                {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
                {"role": "tool", "tool_call_id": call.id, "content": "22C"},
            ],
        )
    assert second.choices[0].message.content == "Final: sunny | 22C"


def test_chat_with_tools_but_no_tool_named_answers_with_text(llm_server: LLMServer) -> None:
    with openai_client(llm_server) as client:
        completion = client.chat.completions.create(
            model="m", messages=[user("just chat")], tools=[WEATHER_TOOL]
        )
    assert completion.choices[0].message.content == "Echo: just chat"


def test_chat_stream_with_usage(llm_server: LLMServer) -> None:
    with openai_client(llm_server) as client:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[user("stream me some words")],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream me some words"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) >= 4
    assert len({c.id for c in chunks}) == 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None and last.usage.completion_tokens == 5


def test_chat_stream_helper_accumulates_tool_calls(llm_server: LLMServer) -> None:
    with (
        openai_client(llm_server) as client,
        client.chat.completions.stream(
            model="m", messages=[user("get_weather in Rome")], tools=[WEATHER_TOOL]
        ) as stream,
    ):
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments)["city"] == "get_weather in Rome"
    assert final.choices[0].finish_reason == "tool_calls"


def test_chat_stream_helper_text(llm_server: LLMServer) -> None:
    with (
        openai_client(llm_server) as client,
        client.chat.completions.stream(model="m", messages=[user("hi you")]) as stream,
    ):
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == "Echo: hi you"
    assert final.choices[0].message.content == "Echo: hi you"


def test_slow_header_spaces_out_chunks(llm_server: LLMServer) -> None:
    with openai_client(llm_server) as client:
        started = time.monotonic()
        stream = client.chat.completions.create(
            model="m",
            messages=[user("a b")],
            stream=True,
            extra_headers={"x-test-slow": "1"},
        )
        arrivals = [time.monotonic() - started for _ in stream]
    # role, "Echo: ", "a ", "b", finish: four gaps of 0.2 s.
    assert arrivals[-1] >= 0.75
    assert arrivals[0] < 0.5


# ---------------------------------------------------------------- OpenAI responses


def test_responses_create(llm_server: LLMServer) -> None:
    with openai_client(llm_server) as client:
        response = client.responses.create(model="gpt-4.1-mini", input="what is up")
    assert response.output_text == "Echo: what is up"
    assert response.status == "completed"
    assert response.usage is not None
    assert response.usage.total_tokens == (
        response.usage.input_tokens + response.usage.output_tokens
    )


def test_responses_input_list_uses_last_user_message(llm_server: LLMServer) -> None:
    with openai_client(llm_server) as client:
        response = client.responses.create(
            model="m",
            instructions="be nice",
            input=[
                {"role": "user", "content": "old"},
                {"role": "assistant", "content": "reply"},
                {"role": "user", "content": [{"type": "input_text", "text": "newest"}]},
            ],
        )
    assert response.output_text == "Echo: newest"


def test_responses_stream_helper(llm_server: LLMServer) -> None:
    with (
        openai_client(llm_server) as client,
        client.responses.stream(model="gpt-4.1-mini", input="stream this please") as stream,
    ):
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) >= 3
    assert "".join(deltas) == "Echo: stream this please"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "Echo: stream this please"
    assert final.usage is not None and final.usage.output_tokens == 4


def test_responses_function_call_round_trip_streamed(llm_server: LLMServer) -> None:
    tool: Any = {
        "type": "function",
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        "strict": False,
    }
    with openai_client(llm_server) as client:
        with client.responses.stream(model="m", input="please lookup x", tools=[tool]) as stream:
            final = stream.get_final_response()
        call = final.output[0]
        assert call.type == "function_call"
        assert call.name == "lookup"
        assert json.loads(call.arguments) == {"q": "please lookup x"}

        answer = client.responses.create(
            model="m",
            tools=[tool],
            input=[
                {"role": "user", "content": "please lookup x"},
                {"type": "function_call_output", "call_id": call.call_id, "output": "found"},
            ],
        )
    assert answer.output_text == "Final: found"


# ---------------------------------------------------------------- OpenAI embeddings


def test_embeddings_are_deterministic_in_both_encodings(llm_server: LLMServer) -> None:
    with openai_client(llm_server) as client:
        # The SDK asks for base64 by default and decodes it itself.
        default = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        floats = client.embeddings.create(
            model="text-embedding-3-small", input=["a", "b"], encoding_format="float"
        )
        again = client.embeddings.create(model="text-embedding-3-small", input="a")
    vectors = [d.embedding for d in default.data]
    assert vectors == [d.embedding for d in floats.data]
    assert all(len(v) == 8 for v in vectors)
    assert vectors[0] != vectors[1]
    assert again.data[0].embedding == vectors[0]
    assert default.usage.prompt_tokens == 2
    assert llm_server.requests[0].json()["encoding_format"] == "base64"


# ---------------------------------------------------------------- OpenAI async


async def test_async_openai_create_and_stream(llm_server: LLMServer) -> None:
    async with openai.AsyncOpenAI(api_key="sk-test", base_url=llm_server.openai_base_url) as client:
        completion = await client.chat.completions.create(model="m", messages=[user("async")])
        stream = await client.chat.completions.create(
            model="m", messages=[user("async stream")], stream=True
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        async with client.responses.stream(model="m", input="async resp") as rstream:
            final = await rstream.get_final_response()
    assert completion.choices[0].message.content == "Echo: async"
    assert "".join(pieces) == "Echo: async stream"
    assert final.output_text == "Echo: async resp"


# ---------------------------------------------------------------- Anthropic


def test_anthropic_create(llm_server: LLMServer) -> None:
    with anthropic_client(llm_server) as client:
        message = client.messages.create(
            model="claude-test-model",
            max_tokens=100,
            system="be brief",
            messages=[{"role": "user", "content": [{"type": "text", "text": "hello claude"}]}],
        )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: hello claude"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens == 3
    assert llm_server.hits_by_path == {"/v1/messages": 1}


def test_anthropic_stream_helper(llm_server: LLMServer) -> None:
    with (
        anthropic_client(llm_server) as client,
        client.messages.stream(
            model="claude-test-model", max_tokens=100, messages=[user("stream it now")]
        ) as stream,
    ):
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) >= 3
    assert "".join(pieces) == "Echo: stream it now"
    assert final.content[0].type == "text"
    assert final.content[0].text == "Echo: stream it now"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4
    assert final.usage.input_tokens == 3


def test_anthropic_raw_stream_event_order(llm_server: LLMServer) -> None:
    with anthropic_client(llm_server) as client:
        stream = client.messages.create(model="m", max_tokens=10, messages=[user("x")], stream=True)
        types = [event.type for event in stream]
    # ping is swallowed by the SDK.
    assert types == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    raw = llm_server.requests[-1]
    assert raw.json()["stream"] is True


def test_anthropic_tool_use_round_trip(llm_server: LLMServer) -> None:
    tool: Any = {
        "name": "get_weather",
        "description": "Weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    with anthropic_client(llm_server) as client:
        with client.messages.stream(
            model="m", max_tokens=100, tools=[tool], messages=[user("get_weather: Oslo")]
        ) as stream:
            first = stream.get_final_message()
        block = first.content[0]
        assert first.stop_reason == "tool_use"
        assert block.type == "tool_use"
        assert block.name == "get_weather"
        assert block.input == {"city": "get_weather: Oslo"}

        second = client.messages.create(
            model="m",
            max_tokens=100,
            tools=[tool],
            messages=[
                user("get_weather: Oslo"),
                {"role": "assistant", "content": first.content},
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": block.id, "content": "rain"}
                    ],
                },
            ],
        )
    assert second.content[0].type == "text"
    assert second.content[0].text == "Final: rain"


async def test_async_anthropic_create_and_stream(llm_server: LLMServer) -> None:
    async with anthropic.AsyncAnthropic(
        api_key="test-key", base_url=llm_server.anthropic_base_url
    ) as client:
        message = await client.messages.create(model="m", max_tokens=10, messages=[user("a")])
        async with client.messages.stream(
            model="m", max_tokens=10, messages=[user("async stream")]
        ) as stream:
            pieces = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: a"
    assert "".join(pieces) == "Echo: async stream"
    assert final.usage.output_tokens == 3


def test_anthropic_with_explicit_httpx2_client(llm_server: LLMServer) -> None:
    import httpx2

    with anthropic_client(llm_server, http_client=httpx2.Client()) as client:
        message = client.messages.create(model="m", max_tokens=10, messages=[user("x2")])
    assert message.content[0].type == "text"
    assert message.content[0].text == "Echo: x2"


# ---------------------------------------------------------------- failure controls


def test_fail_once_500_is_retried_by_the_sdk(llm_server: LLMServer) -> None:
    with openai_client(llm_server) as client:
        completion = client.chat.completions.create(model="fail-once-500", messages=[user("r")])
    assert completion.choices[0].message.content == "Echo: r"
    retry_counts = [r.headers["x-stainless-retry-count"] for r in llm_server.requests]
    assert retry_counts == ["0", "1"]
    # Once per server: later calls succeed first time.
    with openai_client(llm_server, max_retries=0) as client:
        client.chat.completions.create(model="fail-once-500", messages=[user("r")])
    assert llm_server.hits == 3


def test_fail_once_500_without_retries_raises(llm_server: LLMServer) -> None:
    with (
        anthropic_client(llm_server, max_retries=0) as client,
        pytest.raises(anthropic.InternalServerError),
    ):
        client.messages.create(model="fail-once-500", max_tokens=5, messages=[user("r")])
    llm_server.reset()
    with openai_client(llm_server, max_retries=0) as client:
        with pytest.raises(openai.InternalServerError) as info:
            client.embeddings.create(model="fail-once-500", input="x")
        assert info.value.status_code == 500


def test_always_429(llm_server: LLMServer) -> None:
    with openai_client(llm_server, max_retries=1) as client:
        with pytest.raises(openai.RateLimitError) as info:
            client.responses.create(model="always-429", input="x")
        assert info.value.code == "rate_limit_exceeded"
    with (
        anthropic_client(llm_server, max_retries=0) as aclient,
        pytest.raises(anthropic.RateLimitError) as ainfo,
    ):
        aclient.messages.create(model="always-429", max_tokens=5, messages=[user("x")])
    assert ainfo.value.status_code == 429
    assert isinstance(ainfo.value.body, dict)
    assert ainfo.value.body["error"]["type"] == "rate_limit_error"
    assert llm_server.hits == 3


@pytest.mark.parametrize("code", [200, 204, 404, 418, 500, 503])
def test_status_endpoint(llm_server: LLMServer, code: int) -> None:
    response = requests.get(f"{llm_server.url}/status/{code}", timeout=5)
    assert response.status_code == code
    if code != 204:
        assert response.json()["status"] == code


def test_bad_requests_get_400_and_unknown_paths_404(llm_server: LLMServer) -> None:
    with httpx.Client(base_url=llm_server.url) as client:
        assert client.post("/v1/chat/completions", content=b"{not json").status_code == 400
        assert client.post("/v1/chat/completions", json={"model": "m"}).status_code == 400
        assert client.get("/v1/chat/completions").status_code == 405
        assert client.get("/nope").status_code == 404
        assert client.get("/status/abc").status_code == 400


def test_raw_keep_alive_and_malformed_chunked_body(llm_server: LLMServer) -> None:
    request = b"GET /json?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    bad = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    with socket.create_connection(("127.0.0.1", llm_server.port), timeout=5) as sock:
        stream = sock.makefile("rb")
        for _ in range(2):  # two requests on one connection: keep-alive works
            sock.sendall(request)
            assert stream.readline() == b"HTTP/1.1 200 OK\r\n"
            headers = dict(
                line.decode().rstrip().lower().split(": ", 1)
                for line in iter(stream.readline, b"\r\n")
            )
            assert stream.read(int(headers["content-length"])) == b'{"a":"1"}'
        sock.sendall(bad)
        assert stream.readline().startswith(b"HTTP/1.1 400")
        stream.close()
    assert llm_server.hits == 2


# ---------------------------------------------------------------- plain endpoints


def test_json_and_echo_with_requests(llm_server: LLMServer) -> None:
    with requests.Session() as session:
        got = session.get(f"{llm_server.url}/json", params={"x": "1", "y": ["a", "b"]}, timeout=5)
        assert got.json() == {"x": "1", "y": ["a", "b"]}
        echoed = session.post(
            f"{llm_server.url}/echo?k=v", data="héllo", headers={"X-Custom": "Yes"}, timeout=5
        ).json()
    assert echoed["method"] == "POST"
    assert echoed["path"] == "/echo"
    assert echoed["query"] == {"k": "v"}
    assert echoed["headers"]["x-custom"] == "Yes"
    assert echoed["body"] == "héllo"


def test_echo_accepts_chunked_request_bodies(llm_server: LLMServer) -> None:
    def body() -> Any:
        yield b"part one, "
        yield b"part two"

    with httpx.Client() as client:
        echoed = client.put(f"{llm_server.url}/echo", content=body()).json()
    assert echoed["method"] == "PUT"
    assert echoed["headers"]["transfer-encoding"] == "chunked"
    assert echoed["body"] == "part one, part two"


def test_binary_gzip_and_text(llm_server: LLMServer) -> None:
    with httpx.Client(base_url=llm_server.url) as client:
        binary = client.get("/binary", params={"size": 3000})
        assert binary.headers["content-type"] == "application/octet-stream"
        assert len(binary.content) == 3000
        assert binary.content == client.get("/binary?size=3000").content
        with pytest.raises(UnicodeDecodeError):
            binary.content.decode("utf-8")

        zipped = client.get("/gzip")
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.json()["gzipped"] is True

        text = client.get("/text")
        assert text.headers["content-type"].startswith("text/plain")
        assert len(text.text.splitlines()) > 2

    raw = requests.get(f"{llm_server.url}/gzip", stream=True, timeout=5)
    with raw:
        compressed = raw.raw.read(decode_content=False)
    assert json.loads(gzip.decompress(compressed))["gzipped"] is True


def test_big_body_is_streamed_in_chunks(llm_server: LLMServer) -> None:
    with requests.get(f"{llm_server.url}/big?mb=3", stream=True, timeout=10) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        total = sum(len(chunk) for chunk in response.iter_content(chunk_size=None))
    assert total == 3 * 1024 * 1024
    with httpx.Client() as client:
        assert len(client.get(f"{llm_server.url}/big?mb=0.25").content) == 256 * 1024


def test_big_body_can_be_abandoned_early(llm_server: LLMServer) -> None:
    with (
        httpx.Client() as client,
        client.stream("GET", f"{llm_server.url}/big?mb=200") as response,
    ):
        first = next(response.iter_bytes())
    assert first
    # The server thread hits a broken pipe; that must not count as a server error.
    assert llm_server.hits == 1


def test_slow_sse_arrives_event_by_event(llm_server: LLMServer) -> None:
    arrivals: list[float] = []
    started = time.monotonic()
    with requests.get(f"{llm_server.url}/slow-sse?n=4&delay=0.15", stream=True, timeout=5) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = []
        for line in r.iter_lines():
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
                arrivals.append(time.monotonic() - started)
    assert [e["index"] for e in events] == [0, 1, 2, 3]
    assert arrivals[0] < 0.3
    assert arrivals[-1] >= 0.4


def test_gated_sse_waits_for_the_gate(llm_server: LLMServer) -> None:
    seen: list[str] = []
    with (
        httpx.Client() as client,
        client.stream("GET", f"{llm_server.url}/gated-sse?n=3") as response,
    ):
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                seen.append(line)
                break
        # The first event is here while the rest are held back by the gate.
        assert len(seen) == 1
        threading.Timer(0.1, llm_server.sse_gate.set).start()
        seen += [line for line in lines if line.startswith("data: ")]
    assert len(seen) == 3


def test_head_request(llm_server: LLMServer) -> None:
    response = requests.head(f"{llm_server.url}/json?a=1", timeout=5)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) > 0
    assert response.content == b""


# ---------------------------------------------------------------- lifecycle and bookkeeping


def test_hits_requests_and_reset(llm_server: LLMServer) -> None:
    with httpx.Client(base_url=llm_server.url) as client:
        client.get("/json?a=1")
        client.get("/json?a=2")
        client.post("/echo", content=b"\xff\x00")
    assert llm_server.hits == 3
    assert llm_server.hits_by_path == {"/json": 2, "/echo": 1}
    first, _, last = llm_server.requests
    assert (first.method, first.path, first.query) == ("GET", "/json", "a=1")
    assert last.body == b"\xff\x00"
    assert all(key == key.lower() for key in last.headers)
    llm_server.reset()
    assert llm_server.hits == 0
    assert llm_server.requests == []
    assert llm_server.hits_by_path == {}


def test_stop_refuses_new_and_pooled_connections(llm_server: LLMServer) -> None:
    with openai_client(llm_server, max_retries=0) as client:
        client.chat.completions.create(model="m", messages=[user("before")])
        llm_server.stop()
        # The client's pool still holds the keep-alive connection; it must not get through.
        with pytest.raises(openai.APIConnectionError):
            client.chat.completions.create(model="m", messages=[user("after")])
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", llm_server.port), timeout=2),
    ):
        pass
    llm_server.stop()  # idempotent
    assert llm_server.hits == 1


def test_restart_reuses_the_port(llm_server: LLMServer) -> None:
    url = llm_server.url
    llm_server.stop()
    llm_server.start()
    assert llm_server.url == url
    assert requests.get(f"{url}/json?ok=1", timeout=5).json() == {"ok": "1"}


def test_stop_does_not_wait_for_a_closed_gate(llm_server: LLMServer) -> None:
    with (
        httpx.Client() as client,
        client.stream("GET", f"{llm_server.url}/gated-sse") as response,
    ):
        lines = response.iter_lines()
        next(lines)
        started = time.monotonic()
        llm_server.stop()
        assert time.monotonic() - started < 2
        # The stream was cut mid-body, so the client sees an incomplete chunked response.
        with pytest.raises(httpx.RemoteProtocolError):
            list(lines)


def test_context_manager_and_factory(llm_server_factory: Any) -> None:
    with LLMServer() as server:
        assert requests.get(f"{server.url}/json?a=b", timeout=5).json() == {"a": "b"}
    assert not server.running
    one, two = llm_server_factory(), llm_server_factory()
    assert one.port != two.port
    assert one.anthropic_base_url == one.url
    assert one.openai_base_url == one.url + "/v1"


def test_concurrent_clients(llm_server: LLMServer) -> None:
    results: list[str] = []

    def worker(n: int) -> None:
        with openai_client(llm_server) as client:
            completion = client.chat.completions.create(model="m", messages=[user(f"n{n}")])
            results.append(completion.choices[0].message.content or "")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted(f"Echo: n{n}" for n in range(8))
    assert llm_server.hits == 8
