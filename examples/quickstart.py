"""The main job in one script: record a tool-using agent, then replay it with the network off.

    make demo        (or: python examples/quickstart.py)

1. starts a loopback OpenAI-compatible stand-in (no key, no internet),
2. runs a small agent — the real `openai` SDK, two tools and a retrieval — while recording,
3. stops the stand-in, so any network call would now fail,
4. replays the same agent from the cassette and prints the timeline.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from openai import OpenAI

import agenttape
from agenttape._standin import LLMServer

CASSETTE_DIR = Path(__file__).resolve().parent.parent / "cassettes" / "demo"
executed: Counter[str] = Counter()


@agenttape.tool
def get_weather(city: str) -> dict[str, Any]:
    executed["get_weather"] += 1
    return {"city": city, "forecast": "sunny", "high_c": 21}


@agenttape.tool
def book_table(city: str) -> str:
    executed["book_table"] += 1
    return f"table for two booked in {city} at 19:30"


@agenttape.retrieval
def search_guides(query: str) -> list[str]:
    executed["search_guides"] += 1
    return [f"guide: 3 terraces in {query}", f"guide: best views in {query}"]


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    for name, description in [
        ("get_weather", "Weather forecast for a city"),
        ("book_table", "Book a restaurant table"),
    ]
]
IMPLEMENTATIONS = {"get_weather": get_weather, "book_table": book_table}


def run_agent(client: OpenAI, question: str) -> str:
    """One tool-calling round trip: ask, run the tools the model picks, ask again."""
    context = search_guides("Lisbon")
    messages: list[Any] = [
        {"role": "system", "content": "You plan evenings.\nUse the guides:\n" + "\n".join(context)},
        {"role": "user", "content": question},
    ]
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=TOOLS)
    message = reply.choices[0].message
    messages.append(message.model_dump(exclude_none=True))
    for call in message.tool_calls or []:
        result = IMPLEMENTATIONS[call.function.name](**json.loads(call.function.arguments))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    final = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    return final.choices[0].message.content or ""


def main() -> int:
    question = "Check get_weather and book_table for Lisbon tonight."
    server = LLMServer().start()
    # Created once, like an app would: agenttape's http_client finds the active session itself.
    client = OpenAI(
        base_url=server.openai_base_url,
        api_key="sk-demo-NOT-A-REAL-KEY-0123456789abcdef",
        http_client=agenttape.http_client(),
    )

    print("1. recording against the loopback stand-in", server.url)
    with agenttape.use_cassette("quickstart", mode="record", cassette_dir=CASSETTE_DIR) as rec:
        recorded = run_agent(client, question)
    print(f"   answer: {recorded}")
    print(f"   tools executed: {dict(executed)}; server requests: {server.hits}")
    print(f"   cassette: {rec.path}")

    server.stop()
    hits_before = server.hits
    executed.clear()
    print("\n2. stand-in stopped; replaying offline")
    with agenttape.use_cassette("quickstart", mode="none", cassette_dir=CASSETTE_DIR) as play:
        replayed = run_agent(client, question)
    print(f"   answer: {replayed}")

    assert play.engine is not None
    print("\n3. timeline")
    for item in play.engine.timeline():
        tokens = (item.usage or {}).get("total_tokens")
        extra = f"  {tokens} tokens" if tokens else ""
        print(f"   #{item.index} {item.kind:<10} {item.boundary:<14} replayed{extra}")

    network_calls = server.hits - hits_before
    print(
        f"\n{play.engine.replayed} interactions replayed, {network_calls} network calls, "
        f"{play.engine.tokens_saved} tokens not spent"
    )
    ok = replayed == recorded and not executed and network_calls == 0
    print("tools executed during replay:", sum(executed.values()))
    print("OK: replay matched the recording" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
