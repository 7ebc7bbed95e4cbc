"""The real OpenAI, Anthropic and litellm SDKs through agenttape's clients and hooks:
recorded against the loopback server, then replayed with the server stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from conftest import SECRET_API_KEY
from llm_server import LLMServer

import agenttape
from agenttape.config import Config

TESTS = Path(__file__).parent
REPO = TESTS.parent
USER = [{"role": "user", "content": "hello there"}]


def _openai(server: LLMServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key=SECRET_API_KEY, base_url=server.openai_base_url,
                         http_client=agenttape.http_client(), **kwargs)


def _anthropic(server: LLMServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=SECRET_API_KEY, base_url=server.anthropic_base_url,
                               http_client=agenttape.http_client())


def _offline(server: LLMServer, config: Config, run: Callable[[], Any],
             name: str = "sdk") -> tuple[Any, Any, agenttape.Session]:
    """Record ``run()``, stop the server, replay it; returns (live, replayed, recording)."""
    with agenttape.use_cassette(name, mode="record", config=config) as recording:
        live = run()
    hits = server.hits
    server.stop()
    with agenttape.use_cassette(name, mode="none", config=config) as replaying:
        replayed = run()
    assert server.hits == hits, "replay reached the network"
    assert replaying.engine is not None and replaying.engine.live_count == 0
    assert SECRET_API_KEY.encode() not in Path(recording.path).read_bytes()
    return live, replayed, recording


async def _aoffline(server: LLMServer, config: Config, run: Callable[[], Awaitable[Any]],
                    name: str = "sdk") -> tuple[Any, Any, agenttape.Session]:
    async with agenttape.use_cassette(name, mode="record", config=config) as recording:
        live = await run()
    hits = server.hits
    server.stop()
    async with agenttape.use_cassette(name, mode="none", config=config):
        replayed = await run()
    assert server.hits == hits, "replay reached the network"
    assert SECRET_API_KEY.encode() not in Path(recording.path).read_bytes()
    return live, replayed, recording


# --- OpenAI -----------------------------------------------------------------------------------

def test_openai_chat(llm_server: LLMServer, llm_config: Config,
                     cassette_file: Callable[[Any], dict[str, Any]]) -> None:
    def run() -> Any:
        with _openai(llm_server) as client:
            return client.chat.completions.create(model="gpt-test", messages=USER).model_dump()

    live, replayed, recording = _offline(llm_server, llm_config, run)
    assert replayed == live
    assert live["choices"][0]["message"]["content"] == "Echo: hello there"
    item = cassette_file(recording)["interactions"][0]
    assert (item["kind"], item["boundary"]) == ("llm", "openai")
    assert item["request"] == {"endpoint": "chat.completions", "model": "gpt-test",
                               "messages": USER}
    assert item["response"]["object"] == "chat.completion"
    assert item["usage"] == {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}
    assert item["metadata"]["http"]["status_code"] == 200


def test_openai_chat_stream_with_usage(llm_server: LLMServer, llm_config: Config,
                                       cassette_file: Callable[[Any], dict[str, Any]]) -> None:
    def run() -> Any:
        with _openai(llm_server) as client:
            chunks = list(client.chat.completions.create(
                model="gpt-test", messages=USER, stream=True,
                stream_options={"include_usage": True}))
            return [c.model_dump() for c in chunks]

    live, replayed, recording = _offline(llm_server, llm_config, run)
    assert replayed == live
    text = "".join(c["choices"][0]["delta"]["content"] or "" for c in live if c["choices"])
    assert text == "Echo: hello there"
    assert live[-1]["usage"]["total_tokens"] == 5
    item = cassette_file(recording)["interactions"][0]
    assert item["request"]["stream_options"] == {"include_usage": True}
    assert "stream" not in item["request"]  # transport-only
    assert item["response"][-1] == {"data": "[DONE]"}
    assert item["response"][0]["data"]["object"] == "chat.completion.chunk"
    assert item["usage"] == {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}
    assert item["metadata"]["stream"] is True and item["metadata"]["stream_complete"] is True


def test_openai_responses_stream(llm_server: LLMServer, llm_config: Config,
                                 cassette_file: Callable[[Any], dict[str, Any]]) -> None:
    def run() -> Any:
        with _openai(llm_server) as client, client.responses.stream(
                model="gpt-test", input="stream me") as stream:
            deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
            final = stream.get_final_response()
            return deltas, final.output_text, final.usage.model_dump() if final.usage else None

    live, replayed, recording = _offline(llm_server, llm_config, run)
    assert replayed == live
    assert "".join(live[0]) == live[1] == "Echo: stream me"
    item = cassette_file(recording)["interactions"][0]
    assert item["request"]["endpoint"] == "responses"
    assert item["response"][0]["event"] == "response.created"
    assert item["response"][-1]["event"] == "response.completed"
    assert item["usage"]["total_tokens"] == live[2]["total_tokens"]
    assert item["usage"]["output_tokens"] == 3


def test_openai_embeddings(llm_server: LLMServer, llm_config: Config) -> None:
    def run() -> Any:
        with _openai(llm_server) as client:
            result = client.embeddings.create(model="text-embedding-test", input=["a", "b c"])
            return [d.embedding for d in result.data], result.usage.model_dump()

    live, replayed, recording = _offline(llm_server, llm_config, run)
    assert replayed == live
    assert len(live[0]) == 2 and len(live[0][0]) == 8
    item = agenttape.read_cassette(recording.path).interactions[0]
    assert item.request["endpoint"] == "embeddings"
    assert item.usage == {"input_tokens": 3, "output_tokens": 0, "total_tokens": 3}


async def test_async_openai_chat_and_stream(llm_server: LLMServer, llm_config: Config) -> None:
    async def run() -> Any:
        async with openai.AsyncOpenAI(api_key=SECRET_API_KEY,
                                      base_url=llm_server.openai_base_url,
                                      http_client=agenttape.async_http_client()) as client:
            whole = await client.chat.completions.create(model="gpt-test", messages=USER)
            stream = await client.chat.completions.create(model="gpt-test", messages=USER,
                                                          stream=True)
            pieces = [c.choices[0].delta.content async for c in stream if c.choices]
            return whole.choices[0].message.content, pieces

    live, replayed, _ = await _aoffline(llm_server, llm_config, run)
    assert replayed == live
    assert live[0] == "".join(p or "" for p in live[1]) == "Echo: hello there"


def test_openai_retry_after_500_replays_both_attempts(llm_server: LLMServer,
                                                      llm_config: Config) -> None:
    def run() -> Any:
        with _openai(llm_server) as client:
            return client.chat.completions.create(model="fail-once-500",
                                                  messages=USER).choices[0].message.content

    live, replayed, recording = _offline(llm_server, llm_config, run)
    assert live == replayed == "Echo: hello there"
    statuses = [i.metadata["http"]["status_code"]
                for i in agenttape.read_cassette(recording.path).interactions]
    assert statuses == [500, 200]


def test_openai_plain_http_kind_keeps_the_key_out(llm_server: LLMServer) -> None:
    """Without llm_hosts the loopback server is plain HTTP: headers are recorded, minus
    the key and the SDK's machine-dependent ones."""
    config = Config(cassette_dir=Path.cwd() / "cassettes")

    def run() -> Any:
        with _openai(llm_server) as client:
            return client.chat.completions.create(model="gpt-test", messages=USER).id

    live, replayed, recording = _offline(llm_server, config, run)
    assert live == replayed
    request = agenttape.read_cassette(recording.path).interactions[0].request
    assert request["json"]["model"] == "gpt-test"
    assert "authorization" not in request["headers"]
    assert not [h for h in request["headers"] if h.startswith("x-stainless")]


# --- Anthropic --------------------------------------------------------------------------------

def test_anthropic_create(llm_server: LLMServer, llm_config: Config) -> None:
    def run() -> Any:
        with _anthropic(llm_server) as client:
            return client.messages.create(model="claude-test", max_tokens=64,
                                          messages=USER).model_dump()

    live, replayed, recording = _offline(llm_server, llm_config, run)
    assert replayed == live
    assert live["content"][0]["text"] == "Echo: hello there"
    item = agenttape.read_cassette(recording.path).interactions[0]
    assert (item.kind, item.boundary) == ("llm", "anthropic")
    assert item.request == {"endpoint": "messages", "model": "claude-test", "max_tokens": 64,
                            "messages": USER}
    assert item.usage == {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}


def test_anthropic_stream_text(llm_server: LLMServer, llm_config: Config,
                               cassette_file: Callable[[Any], dict[str, Any]]) -> None:
    def run() -> Any:
        with _anthropic(llm_server) as client, client.messages.stream(
                model="claude-test", max_tokens=64, messages=USER) as stream:
            text = "".join(stream.text_stream)
            return text, stream.get_final_message().model_dump()

    live, replayed, recording = _offline(llm_server, llm_config, run)
    assert replayed == live
    assert live[0] == "Echo: hello there"
    item = cassette_file(recording)["interactions"][0]
    assert [e["event"] for e in item["response"]][:2] == ["message_start", "content_block_start"]
    assert item["response"][-1]["event"] == "message_stop"
    # message_start holds the input count, message_delta the final output count.
    assert item["usage"] == {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}
    assert item["metadata"]["stream_complete"] is True


async def test_async_anthropic(llm_server: LLMServer, llm_config: Config) -> None:
    async def run() -> Any:
        async with anthropic.AsyncAnthropic(api_key=SECRET_API_KEY,
                                            base_url=llm_server.anthropic_base_url,
                                            http_client=agenttape.async_http_client()) as client:
            message = await client.messages.create(model="claude-test", max_tokens=64,
                                                   messages=USER)
            async with client.messages.stream(model="claude-test", max_tokens=64,
                                              messages=USER) as stream:
                text = "".join([t async for t in stream.text_stream])
            return message.content[0].model_dump(), text

    live, replayed, _ = await _aoffline(llm_server, llm_config, run)
    assert replayed == live
    assert live[1] == "Echo: hello there"


# --- hooks ------------------------------------------------------------------------------------

def _import_litellm(monkeypatch: pytest.MonkeyPatch) -> Any:
    # Its import would otherwise fetch a price list from the internet (and retry for 7 s).
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic warns about litellm's own TypedDicts
        return pytest.importorskip("litellm")


# litellm imports more of itself lazily during a call; pydantic warns about its TypedDicts.
@pytest.mark.filterwarnings("ignore:Item.*ReadOnly:UserWarning")
def test_litellm_through_its_hook(llm_server: LLMServer, llm_config: Config,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    litellm = _import_litellm(monkeypatch)

    def run() -> Any:
        result = litellm.completion(model="openai/gpt-4o-mini", messages=USER,
                                    api_base=llm_server.openai_base_url, api_key=SECRET_API_KEY)
        return result.choices[0].message.content

    before = litellm.client_session
    live, replayed, recording = _offline(llm_server, llm_config, run)
    assert live == replayed == "Echo: hello there"
    assert litellm.client_session is before
    item = agenttape.read_cassette(recording.path).interactions[0]
    assert (item.kind, item.boundary, item.request["model"]) == ("llm", "openai", "gpt-4o-mini")


_MODULE_SCRIPT = """
import json, sys
import openai, agenttape
from agenttape.config import Config

config = Config(cassette_dir=sys.argv[2], llm_hosts=[sys.argv[3]])
with agenttape.use_cassette("module", mode=sys.argv[1], config=config):
    inside = openai.http_client is not None
    answer = openai.chat.completions.create(model="gpt-test", messages=[
        {"role": "user", "content": "module level"}])
print(json.dumps({"content": answer.choices[0].message.content, "inside": inside,
                  "restored": openai.http_client is None}))
"""


def _run_script(script: str, *args: str, env: dict[str, str], path: list[str]) -> Any:
    full_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(path)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args],
                          capture_output=True, text=True, env=full_env, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_openai_module_level_client_through_its_hook(llm_server: LLMServer,
                                                     tmp_path: Path) -> None:
    # A fresh process: the module-level client is process-wide state, configured from the
    # environment the way its users usually do.
    env = {"OPENAI_API_KEY": SECRET_API_KEY, "OPENAI_BASE_URL": llm_server.openai_base_url}
    args = (str(tmp_path), f"127.0.0.1:{llm_server.port}")
    live = _run_script(_MODULE_SCRIPT, "record", *args, env=env, path=[str(REPO)])
    hits = llm_server.hits
    llm_server.stop()
    replayed = _run_script(_MODULE_SCRIPT, "none", *args, env=env, path=[str(REPO)])
    assert llm_server.hits == hits == 1
    assert live == replayed == {"content": "Echo: module level", "inside": True,
                                "restored": True}
    assert SECRET_API_KEY.encode() not in (tmp_path / "module.yaml").read_bytes()


_OPENAI2_SCRIPT = """
import json, sys
import httpx, openai, agenttape
from agenttape.config import Config
from llm_server import LLMServer

assert openai.__version__.startswith("2."), openai.__version__
KEY = sys.argv[2]
server = LLMServer().start()
config = Config(cassette_dir=sys.argv[1], llm_hosts=[f"127.0.0.1:{server.port}"])
messages = [{"role": "user", "content": "from openai two"}]

def run():
    client = openai.OpenAI(api_key=KEY, base_url=server.openai_base_url,
                           http_client=agenttape.http_client(library="httpx"))
    whole = client.chat.completions.create(model="gpt-test", messages=messages)
    chunks = client.chat.completions.create(model="gpt-test", messages=messages, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    module = openai.chat.completions.create(model="gpt-test", messages=messages)
    assert isinstance(openai.http_client, httpx.Client)
    return [whole.choices[0].message.content, text, module.choices[0].message.content]

openai.api_key = KEY  # the module client's documented settings, in a throwaway process
openai.base_url = server.openai_base_url + "/"
with agenttape.use_cassette("two", mode="record", config=config):
    live = run()
hits = server.hits
server.stop()
with agenttape.use_cassette("two", mode="none", config=config):
    replayed = run()
print(json.dumps({"live": live, "replayed": replayed, "hits": [hits, server.hits]}))
"""


def test_openai_2x_on_httpx(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    """openai 2.x (built on httpx, not httpx2), installed beside this environment's openai."""
    cache = getattr(pytestconfig, "cache", None)  # absent under -p no:cacheprovider
    target = cache.mkdir("openai2-site") if cache is not None else tmp_path
    if not (target / "openai" / "__init__.py").exists():
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade",
             "--target", str(target), "openai>=2,<3"],
            capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            pytest.skip(f"cannot install openai<3 from the package registry: {done.stderr[-500:]}")
    # openai 2.x's own dependencies (httpx, pydantic, anyio, ...) come from this environment.
    result = _run_script(_OPENAI2_SCRIPT, str(tmp_path), SECRET_API_KEY, env={},
                         path=[str(target), str(REPO), str(TESTS)])
    expected = "Echo: from openai two"
    assert result["live"] == result["replayed"] == [expected] * 3
    assert result["hits"][0] == result["hits"][1] == 3
    assert SECRET_API_KEY.encode() not in (tmp_path / "two.yaml").read_bytes()
