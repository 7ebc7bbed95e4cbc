"""`agenttape export --format otel`: an OTLP/JSON trace read back by the real OTLP protobuf.

The export is parsed into opentelemetry-proto's ExportTraceServiceRequest, the message an
OTLP collector decodes, so a wrong field name, nesting or value type fails here.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

import agenttape
from agenttape.cli import main


@agenttape.retrieval(name="kb_search")
def search(query: str) -> list[str]:
    return [f"doc about {query}"]


@agenttape.tool
def get_weather(city: str) -> dict[str, Any]:
    return {"city": city, "sky": "sunny"}


@agenttape.tool
def charge_card(amount: int) -> str:
    raise ValueError(f"card declined for {amount}")


@agenttape.memory_read
def recall(key: str) -> str:
    return "likes sun"


def llm(content: str) -> Any:
    return agenttape.record_call(
        "llm",
        {"endpoint": "chat.completions", "model": "gpt-4o-mini", "temperature": 0.2,
         "max_tokens": 64, "messages": [{"role": "user", "content": content}]},
        lambda: {"id": "chatcmpl-42", "model": "gpt-4o-mini-2024-07-18",
                 "choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": "Sunny."}}]},
        boundary="openai",
        usage={"input_tokens": 21, "output_tokens": 3, "total_tokens": 24},
    )


def agent() -> None:
    search("weather")
    llm("What's the weather in Paris?")
    get_weather("Paris")
    recall("preferences")
    agenttape.record_call(
        "http", {"method": "GET", "url": "https://api.example.com:8443/v1/items?id=3"},
        lambda: {"status_code": 503, "text": "unavailable"}, boundary="api.example.com:8443",
    )
    with pytest.raises(ValueError, match="card declined"):
        charge_card(10)


@pytest.fixture
def cassette_path() -> Path:
    with agenttape.use_cassette("trace", record=True, tags=["smoke"]) as session:
        agent()
    return session.path


def export(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(["export", *argv, "--format", "otel"]) == 0
    out = capsys.readouterr().out
    result: dict[str, Any] = json.loads(out)
    return result


def parse(document: dict[str, Any]) -> ExportTraceServiceRequest:
    """Read OTLP/JSON with the OTLP protobuf.

    OTLP/JSON writes trace and span ids as hex, where protobuf's generic JSON mapping
    expects base64 for bytes fields; collectors special-case those two fields, and so
    does this helper before handing the document to json_format.
    """
    def ids_to_base64(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: base64.b64encode(bytes.fromhex(v)).decode()
                    if k in ("traceId", "spanId", "parentSpanId") else ids_to_base64(v)
                    for k, v in node.items()}
        if isinstance(node, list):
            return [ids_to_base64(v) for v in node]
        return node

    message = ExportTraceServiceRequest()
    json_format.Parse(json.dumps(ids_to_base64(document)), message)
    return message


def attrs_of(span: Span) -> dict[str, Any]:
    def value(v: AnyValue) -> Any:
        which = v.WhichOneof("value")
        if which == "array_value":
            return [value(x) for x in v.array_value.values]
        return getattr(v, which)

    return {kv.key: value(kv.value) for kv in span.attributes}


def test_one_span_per_interaction_parsed_by_the_otlp_protobuf(
    capsys: pytest.CaptureFixture[str], cassette_path: Path
) -> None:
    cassette = agenttape.read_cassette(cassette_path)
    message = parse(export(capsys, "trace"))
    assert len(message.resource_spans) == 1
    resource = message.resource_spans[0]
    assert attrs_of(resource.resource) == {  # type: ignore[arg-type]
        "service.name": "agenttape", "agenttape.cassette": "trace.yaml",
        "agenttape.run_id": cassette.run_id, "agenttape.created_at": cassette.created_at,
        "agenttape.recorded_with": agenttape.__version__,
    }
    scope_spans = resource.scope_spans[0]
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("agenttape",
                                                                   agenttape.__version__)
    spans = list(scope_spans.spans)
    assert len(spans) == len(cassette.interactions) == 6
    assert [s.name for s in spans] == [
        "retrieval kb_search", "chat gpt-4o-mini", "execute_tool get_weather",
        "memory_read recall", "GET", "execute_tool charge_card",
    ]
    assert [s.kind for s in spans] == [
        Span.SPAN_KIND_INTERNAL, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_INTERNAL,
        Span.SPAN_KIND_INTERNAL, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_INTERNAL,
    ]


def test_genai_semantic_convention_attributes(
    capsys: pytest.CaptureFixture[str], cassette_path: Path
) -> None:
    spans = list(parse(export(capsys, "trace")).resource_spans[0].scope_spans[0].spans)
    cassette = agenttape.read_cassette(cassette_path)
    retrieval, chat, tool, memory, http, failed = (attrs_of(s) for s in spans)
    assert chat == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-42",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 21,
        "gen_ai.usage.output_tokens": 3,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 64,
        "agenttape.kind": "llm",
        "agenttape.boundary": "openai",
        "agenttape.index": 1,
        "agenttape.latency_ms": cassette.interactions[1].latency_ms,
        "agenttape.match_key": cassette.interactions[1].match_key,
    }
    assert tool["gen_ai.operation.name"] == "execute_tool"
    assert tool["gen_ai.tool.name"] == "get_weather"
    assert tool["gen_ai.tool.type"] == "function"
    assert retrieval["gen_ai.operation.name"] == "retrieval"
    assert retrieval["gen_ai.data_source.id"] == "kb_search"
    assert memory["agenttape.kind"] == "memory_read"
    assert "gen_ai.operation.name" not in memory
    assert http["http.request.method"] == "GET"
    assert http["url.full"] == "https://api.example.com:8443/v1/items?id=3"
    assert (http["server.address"], http["server.port"]) == ("api.example.com", 8443)
    assert http["http.response.status_code"] == 503
    assert http["error.type"] == "503"
    assert failed["error.type"] == "ValueError"
    assert failed["gen_ai.tool.name"] == "charge_card"


def test_errors_set_status_and_an_exception_event(
    capsys: pytest.CaptureFixture[str], cassette_path: Path
) -> None:
    spans = list(parse(export(capsys, "trace")).resource_spans[0].scope_spans[0].spans)
    ok, failed, http = spans[2], spans[5], spans[4]
    assert ok.status.code == Status.STATUS_CODE_UNSET
    assert failed.status.code == Status.STATUS_CODE_ERROR
    assert failed.status.message == "card declined for 10"
    [event] = failed.events
    assert event.name == "exception"
    assert attrs_of(event) == {  # type: ignore[arg-type]
        "exception.type": "ValueError", "exception.message": "card declined for 10"}
    assert event.time_unix_nano == failed.end_time_unix_nano
    assert http.status.code == Status.STATUS_CODE_ERROR


def test_times_follow_created_at_and_cumulative_latency(
    capsys: pytest.CaptureFixture[str], cassette_path: Path
) -> None:
    cassette = agenttape.read_cassette(cassette_path)
    spans = list(parse(export(capsys, "trace")).resource_spans[0].scope_spans[0].spans)
    created = dt.datetime.fromisoformat(cassette.created_at)
    clock = int(created.timestamp()) * 10**9
    for span, inter in zip(spans, cassette.interactions, strict=True):
        assert span.start_time_unix_nano == clock
        duration = round((inter.latency_ms or 0.0) * 1_000_000)
        assert span.end_time_unix_nano == clock + duration
        clock += duration


def test_ids_are_hex_deterministic_and_derived_from_run_id_and_index(
    capsys: pytest.CaptureFixture[str], cassette_path: Path
) -> None:
    first = export(capsys, "trace")
    assert main(["export", "trace", "--format", "otel", "-o", "trace.otlp.json"]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads(Path("trace.otlp.json").read_text()) == first
    raw = first["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert all(re.fullmatch(r"[0-9a-f]{32}", s["traceId"]) for s in raw)
    assert all(re.fullmatch(r"[0-9a-f]{16}", s["spanId"]) for s in raw)
    assert len({s["traceId"] for s in raw}) == 1
    assert len({s["spanId"] for s in raw}) == len(raw)
    spans = parse(first).resource_spans[0].scope_spans[0].spans
    assert all(len(s.trace_id) == 16 and len(s.span_id) == 8 for s in spans)

    # A derived cassette is another run: another trace, and span ids that follow it.
    with agenttape.use_cassette("trace", mode="none", live={"get_weather"}):
        agent()
    derived = export(capsys, "trace.derived")
    derived_spans = derived["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert derived_spans[0]["traceId"] != raw[0]["traceId"]
    assert {s["spanId"] for s in derived_spans}.isdisjoint({s["spanId"] for s in raw})


def test_export_from_subprocess_round_trips(cassette_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "agenttape", "export", str(cassette_path), "--format", "otel"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    message = parse(json.loads(result.stdout))
    assert len(message.resource_spans[0].scope_spans[0].spans) == 6
