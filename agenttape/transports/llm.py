"""LLM API shapes: which HTTP calls are LLM calls, their canonical request, and usage.

Everything here is driven by the provider's ``style`` (its wire format): adding a provider
that speaks an existing format is one entry in :data:`agenttape.transports._providers.PROVIDERS`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

from ._providers import PROVIDERS, Provider

__all__ = [
    "Provider",
    "endpoint_of",
    "identify",
    "is_terminal",
    "llm_request",
    "normalise_usage",
    "stream_usage",
    "usage_of",
    "wants_stream",
]

# Parameters that only steer how the answer travels, never what it is. Dropped from the
# canonical request so a streamed and a non-streamed call of the same prompt match (a
# streamed call then fails clearly with StreamingReplayError instead of "unmatched").
TRANSPORT_ONLY = frozenset({"stream"})

# Headers that change what the model does; every other header is transport detail.
MEANINGFUL_HEADERS = ("anthropic-beta", "openai-beta")

# The event that ends a stream: the SDKs stop reading there, before the body is exhausted.
_TERMINAL_TYPES = frozenset(
    {"message_stop", "response.completed", "response.failed", "response.incomplete", "error"}
)


def identify(netloc: str, path: str, llm_hosts: Iterable[str] = ()) -> Provider | None:
    """The provider serving ``netloc`` (``host`` or ``host:port``), or None for plain HTTP."""
    host = netloc.rpartition(":")[0] if netloc.count(":") == 1 else netloc
    for entry in llm_hosts:
        entry = entry.lower().strip()
        if entry in (netloc, host) or ("*" in entry and fnmatch.fnmatchcase(netloc, entry)):
            style = _style_from_path(path)
            return Provider(style, (entry,), style) if style is not None else None
    for provider in PROVIDERS:
        for pattern in provider.hosts:
            target = netloc if ":" in pattern else host
            if pattern == target or (pattern.startswith("*.") and target.endswith(pattern[1:])):
                return provider
    return None


# Paths that are LLM API calls on a host named in `llm_hosts` (which may serve other
# things too, such as a local gateway's health checks): anything else stays plain HTTP.
_OPENAI_TAILS = (
    "/chat/completions", "/completions", "/embeddings", "/responses", "/moderations",
    "/images/generations", "/images/edits", "/audio/speech", "/audio/transcriptions",
    "/audio/translations",
)
_ANTHROPIC_TAILS = ("/v1/messages", "/v1/messages/count_tokens", "/v1/complete")
_OLLAMA_PATHS = ("/api/chat", "/api/generate", "/api/embed", "/api/embeddings")


def _style_from_path(path: str) -> str | None:
    """For a host named in ``llm_hosts``: the API its path belongs to, if any."""
    path = path.rstrip("/")
    if path.endswith(_ANTHROPIC_TAILS):
        return "anthropic"
    if "/models/" in path and ":" in path.rsplit("/", 1)[-1]:
        return "gemini"
    if path in _OLLAMA_PATHS:
        return "ollama"
    if path.endswith(_OPENAI_TAILS) or "/responses/" in path:
        return "openai"
    return None


def endpoint_of(provider: Provider, path: str) -> tuple[str, str | None]:
    """``(endpoint, model named by the path or None)`` for a request path."""
    path = path.rstrip("/")
    if provider.style == "gemini":
        last = path.rsplit("/", 1)[-1]
        name, _, method = last.partition(":")
        if method.startswith("stream"):
            method = method[len("stream") :]
            method = method[:1].lower() + method[1:]
        return (method or last), (name or None)
    if provider.style == "ollama" and path.startswith("/api/"):
        return path[len("/api/") :].replace("/", "."), None
    model: str | None = None
    if "/deployments/" in path:  # Azure OpenAI: /openai/deployments/<name>/chat/completions
        _, _, rest = path.partition("/deployments/")
        model, _, tail = rest.partition("/")
        return tail.replace("/", "."), model
    tail = path.rsplit("/v1/", 1)[-1] if "/v1/" in path else path.lstrip("/")
    return tail.replace("/", "."), model


def wants_stream(provider: Provider, path: str, body: Any) -> bool:
    if provider.style == "gemini":
        return ":stream" in path
    if isinstance(body, dict):
        if provider.style == "ollama" and path.startswith("/api/"):
            # Ollama's own API streams unless told not to.
            return body.get("stream", True) is not False and not path.startswith("/api/embed")
        return body.get("stream") is True
    return False


def llm_request(
    provider: Provider,
    *,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    body: Any,
    body_fields: Mapping[str, Any],
) -> tuple[str, dict[str, Any]]:
    """``(endpoint, canonical request)``: ``{endpoint, model, ...body params}``."""
    endpoint, path_model = endpoint_of(provider, path)
    request: dict[str, Any] = {"endpoint": endpoint}
    if method != "POST":
        request["method"] = method
    if isinstance(body, dict):
        model = body.get("model", path_model)
        if model is not None:
            request["model"] = model
        request.update((k, v) for k, v in body.items() if k != "model" and k not in TRANSPORT_ONLY)
    else:
        if path_model is not None:
            request["model"] = path_model
        request.update(body_fields)
    if query:
        params: dict[str, Any] = {}
        for key, value in query:
            if key == "alt" and value == "sse":  # Gemini's streaming switch
                continue
            params.setdefault(key, []).append(value)
        if params:
            request["query"] = {k: v[0] if len(v) == 1 else v for k, v in params.items()}
    kept = {name: headers[name] for name in MEANINGFUL_HEADERS if name in headers}
    if kept:
        request["headers"] = kept
    return endpoint, request


def override_model(body: dict[str, Any], model: str) -> dict[str, Any] | None:
    """``body`` with its model replaced, or None when the model is not in the body."""
    if "model" not in body or body["model"] == model:
        return None
    return {**body, "model": model}


# -- usage ------------------------------------------------------------------------------

def _raw_usage(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        return None
    for key in ("usage", "usageMetadata"):
        value = data.get(key)
        if isinstance(value, dict):
            return value
    for key in ("response", "message"):  # Responses stream events, Anthropic message_start
        inner = data.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("usage"), dict):
            usage: dict[str, Any] = inner["usage"]
            return usage
    if "eval_count" in data or "prompt_eval_count" in data:  # Ollama's own API
        return {k: data[k] for k in ("prompt_eval_count", "eval_count") if k in data}
    return None


def _first_int(usage: Mapping[str, Any], *paths: str) -> int | None:
    for path in paths:
        value: Any = usage
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def normalise_usage(raw: Mapping[str, Any] | None, style: str = "openai") -> dict[str, Any] | None:
    """``input_tokens``, ``output_tokens``, ``total_tokens`` (+ cached/reasoning) or None."""
    if not raw:
        return None
    inp = _first_int(raw, "input_tokens", "prompt_tokens", "promptTokenCount",
                     "prompt_eval_count")
    out = _first_int(raw, "output_tokens", "completion_tokens", "candidatesTokenCount",
                     "eval_count")
    cached = _first_int(raw, "prompt_tokens_details.cached_tokens",
                        "input_tokens_details.cached_tokens", "cache_read_input_tokens",
                        "cachedContentTokenCount")
    reasoning = _first_int(raw, "completion_tokens_details.reasoning_tokens",
                           "output_tokens_details.reasoning_tokens", "thoughtsTokenCount")
    if style == "anthropic" and inp is not None:
        # Anthropic counts cache reads and writes outside input_tokens; fold them in so
        # that, as for every other provider, cached tokens are part of the input.
        created = _first_int(raw, "cache_creation_input_tokens") or 0
        inp += (cached or 0) + created
    if inp is None and out is None:
        return None
    usage: dict[str, Any] = {"input_tokens": inp or 0, "output_tokens": out or 0}
    total = _first_int(raw, "total_tokens", "totalTokenCount")
    usage["total_tokens"] = total if total is not None else usage["input_tokens"] + usage[
        "output_tokens"]
    if cached:
        usage["cached_tokens"] = cached
    if reasoning:
        usage["reasoning_tokens"] = reasoning
    return usage


def usage_of(style: str, body: Any) -> dict[str, Any] | None:
    return normalise_usage(_raw_usage(body), style)


def stream_usage(style: str, datas: Iterable[Any]) -> dict[str, Any] | None:
    """Usage from a stream: later usage events refine earlier ones (Anthropic's
    ``message_delta`` carries the final output count after ``message_start``)."""
    merged: dict[str, Any] = {}
    for data in datas:
        raw = _raw_usage(data)
        if raw:
            merged.update({k: v for k, v in raw.items() if v is not None})
    return normalise_usage(merged, style)


def is_terminal(data: Any) -> bool:
    """Whether a stream event is the provider's last one."""
    if isinstance(data, str):
        return data.strip() == "[DONE]"
    if isinstance(data, dict):
        return data.get("type") in _TERMINAL_TYPES or data.get("done") is True
    return False
