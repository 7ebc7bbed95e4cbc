"""An Anthropic agent that streams its answer (`client.messages.stream`), replayed offline.

    python examples/anthropic_streaming_agent.py            # replay: no key, no network
    python examples/anthropic_streaming_agent.py --record   # re-record against the stand-in

A trip assistant retrieves notes, streams a first turn in which the model asks for the
`get_forecast` tool, runs it, and streams the final answer token by token. agenttape records
each stream as its server-sent events and replays them as a real stream, so the SDK's own
stream helpers (`text_stream`, `get_final_message`) work unchanged offline.

The committed cassette was recorded against agenttape's loopback Anthropic stand-in, whose
fake model calls every tool named in the question and passes the question as arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from anthropic import Anthropic

import agenttape
from agenttape._standin import LLMServer

ROOT = Path(__file__).resolve().parent.parent
CASSETTE_DIR = ROOT / "cassettes" / "examples"
CASSETTE = "anthropic_streaming_agent"
# Nothing listens here: a call that escaped the cassette would fail instead of going out.
OFFLINE_URL = "http://127.0.0.1:9"
MODEL = "claude-haiku-4-5"
QUESTION = "We hike in the Dolomites on Saturday. Use get_forecast and tell us what to pack."

executed: Counter[str] = Counter()


@agenttape.retrieval
def search_notes(query: str) -> list[str]:
    executed["search_notes"] += 1
    return ["Dolomites: start before 8am, storms build after 2pm", "Pack: layers, 2 l water"]


@agenttape.tool
def get_forecast(place: str) -> dict[str, Any]:
    executed["get_forecast"] += 1  # in production: a weather API
    return {"place": place, "saturday": "sunny, 24°C, thunderstorms after 15:00"}


TOOLS: list[Any] = [{
    "name": "get_forecast",
    "description": "Weather forecast for a place",
    "input_schema": {
        "type": "object",
        "properties": {"place": {"type": "string"}},
        "required": ["place"],
    },
}]


def stream_turn(client: Anthropic, system: str, messages: list[Any], out: list[str]) -> Any:
    """One streamed model turn: print text as it arrives, return the final message."""
    with client.messages.stream(model=MODEL, max_tokens=512, system=system,
                                messages=messages, tools=TOOLS) as stream:
        for text in stream.text_stream:
            out.append(text)
            print(text, end="", flush=True)
        return stream.get_final_message()


def run_agent(client: Anthropic, question: str) -> str:
    system = "You are a trip assistant. Notes:\n" + "\n".join(search_notes("Dolomites"))
    messages: list[Any] = [{"role": "user", "content": question}]
    out: list[str] = []
    message = stream_turn(client, system, messages, out)
    while message.stop_reason == "tool_use":
        messages.append({"role": "assistant", "content": message.content})
        results = [
            {"type": "tool_result", "tool_use_id": block.id,
             "content": str(get_forecast(**block.input))}
            for block in message.content if block.type == "tool_use"
        ]
        messages.append({"role": "user", "content": results})
        out.clear()
        message = stream_turn(client, system, messages, out)
    print()
    return "".join(out)


def run(mode: str, base_url: str,
        cassette_dir: Path = CASSETTE_DIR) -> tuple[str, agenttape.Session]:
    """Run the agent once inside a session; returns the streamed answer and the session."""
    config = agenttape.Config.load(ROOT)  # the repository's agenttape.toml, whatever the cwd
    # Anthropic accepts only httpx2 clients; agenttape.http_client() is one when installed.
    with (
        Anthropic(base_url=base_url, api_key="sk-ant-example-NOT-A-REAL-KEY",
                  http_client=agenttape.http_client()) as client,
        agenttape.use_cassette(CASSETTE, mode=mode, config=config,
                               cassette_dir=cassette_dir) as session,
    ):
        answer = run_agent(client, QUESTION)
    return answer, session


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="re-record the cassette")
    args = parser.parse_args(argv)
    if args.record:
        with LLMServer() as server:
            _, session = run("record", server.anthropic_base_url)
        print(f"recorded {session.path}")
    else:
        _, session = run("none", OFFLINE_URL)
    assert session.engine is not None
    print(f"{session.engine.replayed} replayed, {session.engine.live_count} live; "
          f"really executed: {dict(executed) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
