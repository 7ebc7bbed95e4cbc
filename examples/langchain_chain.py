"""A LangChain chain recorded with the `agenttape.AgentTape()` callback, replayed offline.

    python examples/langchain_chain.py            # replay: no key, no network
    python examples/langchain_chain.py --record   # re-record against the loopback stand-in

retriever -> prompt -> ChatOpenAI with a tool -> the tool -> ChatOpenAI. Two things record it:

- `callbacks=[agenttape.AgentTape()]` reports every LangChain run (model, tool, retriever)
  under LangChain's own names. It is record-only: LangChain calls it around work it does
  itself, so it cannot serve a replay;
- so replay goes through agenttape's usual objects: `ChatOpenAI(http_client=...)` for the
  model, and `@agenttape.tool` / `@agenttape.retrieval` on the functions behind the LangChain
  tool and retriever. Where both see the same call, the cassette holds it once.

The committed cassette was recorded against agenttape's loopback OpenAI stand-in, whose fake
model calls every tool named in the question and passes the question as string arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

import agenttape
from agenttape._standin import LLMServer

ROOT = Path(__file__).resolve().parent.parent
CASSETTE_DIR = ROOT / "cassettes" / "examples"
CASSETTE = "langchain_chain"
# Nothing listens here: a call that escaped the cassette would fail instead of going out.
OFFLINE_URL = "http://127.0.0.1:9/v1"
QUESTION = "Are the TR-9 trail runners in stock in size 42? Use check_stock."

executed: Counter[str] = Counter()


@agenttape.retrieval(name="PolicyRetriever")  # the retriever's name: one interaction, not two
def search_policies(query: str) -> list[str]:
    executed["search_policies"] += 1  # in production: a vector store
    return ["Stock: sizes 36-46 ship within 2 days", "Stock: restocks arrive on Mondays"]


class PolicyRetriever(BaseRetriever):
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [Document(page_content=text) for text in search_policies(query)]


@tool
@agenttape.tool
def check_stock(sku: str) -> str:
    """Units in stock for a product SKU, by size."""
    executed["check_stock"] += 1  # in production: the inventory service
    return "TR-9: size 41: 0, size 42: 3, size 43: 5"


PROMPT = ChatPromptTemplate.from_messages([
    ("system", "You answer stock questions for a shoe shop.\nPolicies:\n{policies}"),
    ("human", "{question}"),
])


def build_chain(model: ChatOpenAI) -> Runnable[str, str]:
    with_tools = model.bind_tools([check_stock])

    def with_policies(question: str) -> dict[str, str]:
        docs = PolicyRetriever().invoke(question)
        return {"question": question, "policies": "\n".join(d.page_content for d in docs)}

    def answer(messages: list[BaseMessage]) -> str:
        reply = with_tools.invoke(messages)
        history: list[Any] = [*messages, reply]
        for call in getattr(reply, "tool_calls", []):
            history.append(check_stock.invoke(call))  # a ToolMessage
        return str(model.invoke(history).content)

    return (RunnableLambda(with_policies) | PROMPT
            | RunnableLambda(lambda prompt: prompt.to_messages()) | RunnableLambda(answer))


def run(mode: str, base_url: str,
        cassette_dir: Path = CASSETTE_DIR) -> tuple[str, agenttape.Session]:
    """Run the chain once inside a session; returns the answer and the session."""
    config = agenttape.Config.load(ROOT)  # the repository's agenttape.toml, whatever the cwd
    # langchain-openai builds plain httpx clients itself, hence library="httpx"
    # (openai 3.x accepts httpx or httpx2).
    with agenttape.http_client(library="httpx") as http:
        model = ChatOpenAI(model="gpt-4o-mini", base_url=base_url,
                           api_key="sk-example-NOT-A-REAL-KEY", http_client=http)
        with agenttape.use_cassette(CASSETTE, mode=mode, config=config,
                                    cassette_dir=cassette_dir) as session:
            answer = build_chain(model).invoke(
                QUESTION, config={"callbacks": [agenttape.AgentTape()]})
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
