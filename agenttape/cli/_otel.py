"""A cassette as an OTLP/JSON trace with the OpenTelemetry GenAI semantic conventions.

The output is what an OTLP/HTTP collector accepts at ``/v1/traces`` with
``Content-Type: application/json``: ``resourceSpans -> scopeSpans -> spans``, one span per
interaction. OTLP/JSON differs from protobuf's canonical JSON in two ways that matter here:
trace and span ids are lowercase hex (not base64) and enums are integers.

Ids are derived from the cassette's ``run_id`` and the interaction index, so exporting the
same cassette twice gives the same trace. Times start at ``created_at`` and advance by each
interaction's recorded latency, as if the crossings ran one after another.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import TYPE_CHECKING, Any

from ._summary import llm_model, token_counts

if TYPE_CHECKING:
    from .._model import Cassette, Interaction

__all__ = ["span_id", "to_otlp", "trace_id"]

SPAN_KIND_INTERNAL = 1
SPAN_KIND_CLIENT = 3
STATUS_ERROR = 2

# agenttape's provider names -> gen_ai.provider.name well-known values
_PROVIDERS = {
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "gemini": "gcp.gemini",
    "google": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
    "mistral": "mistral_ai",
    "bedrock": "aws.bedrock",
    "xai": "x_ai",
}

# endpoint -> gen_ai.operation.name well-known values
_OPERATIONS = {
    "chat.completions": "chat",
    "messages": "chat",
    "responses": "chat",
    "chat": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
    "embed": "embeddings",
    "generateContent": "generate_content",
    "streamGenerateContent": "generate_content",
}

# request parameter -> (attribute, type)
_REQUEST_PARAMS = {
    "temperature": ("gen_ai.request.temperature", float),
    "top_p": ("gen_ai.request.top_p", float),
    "top_k": ("gen_ai.request.top_k", float),
    "frequency_penalty": ("gen_ai.request.frequency_penalty", float),
    "presence_penalty": ("gen_ai.request.presence_penalty", float),
    "max_tokens": ("gen_ai.request.max_tokens", int),
    "max_completion_tokens": ("gen_ai.request.max_tokens", int),
    "max_output_tokens": ("gen_ai.request.max_tokens", int),
    "seed": ("gen_ai.request.seed", int),
    "n": ("gen_ai.request.choice.count", int),
}


def _digest(text: str, size: int) -> str:
    raw = bytearray(hashlib.sha256(text.encode("utf-8")).digest()[:size])
    if not any(raw):
        raw[-1] = 1  # an all-zero id is invalid in OTLP
    return raw.hex()


def trace_id(cassette: Cassette, fallback: str = "") -> str:
    return _digest(f"agenttape-trace:{cassette.run_id or fallback}", 16)


def span_id(cassette: Cassette, index: int, fallback: str = "") -> str:
    return _digest(f"agenttape-span:{cassette.run_id or fallback}:{index}", 8)


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # int64 is a string in proto3 JSON
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _attributes(items: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in items.items() if v is not None]


def _start_ns(cassette: Cassette) -> int:
    freeze = cassette.meta.get("freeze")
    # A hand-made cassette may lack created_at; the frozen clock is the next best start.
    base_iso = freeze.get("base_iso") if isinstance(freeze, dict) else None
    for text in (cassette.created_at, base_iso):
        if isinstance(text, str) and text:
            try:
                when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                continue
            if when.tzinfo is None:
                when = when.replace(tzinfo=_dt.timezone.utc)
            delta = when - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
            return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    return 0


def _finish_reasons(response: Any) -> list[str] | None:
    if not isinstance(response, dict):
        return None
    choices = response.get("choices")
    if isinstance(choices, list):
        reasons = [str(c["finish_reason"]) for c in choices
                   if isinstance(c, dict) and c.get("finish_reason")]
        return reasons or None
    if response.get("stop_reason"):
        return [str(response["stop_reason"])]
    return None


def _llm(inter: Interaction) -> tuple[str, int, dict[str, Any]]:
    req = inter.request
    resp = inter.response if isinstance(inter.response, dict) else {}
    endpoint = req.get("endpoint")
    operation = _OPERATIONS.get(endpoint, "chat") if isinstance(endpoint, str) else "chat"
    provider = _PROVIDERS.get(inter.boundary or "", inter.boundary or "unknown")
    model = llm_model(req)
    tin, tout, _ = token_counts(inter)
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.system": provider,  # the older name, still read by many backends
        "gen_ai.request.model": model,
        "gen_ai.response.model": resp.get("model") if isinstance(resp.get("model"), str)
        else None,
        "gen_ai.response.id": resp.get("id") if isinstance(resp.get("id"), str) else None,
        "gen_ai.response.finish_reasons": _finish_reasons(resp),
        "gen_ai.usage.input_tokens": tin,
        "gen_ai.usage.output_tokens": tout,
    }
    for param, (key, typ) in _REQUEST_PARAMS.items():
        value = req.get(param)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            attrs[key] = typ(value)
    stop = req.get("stop", req.get("stop_sequences"))
    if isinstance(stop, str):
        stop = [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        attrs["gen_ai.request.stop_sequences"] = stop
    name = f"{operation} {model}" if model else operation
    return name, SPAN_KIND_CLIENT, attrs


def _http(inter: Interaction) -> tuple[str, int, dict[str, Any]]:
    from urllib.parse import urlsplit

    req = inter.request
    method = str(req.get("method", "GET")).upper()
    url = str(req.get("url", ""))
    parts = urlsplit(url)
    status = inter.response.get("status_code") if isinstance(inter.response, dict) else None
    attrs: dict[str, Any] = {
        "http.request.method": method,
        "url.full": url or None,
        "server.address": parts.hostname,
        "server.port": parts.port,
        "http.response.status_code": status if isinstance(status, int) else None,
    }
    if isinstance(status, int) and status >= 400:
        attrs["error.type"] = str(status)
    return method, SPAN_KIND_CLIENT, attrs


def _span(cassette: Cassette, inter: Interaction, start: int, end: int,
          fallback: str) -> dict[str, Any]:
    boundary = inter.boundary or inter.kind
    if inter.kind == "llm":
        name, kind, attrs = _llm(inter)
    elif inter.kind == "http":
        name, kind, attrs = _http(inter)
    elif inter.kind == "tool":
        tool = inter.request.get("name", boundary)
        name, kind = f"execute_tool {tool}", SPAN_KIND_INTERNAL
        attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": str(tool),
                 "gen_ai.tool.type": "function"}
    elif inter.kind == "retrieval":
        name, kind = f"retrieval {boundary}", SPAN_KIND_INTERNAL
        attrs = {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": boundary}
    else:  # memory_read / memory_write: no GenAI convention yet
        name, kind, attrs = f"{inter.kind} {boundary}", SPAN_KIND_INTERNAL, {}
    attrs.update({
        "agenttape.kind": inter.kind,
        "agenttape.boundary": boundary,
        "agenttape.index": inter.index,
        "agenttape.latency_ms": float(inter.latency_ms) if inter.latency_ms is not None
        else None,
        "agenttape.match_key": inter.match_key or None,
        "agenttape.tags": list(inter.tags) or None,
    })
    span: dict[str, Any] = {
        "traceId": trace_id(cassette, fallback),
        "spanId": span_id(cassette, inter.index, fallback),
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": _attributes(attrs),
    }
    if inter.error is not None:
        err_type = str(inter.error.get("type", "error"))
        message = str(inter.error.get("message", ""))
        span["attributes"].extend(_attributes({"error.type": err_type}))
        span["events"] = [{
            "timeUnixNano": str(end),
            "name": "exception",
            "attributes": _attributes({"exception.type": err_type,
                                       "exception.message": message}),
        }]
        span["status"] = {"code": STATUS_ERROR, "message": message}
    elif "error.type" in attrs:
        span["status"] = {"code": STATUS_ERROR}
    return span


def to_otlp(cassette: Cassette, *, name: str = "") -> dict[str, Any]:
    """The OTLP/JSON ``ExportTraceServiceRequest`` for ``cassette`` (``name`` labels it)."""
    from .._version import __version__

    clock = _start_ns(cassette)
    spans = []
    for inter in cassette.interactions:
        duration = round((inter.latency_ms or 0.0) * 1_000_000)
        spans.append(_span(cassette, inter, clock, clock + duration, name))
        clock += duration
    resource = _attributes({
        "service.name": "agenttape",
        "agenttape.cassette": name or None,
        "agenttape.run_id": cassette.run_id or None,
        "agenttape.created_at": cassette.created_at or None,
        "agenttape.recorded_with": cassette.meta.get("agenttape_version"),
    })
    return {
        "resourceSpans": [{
            "resource": {"attributes": resource},
            "scopeSpans": [{
                "scope": {"name": "agenttape", "version": __version__},
                "spans": spans,
            }],
        }]
    }
