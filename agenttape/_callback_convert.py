"""Framework objects (LangChain, LlamaIndex, CrewAI) as plain, stable JSON.

Recognised by duck typing and class names, never by importing the framework. Per-run ids
(LangChain's ``lc_run--<uuid7>`` message ids, LlamaIndex node ids, tool call ids some
integrations invent) are dropped: they differ on every run and would break matching.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .boundaries import to_plain
from .transports.llm import normalise_usage

__all__ = [
    "chat_response",
    "crew_tool_input",
    "lc_llm_response",
    "lc_usage",
    "li_usage",
    "plain",
]

# LangChain message types -> the chat role every provider API uses.
_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool",
          "function": "function", "developer": "developer"}


def _has_base(value: Any, *names: str) -> bool:
    return any(cls.__name__ in names for cls in type(value).__mro__)


def plain(value: Any) -> Any:
    """``value`` as JSON-like data, framework messages and documents in their short form."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if _has_base(value, "BaseMessage") and hasattr(value, "content"):
        return lc_message(value)
    if _has_base(value, "Document") and hasattr(value, "page_content"):
        return {"page_content": value.page_content, "metadata": plain(value.metadata)}
    if _has_base(value, "ChatMessage") and hasattr(value, "role"):
        return li_message(value)
    if _has_base(value, "NodeWithScore") and hasattr(value, "node"):
        return {**li_node(value.node), "score": value.score}
    if _has_base(value, "BaseNode") and hasattr(value, "get_content"):
        return li_node(value)
    if _has_base(value, "QueryBundle") and hasattr(value, "query_str"):
        return value.query_str
    if hasattr(value, "source_nodes") and hasattr(value, "response"):  # a query's Response
        return {"response": plain(value.response),
                "source_nodes": [plain(n) for n in value.source_nodes or []]}
    return to_plain(value, _warn=False)


def lc_message(message: Any) -> dict[str, Any]:
    kind = str(getattr(message, "type", ""))
    if kind.endswith("MessageChunk"):  # streamed chunks are typed "AIMessageChunk" & co.
        kind = kind[: -len("MessageChunk")].lower()
    role = _ROLES.get(kind) or str(getattr(message, "role", "") or kind)
    out: dict[str, Any] = {"role": role, "content": plain(message.content)}
    calls = getattr(message, "tool_calls", None)
    if calls:
        out["tool_calls"] = [{"name": c.get("name"), "args": plain(c.get("args"))}
                             for c in calls if isinstance(c, Mapping)]
    name = getattr(message, "name", None)
    if name:
        out["name"] = name
    return out


def li_message(message: Any) -> dict[str, Any]:
    role = getattr(message.role, "value", message.role)
    out: dict[str, Any] = {"role": str(role), "content": plain(message.content)}
    extra = getattr(message, "additional_kwargs", None) or {}
    calls = extra.get("tool_calls") if isinstance(extra, Mapping) else None
    if calls:
        out["tool_calls"] = [_tool_call(c) for c in calls]
    return out


def _tool_call(call: Any) -> Any:
    data = plain(call)
    if isinstance(data, dict):
        data.pop("id", None)
    return data


def li_node(node: Any) -> dict[str, Any]:
    return {"text": node.get_content(), "metadata": plain(getattr(node, "metadata", {}))}


def crew_tool_input(raw: Any) -> Any:
    """CrewAI hands tool input over as (repaired) JSON text."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return plain(raw)


# -- LLM responses and usage -------------------------------------------------------------

def lc_llm_response(result: Any) -> Any:
    """An ``LLMResult`` as ``{"message": ...}`` (chat) or ``{"text": ...}``; several
    generations (``n > 1``) as ``{"generations": [...]}``."""
    generations = [g for batch in (getattr(result, "generations", None) or []) for g in batch]
    shown: list[dict[str, Any]] = []
    for generation in generations:
        message = getattr(generation, "message", None)
        if message is not None:
            shown.append({"message": lc_message(message)})
        else:
            shown.append({"text": getattr(generation, "text", "")})
    if len(shown) == 1:
        return shown[0]
    return {"generations": shown}


def lc_usage(result: Any) -> dict[str, Any] | None:
    """Usage from the generation's ``usage_metadata``, else ``llm_output["token_usage"]``."""
    for batch in getattr(result, "generations", None) or []:
        for generation in batch:
            message = getattr(generation, "message", None)
            usage = getattr(message, "usage_metadata", None)
            if isinstance(usage, Mapping):
                return normalise_usage(_lc_usage_details(usage))
    output = getattr(result, "llm_output", None)
    if isinstance(output, Mapping):
        for key in ("token_usage", "usage"):
            raw = output.get(key)
            if isinstance(raw, Mapping):
                return normalise_usage(plain(raw))
    return None


def _lc_usage_details(usage: Mapping[str, Any]) -> dict[str, Any]:
    # LangChain names the details input_token_details.cache_read / output_token_details.reasoning.
    out = {k: v for k, v in usage.items() if k in ("input_tokens", "output_tokens",
                                                   "total_tokens")}
    cached = (usage.get("input_token_details") or {}).get("cache_read")
    reasoning = (usage.get("output_token_details") or {}).get("reasoning")
    if cached:
        out["input_tokens_details"] = {"cached_tokens": cached}
    if reasoning:
        out["output_tokens_details"] = {"reasoning_tokens": reasoning}
    return out


def chat_response(response: Any) -> Any:
    """A LlamaIndex ``ChatResponse``/``CompletionResponse`` as ``{"message"}``/``{"text"}``."""
    message = getattr(response, "message", None)
    if message is not None:
        return {"message": li_message(message)}
    text = getattr(response, "text", None)
    if isinstance(text, str):
        return {"text": text}
    return plain(response)


def li_usage(response: Any) -> dict[str, Any] | None:
    """Usage from ``response.raw`` (the provider's body) or ``additional_kwargs``."""
    raw = getattr(response, "raw", None)
    if raw is not None and not isinstance(raw, Mapping):
        raw = plain(raw)
    if isinstance(raw, Mapping):
        usage = raw.get("usage") or raw.get("usage_metadata") or raw.get("usageMetadata")
        if isinstance(usage, Mapping):
            found = normalise_usage(usage)
            if found:
                return found
    extra = getattr(response, "additional_kwargs", None)
    if isinstance(extra, Mapping):
        return normalise_usage(extra)
    return None
