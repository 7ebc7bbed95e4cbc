"""Which HTTP calls are LLM calls, their canonical requests, usage, and error mapping.

These are the pure conversions under both HTTP adapters; the adapters themselves are tested
over real sockets in test_transport_httpx.py / test_transport_requests.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import agenttape
from agenttape.config import Config
from agenttape.transports import _http, llm
from agenttape.transports._providers import PROVIDERS
from agenttape.transports.sse import SseParser


def _session(**config: Any) -> agenttape.Session:
    return agenttape.use_cassette("x", config=Config(cassette_dir=Path.cwd(), **config))


def _call(url: str, body: Any = None, *, method: str = "POST", session: Any = None,
          headers: list[tuple[str, str]] | None = None) -> _http.HttpCall:
    data = json.dumps(body).encode() if body is not None else b""
    pairs = headers if headers is not None else [("content-type", "application/json")]
    return _http.build_request(session, method, url, pairs, data)


@pytest.mark.parametrize(("url", "provider", "endpoint", "model"), [
    ("https://api.openai.com/v1/chat/completions", "openai", "chat.completions", "m"),
    ("https://api.openai.com/v1/responses", "openai", "responses", "m"),
    ("https://api.openai.com/v1/embeddings", "openai", "embeddings", "m"),
    ("https://api.openai.com/v1/completions", "openai", "completions", "m"),
    ("https://myco.openai.azure.com/openai/deployments/gpt4o/chat/completions"
     "?api-version=2024-10-21", "azure_openai", "chat.completions", "m"),
    ("https://api.anthropic.com/v1/messages", "anthropic", "messages", "m"),
    ("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent",
     "gemini", "generateContent", "gemini-2.0-flash"),
    ("https://api.mistral.ai/v1/chat/completions", "mistral", "chat.completions", "m"),
    ("https://api.groq.com/openai/v1/chat/completions", "groq", "chat.completions", "m"),
    ("https://openrouter.ai/api/v1/chat/completions", "openrouter", "chat.completions", "m"),
    ("https://api.together.xyz/v1/chat/completions", "together", "chat.completions", "m"),
    ("http://localhost:11434/api/chat", "ollama", "chat", "m"),
    ("http://localhost:11434/api/generate", "ollama", "generate", "m"),
    ("http://127.0.0.1:11434/v1/chat/completions", "ollama", "chat.completions", "m"),
])
def test_known_providers(url: str, provider: str, endpoint: str, model: str) -> None:
    body = {"model": "m", "messages": []} if provider != "gemini" else {"contents": []}
    call = _call(url, body)
    assert (call.kind, call.boundary) == ("llm", provider)
    assert call.request["endpoint"] == endpoint
    assert call.request["model"] == model


def test_azure_deployment_is_the_model_when_the_body_has_none() -> None:
    call = _call("https://x.openai.azure.com/openai/deployments/prod-4o/chat/completions"
                 "?api-version=2024-10-21", {"messages": []})
    assert call.request == {"endpoint": "chat.completions", "model": "prod-4o", "messages": [],
                            "query": {"api-version": "2024-10-21"}}


def test_gemini_stream_and_key() -> None:
    call = _call("https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent"
                 "?alt=sse&key=AIzaSyD-secret-secret-secret-secret-1234", {"contents": []})
    assert call.stream_requested
    # Same endpoint as the non-streamed call; the key and the SSE switch are not the call.
    assert call.request == {"endpoint": "generateContent", "model": "g", "contents": []}


def test_ollama_native_api_streams_by_default() -> None:
    assert _call("http://localhost:11434/api/chat", {"model": "m", "messages": []}
                 ).stream_requested
    assert not _call("http://localhost:11434/api/chat",
                     {"model": "m", "messages": [], "stream": False}).stream_requested


def test_other_hosts_are_plain_http() -> None:
    call = _call("https://example.com/v1/chat/completions", {"model": "m"})
    assert (call.kind, call.boundary) == ("http", "example.com")


def test_llm_hosts_with_port_and_provider_from_path() -> None:
    with _session(llm_hosts=["127.0.0.1:8080", "gateway.internal"]) as session:
        openai_call = _call("http://127.0.0.1:8080/v1/chat/completions",
                            {"model": "m", "messages": []}, session=session)
        anthropic_call = _call("https://gateway.internal/anthropic/v1/messages",
                               {"model": "c", "messages": []}, session=session)
        other_port = _call("http://127.0.0.1:9090/v1/chat/completions", {"model": "m"},
                           session=session)
        health = _call("http://127.0.0.1:8080/health", method="GET", session=session)
    assert (openai_call.kind, openai_call.boundary) == ("llm", "openai")
    assert (anthropic_call.kind, anthropic_call.boundary) == ("llm", "anthropic")
    assert other_port.kind == "http"
    assert (health.kind, health.boundary) == ("http", "127.0.0.1:8080")


def test_every_provider_entry_is_recognised_by_its_first_host() -> None:
    for provider in PROVIDERS:
        host = provider.hosts[0].replace("*", "tenant")
        assert llm.identify(host, "/v1/chat/completions") == provider


def test_stream_flag_is_transport_only() -> None:
    plain = _call("https://api.openai.com/v1/chat/completions", {"model": "m", "messages": []})
    streamed = _call("https://api.openai.com/v1/chat/completions",
                     {"model": "m", "messages": [], "stream": True})
    assert streamed.request == plain.request
    assert streamed.stream_requested and not plain.stream_requested


def test_meaningful_headers_only() -> None:
    call = _call("https://api.anthropic.com/v1/messages", {"model": "c", "messages": []},
                 headers=[("content-type", "application/json"), ("anthropic-version", "2023"),
                          ("anthropic-beta", "tools-2024"), ("x-api-key", "sk-ant-x"),
                          ("x-stainless-os", "Linux")])
    assert call.request["headers"] == {"anthropic-beta": "tools-2024"}


def test_model_override() -> None:
    with _session(model_override="gpt-new") as session:
        call = _call("https://api.openai.com/v1/chat/completions",
                     {"model": "gpt-old", "messages": []}, session=session)
    assert call.request["model"] == "gpt-new"
    assert call.model_override_body is not None
    assert json.loads(call.model_override_body) == {"model": "gpt-new", "messages": []}


# --- plain HTTP canonical requests -----------------------------------------------------------

def test_url_normalisation_and_header_filtering() -> None:
    call = _http.build_request(None, "get", "HTTPS://Example.COM:443/a/b?z=1&a=2&a=1&key=s", [
        ("Host", "example.com"), ("User-Agent", "x"), ("Accept-Encoding", "gzip"),
        ("Authorization", "Bearer abc"), ("Cookie", "c=1"), ("X-Stainless-Arch", "x64"),
        ("Accept", "application/json"), ("X-Custom", "1")], b"")
    assert call.boundary == "example.com"
    assert call.request == {"method": "GET", "url": "https://example.com/a/b?a=2&a=1&z=1",
                            "headers": {"accept": "application/json", "x-custom": "1"}}
    assert _http.build_request(None, "GET", "http://h:8080/", [], b"").boundary == "h:8080"


@pytest.mark.parametrize(("content_type", "body", "expected"), [
    ("application/json", b'{"a": [1]}', {"json": {"a": [1]}}),
    ("application/vnd.api+json", b'{"a": 1}', {"json": {"a": 1}}),
    ("application/x-www-form-urlencoded", b"a=1&b=2&a=3", {"form": {"a": ["1", "3"], "b": "2"}}),
    ("text/plain", "héllo".encode(), {"text": "héllo"}),
    ("application/octet-stream", b"\xff\x00", {"body_b64": "/wA="}),
    ("application/json", b"", {}),
])
def test_request_bodies(content_type: str, body: bytes, expected: dict[str, Any]) -> None:
    call = _http.build_request(None, "POST", "http://h/", [("content-type", content_type)], body)
    assert {k: v for k, v in call.request.items() if k not in ("method", "url", "headers")
            } == expected


def test_multipart_boundaries_are_pinned() -> None:
    def call(boundary: str) -> dict[str, Any]:
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n"
                f"--{boundary}--\r\n").encode()
        headers = [("content-type", f"multipart/form-data; boundary={boundary}")]
        return _http.build_request(None, "POST", "http://h/u", headers, body).request

    assert call("abc123random") == call("zzz999other")


# --- responses and usage ---------------------------------------------------------------------

def test_usage_normalisation() -> None:
    assert llm.normalise_usage({
        "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2}}) == {
        "input_tokens": 10, "output_tokens": 5, "total_tokens": 15, "cached_tokens": 4,
        "reasoning_tokens": 2}
    assert llm.normalise_usage({"input_tokens": 7, "output_tokens": 3,
                                "cache_read_input_tokens": 5,
                                "cache_creation_input_tokens": 1}, "anthropic") == {
        "input_tokens": 13, "output_tokens": 3, "total_tokens": 16, "cached_tokens": 5}
    assert llm.usage_of("gemini", {"usageMetadata": {
        "promptTokenCount": 3, "candidatesTokenCount": 4, "totalTokenCount": 9,
        "thoughtsTokenCount": 2}}) == {"input_tokens": 3, "output_tokens": 4, "total_tokens": 9,
                                       "reasoning_tokens": 2}
    assert llm.usage_of("ollama", {"done": True, "prompt_eval_count": 8, "eval_count": 2}) == {
        "input_tokens": 8, "output_tokens": 2, "total_tokens": 10}
    assert llm.usage_of("openai", {"usage": {"prompt_tokens": 3, "total_tokens": 3}}) == {
        "input_tokens": 3, "output_tokens": 0, "total_tokens": 3}
    assert llm.normalise_usage({}) is None and llm.usage_of("openai", {"x": 1}) is None


def _stream(call: _http.HttpCall, wire: bytes, complete: bool = True) -> Any:
    return _http.stream_record(call, 200, [("content-type", "text/event-stream")], [wire],
                               complete)


def test_anthropic_stream_usage_and_completion() -> None:
    call = _call("https://api.anthropic.com/v1/messages", {"model": "c", "stream": True})
    wire = (b'event: message_start\ndata: {"type":"message_start","message":{"usage":'
            b'{"input_tokens":9,"output_tokens":1}}}\n\n'
            b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":6}}\n\n'
            b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    # The SDK stops at message_stop, before the body ends: still a complete stream.
    events, usage, metadata = _stream(call, wire, complete=False)
    assert usage == {"input_tokens": 9, "output_tokens": 6, "total_tokens": 15}
    assert metadata["stream_complete"] is True
    assert [e["event"] for e in events] == ["message_start", "message_delta", "message_stop"]


def test_incomplete_stream_is_marked() -> None:
    call = _call("https://api.openai.com/v1/chat/completions", {"model": "m", "stream": True})
    _, usage, metadata = _stream(call, b'data: {"choices":[]}\n\n', complete=False)
    assert usage is None and metadata["stream_complete"] is False


def test_gzip_stream_is_stored_decoded() -> None:
    import gzip

    call = _http.build_request(None, "GET", "http://h/sse", [], b"")
    wire = gzip.compress(b'event: tick\ndata: {"i":1}\n\n')
    record, _, _ = _http.stream_record(
        call, 200, [("content-type", "text/event-stream"), ("content-encoding", "gzip")],
        [wire[:5], wire[5:]], True)
    assert record["events"] == [{"event": "tick", "data": {"i": 1}}]
    assert "content-encoding" not in record["headers"]


def test_replay_parts_re_serialise_the_recording() -> None:
    call = _call("https://api.openai.com/v1/chat/completions", {"model": "m", "stream": True})
    wire = b'data: {"a":1}\n\ndata: [DONE]\n\n'
    response, usage, metadata = _stream(call, wire)
    interaction = agenttape.Interaction(index=0, kind="llm", request=call.request,
                                        response=response, usage=usage, metadata=metadata)
    parts = _http.replay_parts(interaction, call)
    assert parts.is_stream and ("content-type", "text/event-stream") in parts.headers
    assert b"".join(parts.chunks()) == wire
    parser = SseParser()
    assert [len(parser.feed(c)) for c in parts.chunks()] == [1, 1]  # one event per chunk


def test_streamed_call_against_a_non_stream_recording() -> None:
    call = _call("https://api.openai.com/v1/chat/completions", {"model": "m", "stream": True})
    plain = _call("https://api.openai.com/v1/chat/completions", {"model": "m"})
    value, _, metadata = _http.response_record(
        plain, 200, [("content-type", "application/json")], b'{"id": "x"}')
    interaction = agenttape.Interaction(index=3, kind="llm", request=plain.request,
                                        response=value, metadata=metadata)
    with pytest.raises(agenttape.StreamingReplayError, match="interaction 3"):
        _http.replay_parts(interaction, call)
    failed = agenttape.Interaction(index=4, kind="llm", request=plain.request,
                                   response={"error": {}},
                                   metadata={"http": {"status_code": 500, "headers": {}}})
    assert _http.replay_parts(failed, call).status == 500  # an error answer is no stream


def test_response_headers_drop_wire_encoding_and_noise() -> None:
    call = _http.build_request(None, "GET", "http://h/", [], b"")
    value, usage, metadata = _http.response_record(call, 201, [
        ("Content-Type", "application/json"), ("Content-Length", "9"),
        ("Content-Encoding", "gzip"), ("Date", "Mon"), ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"), ("x-ratelimit-remaining-requests", "9"), ("X-Request-Id", "r")],
        b'{"ok": 1}')
    assert value == {"status_code": 201, "headers": {
        "content-type": "application/json", "set-cookie": ["a=1", "b=2"], "x-request-id": "r"},
        "json": {"ok": 1}}
    assert usage is None and metadata == {}


# --- errors ----------------------------------------------------------------------------------

def test_error_record_names_the_public_module() -> None:
    import httpx

    record = _http.error_record(httpx.ConnectError("refused"))
    assert record == {"type": "ConnectError", "module": "httpx", "message": "refused"}
    assert _http.error_record(ValueError("v"))["module"] == "builtins"


@pytest.mark.parametrize(("recorded", "family", "expected"), [
    ({"type": "ConnectError", "module": "httpx"}, "httpx", "ConnectError"),
    ({"type": "ConnectError", "module": "httpx2"}, "httpx", "ConnectError"),
    ({"type": "ConnectError", "module": "httpx"}, "requests", "ConnectionError"),
    ({"type": "ReadTimeout", "module": "httpx2"}, "requests", "ReadTimeout"),
    ({"type": "ConnectionError", "module": "requests"}, "httpx", "ConnectError"),
    ({"type": "ConnectionError", "module": "requests.exceptions"}, "requests",
     "ConnectionError"),
])
def test_error_class_names_across_libraries(recorded: dict[str, str], family: str,
                                            expected: str) -> None:
    assert _http.error_class_name(recorded, family) == expected
