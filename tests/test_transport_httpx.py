"""agenttape.transport(): real httpx and httpx2 clients over real sockets, recorded then
replayed with the server stopped."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import httpx2
import pytest
from llm_server import LLMServer

import agenttape
from agenttape.config import Config

LIBS = {"httpx": httpx, "httpx2": httpx2}


@pytest.fixture(params=["httpx", "httpx2"])
def lib(request: pytest.FixtureRequest) -> ModuleType:
    return LIBS[request.param]


def _snapshot(response: Any) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "content_type": response.headers.get("content-type"),
        "content": response.content,
    }


def _calls(base: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("GET", f"{base}/json?b=2&a=1", {}),
        ("POST", f"{base}/echo", {"json": {"q": "hello", "n": [1, 2]}}),
        ("POST", f"{base}/echo", {"data": {"field": "value"}}),
        ("GET", f"{base}/text", {}),
        ("GET", f"{base}/gzip", {}),
        ("GET", f"{base}/binary?size=10000", {}),
        ("GET", f"{base}/status/500", {}),
        ("GET", f"{base}/status/404", {}),
    ]


def _run_sync(lib: ModuleType, base: str) -> list[dict[str, Any]]:
    with lib.Client(transport=agenttape.transport()) as client:
        out = []
        for method, url, kwargs in _calls(base):
            response = client.request(method, url, **kwargs)
            assert isinstance(response, lib.Response)
            out.append(_snapshot(response))
        return out


async def _run_async(lib: ModuleType, base: str) -> list[dict[str, Any]]:
    async with lib.AsyncClient(transport=agenttape.transport()) as client:
        out = []
        for method, url, kwargs in _calls(base):
            response = await client.request(method, url, **kwargs)
            assert isinstance(response, lib.Response)
            out.append(_snapshot(response))
        return out


def _replay_offline(server: LLMServer, record: Callable[[], Any], name: str = "c",
                    **kwargs: Any) -> tuple[Any, Any, agenttape.Session]:
    with agenttape.use_cassette(name, mode="record", **kwargs):
        live = record()
    hits = server.hits
    server.stop()
    with agenttape.use_cassette(name, mode="none", **kwargs) as session:
        replayed = record()
    assert server.hits == hits, "replay reached the network"
    return live, replayed, session


def test_sync_round_trip(lib: ModuleType, llm_server: LLMServer,
                         cassette_file: Callable[[Any], dict[str, Any]]) -> None:
    with agenttape.use_cassette("c", mode="record") as recording:
        live = _run_sync(lib, llm_server.url)
    hits = llm_server.hits
    assert hits == len(_calls(""))
    llm_server.stop()
    with agenttape.use_cassette("c", mode="none") as session:
        replayed = _run_sync(lib, llm_server.url)
    assert llm_server.hits == hits
    assert replayed == live
    assert session.engine is not None and session.engine.replayed == len(live)

    data = cassette_file(recording)
    items = data["interactions"]
    assert {i["kind"] for i in items} == {"http"}
    assert {i["boundary"] for i in items} == {f"127.0.0.1:{llm_server.port}"}
    # Query sorted, JSON bodies as structure, form bodies as fields.
    assert items[0]["request"]["url"] == f"http://127.0.0.1:{llm_server.port}/json?a=1&b=2"
    assert items[1]["request"]["json"] == {"q": "hello", "n": [1, 2]}
    assert items[2]["request"]["form"] == {"field": "value"}
    # No transport headers in requests, no wire encoding in responses.
    for item in items:
        assert not {"user-agent", "accept-encoding", "host", "connection",
                    "content-length"} & set(item["request"]["headers"])
        assert not {"content-encoding", "content-length", "transfer-encoding"} & set(
            item["response"]["headers"])
    gzip_item = items[4]
    assert gzip_item["response"]["json"]["gzipped"] is True
    assert items[3]["response"]["text"].startswith("line one\n")
    assert items[6]["response"]["status_code"] == 500


async def test_async_round_trip(lib: ModuleType, llm_server: LLMServer) -> None:
    async with agenttape.use_cassette("c", mode="record"):
        live = await _run_async(lib, llm_server.url)
    hits = llm_server.hits
    llm_server.stop()
    async with agenttape.use_cassette("c", mode="none"):
        replayed = await _run_async(lib, llm_server.url)
    assert llm_server.hits == hits
    assert replayed == live


def test_gzip_replays_decoded(lib: ModuleType, llm_server: LLMServer) -> None:
    def call() -> Any:
        with lib.Client(transport=agenttape.transport()) as client:
            response = client.get(f"{llm_server.url}/gzip")
            return response.json(), response.headers.get("content-encoding")

    live, replayed, _ = _replay_offline(llm_server, call)
    assert live[0] == replayed[0] == {
        "gzipped": True, "message": "This body was sent gzip-encoded.", "items": [1, 2, 3]}
    # The caller gets the decoded body, so no header may claim it is still gzip.
    assert live[1] is None and replayed[1] is None


def test_binary_body_round_trip(lib: ModuleType, llm_server: LLMServer) -> None:
    payload = bytes(range(256)) * 3

    def call() -> bytes:
        with lib.Client(transport=agenttape.transport()) as client:
            sent = client.post(f"{llm_server.url}/echo", content=payload,
                               headers={"content-type": "application/octet-stream"})
            assert sent.status_code == 200
            return bytes(client.get(f"{llm_server.url}/binary?size=6000").content)

    live, replayed, session = _replay_offline(llm_server, call)
    assert len(live) == 6000 and live[0] == 0xFF
    assert replayed == live
    recorded = agenttape.read_cassette(session.path).interactions
    assert "body_b64" in recorded[0].request  # a request body that is not UTF-8


def test_one_transport_serves_all_four_clients(llm_server: LLMServer) -> None:
    tape = agenttape.transport()
    assert isinstance(tape, httpx.BaseTransport) and isinstance(tape, httpx.AsyncBaseTransport)
    assert isinstance(tape, httpx2.BaseTransport)
    assert isinstance(tape, httpx2.AsyncBaseTransport)

    async def run() -> list[str]:
        results = []
        for module in (httpx, httpx2):
            with module.Client(transport=tape) as client:
                response = client.get(f"{llm_server.url}/json?client=sync")
                assert type(response) is module.Response
                results.append(response.text)
            async with module.AsyncClient(transport=tape) as aclient:
                response = await aclient.get(f"{llm_server.url}/json?client=async")
                assert type(response) is module.Response
                results.append(response.text)
        return results

    live, replayed, _ = _replay_offline(llm_server, lambda: asyncio.run(run()))
    assert live == replayed


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
def test_connect_error_replays_as_the_same_library_exception(
    lib: ModuleType, llm_server: LLMServer, async_: bool
) -> None:
    llm_server.stop()
    url = f"{llm_server.url}/json"

    def call() -> BaseException:
        async def go() -> None:
            async with lib.AsyncClient(transport=agenttape.transport()) as client:
                await client.get(url)

        with pytest.raises(lib.ConnectError) as info:
            if async_:
                asyncio.run(go())
            else:
                with lib.Client(transport=agenttape.transport()) as client:
                    client.get(url)
        return info.value

    live, replayed, session = _replay_offline(llm_server, call)
    assert type(replayed) is type(live) is lib.ConnectError
    recorded = agenttape.read_cassette(session.path).interactions[0]
    assert recorded.error is not None
    assert recorded.error["type"] == "ConnectError"
    assert recorded.error["module"] == lib.__name__
    assert recorded.response is None


def test_error_recorded_by_httpx_replays_for_httpx2(llm_server: LLMServer) -> None:
    llm_server.stop()
    url = f"{llm_server.url}/json"
    with agenttape.use_cassette("c", mode="record"), httpx.Client(
            transport=agenttape.transport()) as client, pytest.raises(httpx.ConnectError):
        client.get(url)
    client2 = httpx2.Client(transport=agenttape.transport())
    with agenttape.use_cassette("c", mode="none"), client2, pytest.raises(httpx2.ConnectError):
        client2.get(url)


@pytest.mark.parametrize("async_", [False, True], ids=["sync", "async"])
def test_streaming_is_not_buffered(lib: ModuleType, llm_server: LLMServer,
                                   cassette_file: Callable[[Any], dict[str, Any]],
                                   async_: bool) -> None:
    url = f"{llm_server.url}/gated-sse?n=3"
    # A buffering transport would wait for the whole body; the timer then opens the gate
    # and the first event arrives with the gate already open, failing the assertion.
    timer = threading.Timer(3.0, llm_server.sse_gate.set)
    timer.start()
    first_before_gate: list[bool] = []

    def on_first() -> None:
        first_before_gate.append(not llm_server.sse_gate.is_set())
        llm_server.sse_gate.set()

    async def go_async() -> list[str]:
        client = lib.AsyncClient(transport=agenttape.transport())
        async with client, client.stream("GET", url) as response:
            lines = []
            async for line in response.aiter_lines():
                if not lines:
                    on_first()
                lines.append(line)
            return lines

    def go() -> list[str]:
        if async_:
            return asyncio.run(go_async())
        with lib.Client(transport=agenttape.transport()) as client, client.stream(
                "GET", url) as response:
            lines = []
            for line in response.iter_lines():
                if not lines:
                    on_first()
                lines.append(line)
            return lines

    try:
        with agenttape.use_cassette("c", mode="record") as recording:
            live = go()
    finally:
        timer.cancel()
    assert first_before_gate == [True]
    hits = llm_server.hits
    llm_server.stop()
    with agenttape.use_cassette("c", mode="none"):
        replayed = go()
    assert llm_server.hits == hits
    assert replayed == live
    assert [line for line in live if line.startswith("data:")] == [
        f'data: {{"index":{i},"of":3}}' for i in range(3)]

    item = cassette_file(recording)["interactions"][0]
    assert item["response"]["events"] == [
        {"event": "tick", "data": {"index": i, "of": 3}} for i in range(3)]
    assert item["metadata"] == {"stream": True, "stream_complete": True}


def test_early_close_warns_and_marks_incomplete(lib: ModuleType, llm_server: LLMServer,
                                                cassette_file: Callable[[Any], dict[str, Any]]
                                                ) -> None:
    url = f"{llm_server.url}/slow-sse?n=5&delay=0.2"

    def first_line() -> str:
        with lib.Client(transport=agenttape.transport()) as client, client.stream(
                "GET", url) as response:
            return next(response.iter_lines())

    warns = pytest.warns(agenttape.StreamingNotRecordedWarning, match="closed before")
    with agenttape.use_cassette("c", mode="record") as recording, warns:
        assert first_line() == "event: tick"
    item = cassette_file(recording)["interactions"][0]
    assert item["metadata"]["stream_complete"] is False
    assert 1 <= len(item["response"]["events"]) < 5
    llm_server.stop()
    with agenttape.use_cassette("c", mode="none"):
        assert first_line() == "event: tick"


def test_streamed_llm_call_against_non_stream_recording(lib: ModuleType,
                                                        llm_server: LLMServer,
                                                        llm_config: Config) -> None:
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    url = f"{llm_server.openai_base_url}/chat/completions"
    with agenttape.use_cassette("c", mode="record", config=llm_config), lib.Client(
            transport=agenttape.transport()) as client:
        assert client.post(url, json=body).json()["object"] == "chat.completion"
    llm_server.stop()
    raises = pytest.raises(agenttape.StreamingReplayError, match="holds no stream")
    with agenttape.use_cassette("c", mode="none", config=llm_config), lib.Client(
            transport=agenttape.transport()) as client, raises:
        client.post(url, json={**body, "stream": True})


def test_passes_through_outside_a_session(lib: ModuleType, llm_server: LLMServer) -> None:
    tape = agenttape.transport()
    with lib.Client(transport=tape) as client:
        assert client.get(f"{llm_server.url}/json?x=1").json() == {"x": "1"}
    assert llm_server.hits == 1
    assert not Path("cassettes").exists()


def test_explicit_session_binding(lib: ModuleType, llm_server: LLMServer) -> None:
    session = agenttape.use_cassette("bound", mode="record")
    tape = agenttape.transport(session=session)
    with lib.Client(transport=tape) as client:
        client.get(f"{llm_server.url}/json?before=1")  # session not entered: passes through
        with session, agenttape.use_cassette("other", mode="record") as other:
            client.get(f"{llm_server.url}/json?inside=1")
    assert llm_server.hits == 2
    assert [i.request["url"].rsplit("?", 1)[1] for i in
            agenttape.read_cassette(session.path).interactions] == ["inside=1"]
    assert agenttape.read_cassette(other.path).interactions == []


def test_model_override_rewrites_the_outgoing_model(lib: ModuleType, llm_server: LLMServer,
                                                    llm_config: Config) -> None:
    config = llm_config.evolve(model_override="gpt-override")
    body = {"model": "gpt-original", "messages": [{"role": "user", "content": "hi"}]}
    with agenttape.use_cassette("c", mode="record", config=config) as session, lib.Client(
            transport=agenttape.transport()) as client:
        answer = client.post(f"{llm_server.openai_base_url}/chat/completions", json=body)
    assert answer.json()["model"] == "gpt-override"
    assert llm_server.requests[-1].json()["model"] == "gpt-override"
    recorded = agenttape.read_cassette(session.path).interactions[0]
    assert recorded.request["model"] == "gpt-override"


def test_outermost_boundary_wins(lib: ModuleType, llm_server: LLMServer) -> None:
    client = lib.Client(transport=agenttape.transport())

    @agenttape.tool
    def fetch(x: int) -> Any:
        return client.get(f"{llm_server.url}/json?x={x}").json()

    try:
        live, replayed, session = _replay_offline(llm_server, lambda: fetch(7))
    finally:
        client.close()
    assert live == replayed == {"x": "7"}
    recorded = agenttape.read_cassette(session.path).interactions
    assert [(i.kind, i.boundary) for i in recorded] == [("tool", "fetch")]


def test_unmatched_request_raises_with_the_request(lib: ModuleType,
                                                   llm_server: LLMServer) -> None:
    raises = pytest.raises(agenttape.UnmatchedInteractionError)
    with agenttape.use_cassette("empty", mode="none"), lib.Client(
            transport=agenttape.transport()) as client, raises as info:
        client.get(f"{llm_server.url}/json?x=1")
    assert info.value.kind == "http"
    assert info.value.request["url"].endswith("/json?x=1")
    assert llm_server.hits == 0


def test_secret_headers_and_query_keys_are_not_recorded(lib: ModuleType, llm_server: LLMServer,
                                                        ) -> None:
    from conftest import SECRET_API_KEY

    def call() -> Any:
        with lib.Client(transport=agenttape.transport()) as client:
            return client.get(f"{llm_server.url}/json?key={SECRET_API_KEY}&q=1", headers={
                "authorization": f"Bearer {SECRET_API_KEY}", "x-api-key": SECRET_API_KEY,
            }).status_code

    with agenttape.use_cassette("c", mode="record") as session:
        call()
    assert SECRET_API_KEY.encode() not in Path(session.path).read_bytes()
    request = agenttape.read_cassette(session.path).interactions[0].request
    assert "authorization" not in request["headers"] and "x-api-key" not in request["headers"]
    # Replaying with another key (or none) still matches.
    llm_server.stop()
    with agenttape.use_cassette("c", mode="none"), lib.Client(
            transport=agenttape.transport()) as client:
        assert client.get(f"{llm_server.url}/json?key=other&q=1").status_code == 200


def test_import_agenttape_imports_no_http_library() -> None:
    code = ("import sys, agenttape; agenttape.hooks(); "
            "print(sorted(m for m in ('httpx', 'httpx2', 'requests') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


async def _gather(*calls: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*calls))


async def test_concurrent_async_requests_replay_by_content(lib: ModuleType,
                                                           llm_server: LLMServer) -> None:
    async def run() -> list[Any]:
        async with lib.AsyncClient(transport=agenttape.transport()) as client:
            responses = await _gather(*(client.get(f"{llm_server.url}/json?i={i}")
                                        for i in range(5)))
            return [r.json() for r in responses]

    async with agenttape.use_cassette("c", mode="record"):
        live = await run()
    llm_server.stop()
    start = time.perf_counter()
    async with agenttape.use_cassette("c", mode="none"):
        replayed = await run()
    assert replayed == live == [{"i": str(i)} for i in range(5)]
    assert time.perf_counter() - start < 5
