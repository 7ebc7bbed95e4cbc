"""An OpenAI tool-calling agent — two tools and a retrieval — replayed from its cassette.

    python examples/openai_tools_agent.py            # replay offline: no key, no network
    python examples/openai_tools_agent.py --record   # re-record against the loopback stand-in

A support agent looks up the refund policy, then lets the model call `get_order` and
`issue_refund` until it has an answer. `issue_refund` is the kind of tool a test must never
run for real: on replay it returns its recorded result without executing.

The committed cassette was recorded against agenttape's loopback OpenAI stand-in, whose fake
model calls every tool named in the question and passes the question as string arguments;
the agent code is the same you would run against api.openai.com.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from openai import OpenAI

import agenttape
from agenttape._standin import LLMServer

ROOT = Path(__file__).resolve().parent.parent
CASSETTE_DIR = ROOT / "cassettes" / "examples"
CASSETTE = "openai_tools_agent"
# Replay points the SDK at a port where nothing listens: a call that escaped the cassette
# would fail loudly instead of reaching any network.
OFFLINE_URL = "http://127.0.0.1:9/v1"
QUESTION = "My order A-1042 arrived broken. Check get_order, then issue_refund if it qualifies."

# How many times each boundary really ran (replay must leave this empty).
executed: Counter[str] = Counter()


@agenttape.retrieval
def search_policies(query: str) -> list[str]:
    executed["search_policies"] += 1
    return [
        "Refunds: damaged items are refunded in full within 30 days of delivery.",
        "Refunds: the refund goes back to the original payment method.",
    ]


@agenttape.tool
def get_order(order_id: str) -> dict[str, Any]:
    executed["get_order"] += 1
    return {"order_id": order_id, "status": "delivered", "total_cents": 5900, "days_ago": 3}


@agenttape.tool
def issue_refund(order_id: str, amount_cents: int) -> dict[str, Any]:
    executed["issue_refund"] += 1  # in production: the payment provider's refund API
    return {"order_id": order_id, "refunded_cents": amount_cents, "status": "refunded"}


TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Look up an order by id",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "issue_refund",
            "description": "Refund an order, in cents",
            "parameters": {
                "type": "object",
                "properties": {
                    "order_id": {"type": "string"},
                    "amount_cents": {"type": "integer"},
                },
                "required": ["order_id", "amount_cents"],
            },
        },
    },
]
IMPLEMENTATIONS = {"get_order": get_order, "issue_refund": issue_refund}


def run_agent(client: OpenAI, question: str, max_rounds: int = 5) -> str:
    """Ask, run the tools the model picks, feed their results back; stop at a plain answer."""
    policies = search_policies(question)
    messages: list[Any] = [
        {"role": "system", "content": "You are a support agent. Policies:\n" + "\n".join(policies)},
        {"role": "user", "content": question},
    ]
    for _ in range(max_rounds):
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, tools=TOOLS)
        message = reply.choices[0].message
        if not message.tool_calls:
            return message.content or ""
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            function = call.function
            result = IMPLEMENTATIONS[function.name](**json.loads(function.arguments))
            messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    raise RuntimeError(f"no answer after {max_rounds} rounds")


def run(mode: str, base_url: str,
        cassette_dir: Path = CASSETTE_DIR) -> tuple[str, agenttape.Session]:
    """Run the agent once inside a session; returns the answer and the (closed) session."""
    config = agenttape.Config.load(ROOT)  # the repository's agenttape.toml, whatever the cwd
    with (
        OpenAI(base_url=base_url, api_key="sk-example-NOT-A-REAL-KEY",
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
            answer, session = run("record", server.openai_base_url)
        print(f"recorded {session.path}")
    else:
        answer, session = run("none", OFFLINE_URL)
    assert session.engine is not None
    print(f"answer: {answer}")
    print(f"{session.engine.replayed} replayed, {session.engine.live_count} live; "
          f"really executed: {dict(executed) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
