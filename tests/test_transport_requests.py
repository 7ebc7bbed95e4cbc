"""The requests adapter: real ``requests`` over real sockets, recorded then replayed offline."""

from __future__ import annotations

import io
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from llm_server import LLMServer
from requests.adapters import HTTPAdapter

import agenttape
from agenttape._storage import read_cassette
from agenttape.transports.requests import requests_adapter, requests_session

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture
def http() -> Iterator[requests.Session]:
    client = requests_session()
    yield client
    client.close()


def _record_and_replay(
    llm_server: LLMServer, http: requests.Session, call: Any, name: str = "c"
) -> tuple[Any, Any]:
    """Run ``call(http)`` while recording, stop the server, run it again from the cassette."""
    with agenttape.use_cassette(name, mode="record"):
        live = call(http)
    hits = llm_server.hits
    llm_server.stop()
    with agenttape.use_cassette(name, mode="none") as session:
        replayed = call(http)
    assert llm_server.hits == hits
    assert session.engine is not None and session.engine.replayed >= 1
    return live, replayed


def _interactions(name: str = "c") -> list[agenttape.Interaction]:
    return read_cassette(Path("cassettes") / f"{name}.yaml").interactions


def _snapshot(resp: requests.Response) -> dict[str, Any]:
    return {
        "status": resp.status_code,
        "reason": resp.reason,
        "content_type": resp.headers.get("content-type"),
        "content": resp.content,
        "text": resp.text,
    }


# --- plain HTTP -------------------------------------------------------------------------------


def test_json_replays_identically_offline(llm_server: LLMServer, http: requests.Session) -> None:
    def call(client: requests.Session) -> dict[str, Any]:
        resp = client.get(f"{llm_server.url}/json", params={"b": "2", "a": "one"})
        return {**_snapshot(resp), "json": resp.json(), "url": resp.url}

    live, replayed = _record_and_replay(llm_server, http, call)
    assert live["json"] == {"a": "one", "b": "2"}
    assert replayed == live
    [interaction] = _interactions()
    assert interaction.kind == "http"
    assert interaction.boundary == f"127.0.0.1:{llm_server.port}"
    assert interaction.request["method"] == "GET"
    assert interaction.response["json"] == {"a": "one", "b": "2"}


def test_text_lines_and_chunks(llm_server: LLMServer, http: requests.Session) -> None:
    def call(client: requests.Session) -> dict[str, Any]:
        lines = list(client.get(f"{llm_server.url}/text").iter_lines(decode_unicode=True))
        resp = client.get(f"{llm_server.url}/text", stream=True)
        chunks = list(resp.iter_content(chunk_size=7))
        return {"lines": lines, "chunks": chunks, "encoding": resp.encoding}

    live, replayed = _record_and_replay(llm_server, http, call)
    assert live["lines"][1] == "line two: naïve café ✓"
    assert all(len(chunk) <= 7 for chunk in replayed["chunks"])
    assert replayed == live


@pytest.mark.parametrize("size", [100, 20_000])
def test_binary_bodies(llm_server: LLMServer, http: requests.Session, size: int) -> None:
    def call(client: requests.Session) -> dict[str, Any]:
        return _snapshot(client.get(f"{llm_server.url}/binary", params={"size": size}))

    live, replayed = _record_and_replay(llm_server, http, call)
    assert len(live["content"]) == size and live["content"][0] == 0xFF
    assert replayed == live


@pytest.mark.parametrize("stream", [False, True])
def test_gzip_is_stored_decoded_and_replays(
    llm_server: LLMServer, http: requests.Session, stream: bool
) -> None:
    def call(client: requests.Session) -> tuple[dict[str, Any], Any]:
        resp = client.get(f"{llm_server.url}/gzip", stream=stream)
        return resp.json(), resp.headers.get("content-encoding")

    (live_json, live_encoding), (replayed_json, replayed_encoding) = _record_and_replay(
        llm_server, http, call
    )
    assert live_encoding == "gzip" and replayed_encoding is None
    assert replayed_json == live_json == {
        "gzipped": True, "message": "This body was sent gzip-encoded.", "items": [1, 2, 3]
    }
    [interaction] = _interactions()
    assert interaction.response["json"] == live_json
    assert "content-encoding" not in interaction.response["headers"]
    assert "content-length" not in interaction.response["headers"]


@pytest.mark.parametrize("code", [404, 500])
def test_error_statuses_are_responses(
    llm_server: LLMServer, http: requests.Session, code: int
) -> None:
    def call(client: requests.Session) -> dict[str, Any]:
        resp = client.get(f"{llm_server.url}/status/{code}")
        with pytest.raises(requests.HTTPError):
            resp.raise_for_status()
        return {**_snapshot(resp), "json": resp.json()}

    live, replayed = _record_and_replay(llm_server, http, call)
    assert live["status"] == code
    assert replayed == live
    [interaction] = _interactions()
    assert interaction.error is None and interaction.response["status_code"] == code


def test_post_body_is_matched(llm_server: LLMServer, http: requests.Session) -> None:
    def call(client: requests.Session) -> Any:
        return client.post(f"{llm_server.url}/echo", json={"q": "cats", "n": 2}).json()["body"]

    live, replayed = _record_and_replay(llm_server, http, call)
    assert json.loads(live) == {"q": "cats", "n": 2} and replayed == live
    with agenttape.use_cassette("c", mode="none"), pytest.raises(
        agenttape.UnmatchedInteractionError
    ):
        http.post(f"{llm_server.url}/echo", json={"q": "dogs", "n": 2})


def test_streamed_upload_is_recorded_and_still_sent(
    llm_server: LLMServer, http: requests.Session
) -> None:
    def call(client: requests.Session) -> Any:
        parts = iter([b"first,", b"second"])
        return client.post(f"{llm_server.url}/echo", data=parts).json()["body"]

    live, replayed = _record_and_replay(llm_server, http, call)
    assert live == replayed == "first,second"


def test_each_redirect_hop_is_recorded_and_replayed() -> None:
    # llm_server has no redirect route; a two-route stdlib server stands in.
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            body = b'{"moved": true}' if self.path == "/new" else b""
            self.send_response(200 if self.path == "/new" else 302)
            self.send_header("Location", "/new")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/old"
    client = requests_session()
    try:
        with agenttape.use_cassette("c", mode="record"):
            live = client.get(url)
    finally:
        server.shutdown()
        server.server_close()
    with agenttape.use_cassette("c", mode="none"):
        replayed = client.get(url)
    client.close()
    assert seen == ["/old", "/new"]
    assert [r.status_code for r in replayed.history] == [r.status_code for r in live.history]
    assert (replayed.url, replayed.json()) == (live.url, {"moved": True})
    assert [i.request["url"].rsplit("/", 1)[-1] for i in _interactions()] == ["old", "new"]


# --- transport errors -------------------------------------------------------------------------


def test_connect_error_replays_as_the_same_exception(
    llm_server: LLMServer, http: requests.Session
) -> None:
    url = f"{llm_server.url}/json"
    llm_server.stop()
    with agenttape.use_cassette("c", mode="record"), pytest.raises(
        requests.exceptions.ConnectionError
    ) as live:
        http.get(url, timeout=5)
    [interaction] = _interactions()
    assert interaction.response is None
    assert interaction.error is not None
    assert interaction.error["type"] == "ConnectionError"
    assert interaction.error["module"] == "requests"
    with agenttape.use_cassette("c", mode="none"), pytest.raises(
        requests.exceptions.ConnectionError
    ) as replayed:
        http.get(url, timeout=5)
    assert type(replayed.value) is type(live.value)
    assert replayed.value.request is not None and replayed.value.request.url == url


def test_read_timeout_replays_as_the_same_exception(
    llm_server: LLMServer, http: requests.Session
) -> None:
    # Headers arrive at once, then the body stalls: requests raises while reading it.
    url = f"{llm_server.url}/slow-sse?n=3&delay=2"
    with agenttape.use_cassette("c", mode="record"), pytest.raises(
        requests.exceptions.RequestException
    ) as live:
        http.get(url, timeout=0.3)
    llm_server.stop()
    with agenttape.use_cassette("c", mode="none"), pytest.raises(
        requests.exceptions.RequestException
    ) as replayed:
        http.get(url, timeout=0.3)
    assert type(replayed.value) is type(live.value)


# --- streaming --------------------------------------------------------------------------------


def test_sse_is_teed_chunk_by_chunk_and_replayed(
    llm_server: LLMServer, http: requests.Session
) -> None:
    url = f"{llm_server.url}/gated-sse?n=3"
    with agenttape.use_cassette("c", mode="record"):
        # The server holds everything after the first event until the gate opens. Were the
        # adapter to buffer the body, the first line would only come after this timer fired.
        opener = threading.Timer(3.0, llm_server.sse_gate.set)
        opener.start()
        try:
            resp = http.get(url, stream=True, timeout=10)
            lines = resp.iter_lines()
            first = next(lines)
            assert not llm_server.sse_gate.is_set()
        finally:
            opener.cancel()
        llm_server.sse_gate.set()
        live = [first, *lines]
    assert live[:2] == [b"event: tick", b'data: {"index":0,"of":3}']
    [interaction] = _interactions()
    assert interaction.metadata.get("stream_complete", True) is True
    llm_server.stop()

    with agenttape.use_cassette("c", mode="none"):
        chunks = list(http.get(url, stream=True).iter_content(chunk_size=None))
    # One recorded event per chunk, as the server sent them (not one joined body).
    assert len(chunks) == 3 and all(chunk.startswith(b"event: tick") for chunk in chunks)
    assert b"".join(chunks).splitlines() == live


def test_early_close_keeps_what_was_read(llm_server: LLMServer, http: requests.Session) -> None:
    url = f"{llm_server.url}/slow-sse?n=5&delay=0.05"
    with agenttape.use_cassette("c", mode="record"):
        resp = http.get(url, stream=True, timeout=10)
        first = next(resp.iter_lines())
        with pytest.warns(agenttape.StreamingNotRecordedWarning):
            resp.close()
    assert first == b"event: tick"
    [interaction] = _interactions()
    assert interaction.metadata["stream_complete"] is False


def test_raw_file_copy_idiom(llm_server: LLMServer, http: requests.Session) -> None:
    def call(client: requests.Session) -> bytes:
        target = io.BytesIO()
        with client.get(f"{llm_server.url}/binary?size=3000", stream=True) as resp:
            shutil.copyfileobj(resp.raw, target, length=1000)
        return target.getvalue()

    live, replayed = _record_and_replay(llm_server, http, call)
    assert len(live) == 3000 and replayed == live
    [interaction] = _interactions()
    assert "body_b64" in interaction.response  # stored whole, not as 1000-byte pieces


def test_stream_true_on_a_plain_body(llm_server: LLMServer, http: requests.Session) -> None:
    def call(client: requests.Session) -> bytes:
        with client.get(f"{llm_server.url}/big?mb=0.25", stream=True) as resp:
            return b"".join(resp.iter_content(chunk_size=8192))

    live, replayed = _record_and_replay(llm_server, http, call)
    assert len(live) == 256 * 1024 and replayed == live


# --- LLM calls --------------------------------------------------------------------------------


def _llm_config(llm_server: LLMServer) -> agenttape.Config:
    return agenttape.Config.load().evolve(llm_hosts=[f"127.0.0.1:{llm_server.port}"])


def test_openai_chat_posted_with_requests_is_an_llm_call(
    llm_server: LLMServer, http: requests.Session
) -> None:
    config = _llm_config(llm_server)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}

    def call() -> dict[str, Any]:
        resp = http.post(
            f"{llm_server.openai_base_url}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {SECRET}"},
        )
        return resp.json()  # type: ignore[no-any-return]

    with agenttape.use_cassette("c", mode="record", config=config) as session:
        live = call()
    assert live["choices"][0]["message"]["content"] == "Echo: hello there"
    assert SECRET not in session.path.read_text(encoding="utf-8")
    assert "sk-" not in session.path.read_text(encoding="utf-8")
    [interaction] = _interactions()
    assert (interaction.kind, interaction.boundary) == ("llm", "openai")
    assert interaction.request["endpoint"] == "chat.completions"
    assert interaction.request["model"] == "gpt-4o-mini"
    assert interaction.usage is not None and interaction.usage["input_tokens"] > 0
    llm_server.stop()

    with agenttape.use_cassette("c", mode="none", config=config):
        assert call() == live


def test_openai_stream_posted_with_requests(llm_server: LLMServer, http: requests.Session) -> None:
    config = _llm_config(llm_server)
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "stream me please"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    def call() -> list[bytes]:
        url = f"{llm_server.openai_base_url}/chat/completions"
        with http.post(url, json=body, stream=True) as resp:
            return [line for line in resp.iter_lines() if line]

    with agenttape.use_cassette("c", mode="record", config=config):
        live = call()
    assert live[-1] == b"data: [DONE]"
    [interaction] = _interactions()
    assert interaction.kind == "llm"
    assert interaction.usage is not None and interaction.usage["output_tokens"] == 4
    llm_server.stop()
    with agenttape.use_cassette("c", mode="none", config=config):
        assert call() == live


def test_streamed_call_against_a_non_streamed_recording(
    llm_server: LLMServer, http: requests.Session
) -> None:
    config = _llm_config(llm_server)
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    url = f"{llm_server.openai_base_url}/chat/completions"
    with agenttape.use_cassette("c", mode="record", config=config):
        http.post(url, json=body)
    llm_server.stop()
    with agenttape.use_cassette("c", mode="none", config=config), pytest.raises(
        agenttape.StreamingReplayError
    ):
        http.post(url, json={**body, "stream": True}, stream=True)


def test_model_override_changes_what_is_sent(
    llm_server: LLMServer, http: requests.Session
) -> None:
    config = _llm_config(llm_server).evolve(model_override="cheap-model")
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    with agenttape.use_cassette("c", mode="record", config=config):
        answer = http.post(f"{llm_server.openai_base_url}/chat/completions", json=body).json()
    assert llm_server.requests[-1].json()["model"] == "cheap-model"
    assert answer["model"] == "cheap-model"
    [interaction] = _interactions()
    assert interaction.request["model"] == "cheap-model"


# --- binding ----------------------------------------------------------------------------------


def test_passes_through_outside_a_session(llm_server: LLMServer, http: requests.Session) -> None:
    assert http.get(f"{llm_server.url}/json", params={"x": "1"}).json() == {"x": "1"}
    resp = http.get(f"{llm_server.url}/slow-sse?n=2&delay=0.01", stream=True)
    assert [line for line in resp.iter_lines() if line.startswith(b"event")] == [
        b"event: tick", b"event: tick"]
    assert llm_server.hits == 2
    assert not Path("cassettes").exists()


def test_requests_session_mounts_one_adapter_for_both_schemes() -> None:
    client = requests_session()
    http_adapter = client.get_adapter("http://example.test/")
    assert http_adapter is client.get_adapter("https://example.test/")
    assert isinstance(http_adapter, HTTPAdapter)
    assert type(http_adapter).__module__ == "agenttape.transports.requests"
    client.close()


def test_adapter_mounted_by_hand_and_bound_to_an_explicit_session(
    llm_server: LLMServer,
) -> None:
    session = agenttape.use_cassette("bound", mode="record")
    client = requests.Session()
    client.mount("http://", requests_adapter(session=session))
    with session:
        client.get(f"{llm_server.url}/json", params={"k": "v"})
    # Bound to a session that has ended: back to plain requests, nothing recorded.
    client.get(f"{llm_server.url}/json", params={"k": "w"})
    assert llm_server.hits == 2
    [interaction] = _interactions("bound")
    assert "k=v" in interaction.request["url"]


def test_wrapped_adapter_does_the_sending(llm_server: LLMServer) -> None:
    sent: list[str] = []

    class Counting(HTTPAdapter):
        def send(self, request: requests.PreparedRequest, *args: Any,
                 **kwargs: Any) -> requests.Response:
            sent.append(request.url or "")
            return super().send(request, *args, **kwargs)

    client = requests.Session()
    client.mount("http://", requests_adapter(wrapped=Counting(), max_retries=0))
    with agenttape.use_cassette("c", mode="record"):
        assert client.get(f"{llm_server.url}/json?a=1").json() == {"a": "1"}
    assert sent == [f"{llm_server.url}/json?a=1"]
    llm_server.stop()
    with agenttape.use_cassette("c", mode="none"):
        assert client.get(f"{llm_server.url}/json?a=1").json() == {"a": "1"}
    assert len(sent) == 1
    client.close()
