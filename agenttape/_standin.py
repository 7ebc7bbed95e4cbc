"""A loopback stand-in for the OpenAI and Anthropic APIs, plus a few plain HTTP endpoints.

agenttape's tests drive the real SDKs over real sockets against this server, so it speaks the
same wire formats (JSON bodies, SSE streams, error bodies, retry hints) closely enough for the
SDKs' own parsers and stream accumulators to accept it. Answers are a pure function of the
request, except the fields the real APIs vary per call (ids, ``created``, ``x-request-id``), so
tests can check both that replays are exact and that volatile fields are ignored.

The fake model answers ``"Echo: <last user text>"``; with tools, it calls every tool whose name
appears in that text (string parameters get the text, numbers 1); after tool results it answers
``"Final: <result> | <result>"``. Endpoints:

- ``POST /v1/chat/completions``, ``POST /v1/responses``, ``POST /v1/messages`` (Anthropic):
  JSON, or SSE with ``"stream": true``; header ``x-test-slow: 1`` spaces stream chunks 0.2 s.
  Model ``fail-once-500`` fails once per server (re-armed by ``reset()``); ``always-429``
  always does.
- ``POST /v1/embeddings``: 8 floats per input from a hash (``encoding_format`` float or base64).
- ``GET /json?..`` (query as JSON), ``ANY /echo``, ``GET /status/<code>``,
  ``GET /binary?size=N[&plant=text]``, ``GET /gzip``, ``GET /text``,
  ``GET /big?mb=N`` (chunked, 64 KiB),
  ``GET /slow-sse?n=5&delay=0.2``, ``GET /gated-sse?n=3`` (holds after the first event until
  ``server.sse_gate`` is set, at most 10 s).

Standard library only. It ships inside the package (private) because the demo, the examples and
the documentation's runnable snippets start it too: all of them run with no key and no internet.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import gzip
import hashlib
import json
import re
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

__all__ = ["LLMServer", "ReceivedRequest"]

JSONDict = dict[str, Any]

EMBEDDING_DIMENSIONS = 8
STREAM_CHUNK_DELAY = 0.2  # seconds between chunks for `x-test-slow` requests
GATE_TIMEOUT = 10.0
BIG_CHUNK = 64 * 1024
_MIB = 1024 * 1024
# Caps keep a typo in a test (size=10**12) from exhausting memory or running for hours.
_MAX_BINARY_BYTES = 64 * _MIB
_MAX_BIG_MIB = 4096.0
_MAX_SLOW_EVENTS = 1000

_OPENAI_500 = "The server had an error while processing your request. Sorry about that!"
_RETRY_HEADERS = (
    # Both SDKs honour these before their own exponential backoff (0.5 s and up), which keeps
    # retry tests fast while still exercising the retry path.
    ("retry-after-ms", "10"),
    ("retry-after", "0"),
)


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the server saw it on the wire."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _ToolCall:
    name: str
    arguments: JSONDict

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, ensure_ascii=False)


@dataclass
class _Answer:
    """What the fake model says: either text or tool calls, with deterministic token counts."""

    text: str | None
    tool_calls: list[_ToolCall]
    prompt_tokens: int
    completion_tokens: int = field(init=False)

    def __post_init__(self) -> None:
        produced = self.text or " ".join(call.arguments_json for call in self.tool_calls)
        self.completion_tokens = _count_tokens(produced)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class _BadRequest(Exception):
    """The request body is not what the endpoint accepts; answered with a 400."""


# --------------------------------------------------------------------------------------------
# The fake model: pure functions from request bodies to answers.
# --------------------------------------------------------------------------------------------


def _count_tokens(text: str) -> int:
    return max(1, len(text.split()))


def _text_of(content: Any) -> str:
    """Text of a message content in any of the three APIs' shapes (string or list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return " ".join(texts)
    return ""


def _tool_arguments(schema: Any, user_text: str) -> JSONDict:
    properties = schema.get("properties") if isinstance(schema, dict) else None
    arguments: JSONDict = {}
    if not isinstance(properties, dict):
        return arguments
    for name, spec in properties.items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind == "string":
            arguments[name] = user_text
        elif kind in ("integer", "number"):
            arguments[name] = 1
        elif kind == "boolean":
            arguments[name] = True
    return arguments


def _decide(
    *,
    user_text: str,
    tool_results: list[str] | None,
    tools: list[tuple[str, Any]],
    prompt_text: str,
) -> _Answer:
    prompt_tokens = _count_tokens(prompt_text)
    if tool_results is not None:
        return _Answer("Final: " + " | ".join(tool_results), [], prompt_tokens)
    calls = [
        _ToolCall(name, _tool_arguments(schema, user_text))
        for name, schema in tools
        if name and name in user_text
    ]
    if calls:
        return _Answer(None, calls, prompt_tokens)
    return _Answer("Echo: " + user_text, [], prompt_tokens)


def _require_list(body: JSONDict, key: str) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list):
        raise _BadRequest(f"'{key}' must be a list")
    return value


def _chat_answer(body: JSONDict) -> _Answer:
    messages = [m for m in _require_list(body, "messages") if isinstance(m, dict)]
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    user_text = _text_of(messages[last_user].get("content")) if last_user >= 0 else ""
    after = messages[last_user + 1 :]
    results = [_text_of(m.get("content")) for m in after if m.get("role") == "tool"]
    tools = [
        (str(t["function"].get("name", "")), t["function"].get("parameters"))
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    return _decide(
        user_text=user_text,
        tool_results=results or None,
        tools=tools,
        prompt_text=" ".join(_text_of(m.get("content")) for m in messages),
    )


def _responses_answer(body: JSONDict) -> _Answer:
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        items: list[JSONDict] = [{"type": "message", "role": "user", "content": raw_input}]
    elif isinstance(raw_input, list):
        items = [item for item in raw_input if isinstance(item, dict)]
    else:
        raise _BadRequest("'input' must be a string or a list")

    def is_user_message(item: JSONDict) -> bool:
        return item.get("role") == "user" and item.get("type", "message") == "message"

    last_user = max((i for i, item in enumerate(items) if is_user_message(item)), default=-1)
    user_text = _text_of(items[last_user].get("content")) if last_user >= 0 else ""
    results = [
        _text_of(item.get("output"))
        for item in items[last_user + 1 :]
        if item.get("type") == "function_call_output"
    ]
    # The Responses API declares function tools flat, not nested under "function" as in chat.
    tools = [
        (str(t.get("name", "")), t.get("parameters"))
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("type") == "function"
    ]
    instructions = body.get("instructions")
    prompt_parts = [instructions if isinstance(instructions, str) else ""]
    prompt_parts += [_text_of(item.get("content") or item.get("output")) for item in items]
    return _decide(
        user_text=user_text,
        tool_results=results or None,
        tools=tools,
        prompt_text=" ".join(prompt_parts),
    )


def _anthropic_answer(body: JSONDict) -> _Answer:
    messages = [m for m in _require_list(body, "messages") if isinstance(m, dict)]
    user_messages = [m for m in messages if m.get("role") == "user"]
    content = user_messages[-1].get("content") if user_messages else ""
    # Anthropic sends tool results as blocks inside the next user message, not as a role.
    blocks = content if isinstance(content, list) else []
    results = [
        _text_of(b.get("content"))
        for b in blocks
        if isinstance(b, dict) and b.get("type") == "tool_result"
    ]
    tools = [
        (str(t.get("name", "")), t.get("input_schema"))
        for t in body.get("tools") or []
        if isinstance(t, dict) and "input_schema" in t
    ]
    system = body.get("system")
    prompt_parts = [_text_of(system)] + [_text_of(m.get("content")) for m in messages]
    return _decide(
        user_text=_text_of(content),
        tool_results=results or None,
        tools=tools,
        prompt_text=" ".join(prompt_parts),
    )


def _pieces(text: str) -> list[str]:
    """Word-sized stream deltas that concatenate back to exactly ``text``."""
    return re.findall(r"\S+\s*|\s+", text)


def _thirds(text: str) -> list[str]:
    """A few argument deltas, so clients must concatenate partial JSON as with the real APIs."""
    size = max(1, -(-len(text) // 3))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _embedding(text: str, dimensions: int) -> list[float]:
    digest = b""
    block = 0
    while len(digest) < dimensions:
        digest += hashlib.sha256(f"{block}:{text}".encode()).digest()
        block += 1
    # Multiples of 1/128 in [-1, 1) are exact in float32, so the base64 (float32) and the
    # JSON float encodings decode to identical lists.
    return [(byte - 128) / 128 for byte in digest[:dimensions]]


def _binary_bytes(size: int) -> bytes:
    out = bytearray()
    block = 0
    while len(out) < size:
        out += hashlib.sha256(b"agenttape-binary:%d" % block).digest()
        block += 1
    data = out[:size]
    if data:
        data[0] = 0xFF  # never valid in UTF-8, so the body can never pass for text
    return bytes(data)


def _sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else _dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _query_dict(query: str) -> JSONDict:
    parsed = parse_qs(query, keep_blank_values=True)
    return {key: values[0] if len(values) == 1 else values for key, values in parsed.items()}


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a test opening dozens of connections at once
    # would see the extra ones wait for SYN retransmits, seconds later (a read timeout).
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: LLMServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Registered here, on the serving thread, so once shutdown() has returned stop() is
        # guaranteed to see every connection ever accepted.
        self.owner._connection_opened(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        finally:
            self.owner._connection_closed(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr. A client hanging up is routine; anything
        # else is kept for the fixture to report as a failure.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            self.owner._record_error(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked responses, like the real APIs
    # Fixed so the Server header does not change with the Python version between runs.
    server_version = "agenttape-test-server"
    sys_version = ""
    # Headers and body go out in separate writes; with Nagle on, delayed ACKs add ~40 ms to
    # every keep-alive request.
    disable_nagle_algorithm = True

    _head = False
    _headers_sent = False

    @property
    def owner(self) -> LLMServer:
        return cast(_HTTPServer, self.server).owner

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # Every method goes through one dispatcher; routes check the method themselves.
    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    # ---- request side ----

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers (rarely sent) end with an empty line like the headers do.
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        self._head = self.command == "HEAD"
        self._headers_sent = False
        split = urlsplit(self.path)
        try:
            try:
                body = self._read_body()
            except ValueError:
                # Framing is lost, so the connection cannot carry another request.
                self.close_connection = True
                raise _BadRequest("malformed request body framing") from None
            headers: dict[str, str] = {}
            for key, value in self.headers.items():
                key = key.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            request = ReceivedRequest(self.command, split.path, split.query, headers, body)
            self.owner._record_request(request)
            self._route(request)
        except (ConnectionError, TimeoutError):
            # The client went away (or the server is stopping): nothing left to answer.
            self.close_connection = True
        except _BadRequest as exc:
            self._send_json(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
        except Exception:
            self.owner._record_error(traceback.format_exc())
            self.close_connection = True
            if not self._headers_sent:
                self._send_json(500, {"error": {"message": "test server bug, see server.errors"}})

    def _route(self, request: ReceivedRequest) -> None:
        path, method = request.path, request.method
        llm_routes = {
            "/v1/chat/completions": self._chat_completions,
            "/v1/responses": self._responses,
            "/v1/embeddings": self._embeddings,
            "/v1/messages": self._anthropic_messages,
        }
        plain_routes = {
            "/json": self._json_echo,
            "/binary": self._binary,
            "/gzip": self._gzip,
            "/text": self._text,
            "/big": self._big,
            "/slow-sse": self._slow_sse,
            "/gated-sse": self._gated_sse,
        }
        if path in llm_routes:
            if method != "POST":
                self._method_not_allowed("POST")
                return
            llm_routes[path](request, self._json_body(request))
        elif path == "/echo":
            self._echo(request)
        elif path in plain_routes:
            if method not in ("GET", "HEAD"):
                self._method_not_allowed("GET, HEAD")
                return
            plain_routes[path](request)
        elif path.startswith("/status/"):
            self._status(path.removeprefix("/status/"))
        else:
            self._send_json(
                404, {"error": {"message": f"no route for {path}", "type": "not_found"}}
            )

    @staticmethod
    def _json_body(request: ReceivedRequest) -> JSONDict:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise _BadRequest(f"body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise _BadRequest("body must be a JSON object")
        return body

    # ---- response side ----

    def _write(self, data: bytes) -> None:
        if not self._head:
            self.wfile.write(data)

    def _begin(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self._headers_sent = True

    def _send_bytes(
        self,
        status: int,
        body: bytes,
        content_type: str,
        extra: Iterable[tuple[str, str]] = (),
    ) -> None:
        no_body = status in (204, 304)
        headers = [("content-type", content_type), *extra]
        if not no_body:
            headers.append(("content-length", str(len(body))))
        self._begin(status, headers)
        if not no_body:
            self._write(body)

    def _send_json(self, status: int, data: Any, extra: Iterable[tuple[str, str]] = ()) -> None:
        self._send_bytes(status, _dumps(data).encode(), "application/json", extra)

    def _method_not_allowed(self, allowed: str) -> None:
        self._send_json(405, {"error": {"message": "method not allowed"}}, [("allow", allowed)])

    def _stream(
        self,
        chunks: Iterable[bytes],
        *,
        content_type: str = "text/event-stream; charset=utf-8",
        delay: float = 0.0,
        extra: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Send ``chunks`` one by one with chunked transfer encoding, pausing between them."""
        headers = [("content-type", content_type), ("transfer-encoding", "chunked"), *extra]
        if content_type.startswith("text/event-stream"):
            headers.append(("cache-control", "no-cache"))
        self._begin(200, headers)
        for index, chunk in enumerate(chunks):
            if index and delay and self.owner._stopping.wait(delay):
                raise ConnectionAbortedError("server stopping")
            if chunk:
                self._write(b"%X\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
        self._write(b"0\r\n\r\n")
        self.wfile.flush()

    # ---- LLM endpoints ----

    def _llm_failure(self, body: JSONDict, *, anthropic: bool = False) -> bool:
        """Answer the failure-control models; True when the request has been answered."""
        model = body.get("model")
        if model == "fail-once-500" and self.owner._claim_fail_once():
            status, kind, message = 500, "api_error" if anthropic else "server_error", _OPENAI_500
        elif model == "always-429":
            status = 429
            kind = "rate_limit_error" if anthropic else "requests"
            message = "Rate limit reached for requests (test server)."
        else:
            return False
        if anthropic:
            data: JSONDict = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            code = "rate_limit_exceeded" if status == 429 else None
            data = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        self._send_json(status, data, [*_RETRY_HEADERS, *self._request_id_header(anthropic)])
        return True

    def _request_id_header(self, anthropic: bool) -> list[tuple[str, str]]:
        name = "request-id" if anthropic else "x-request-id"
        return [(name, f"req_{self.owner._next_seq():010d}")]

    def _chunk_delay(self) -> float:
        return STREAM_CHUNK_DELAY if self.headers.get("x-test-slow") else 0.0

    def _chat_completions(self, request: ReceivedRequest, body: JSONDict) -> None:
        if self._llm_failure(body):
            return
        answer = _chat_answer(body)
        seq = self.owner._next_seq()
        base = {
            "id": f"chatcmpl-at{seq:010d}",
            "created": int(time.time()),
            "model": str(body.get("model", "")),
            "system_fingerprint": "fp_agenttape",
            "service_tier": "default",
        }
        usage = {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.total_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        call_ids = [f"call_at{seq:010d}_{i}" for i in range(len(answer.tool_calls))]
        finish = "tool_calls" if answer.tool_calls else "stop"
        extra = self._request_id_header(False)
        if not body.get("stream"):
            message: JSONDict = {
                "role": "assistant",
                "content": answer.text,
                "refusal": None,
                "annotations": [],
            }
            if answer.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments_json},
                    }
                    for call_id, call in zip(call_ids, answer.tool_calls, strict=True)
                ]
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            data = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            self._send_json(200, data, extra)
            return

        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

        def chunk(delta: JSONDict, finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            data: JSONDict = {**base, "object": "chat.completion.chunk", "choices": [choice]}
            if include_usage:
                data["usage"] = None  # the real API announces usage only in the last chunk
            return _sse(data)

        def events() -> Iterator[bytes]:
            if answer.text is not None:
                yield chunk({"role": "assistant", "content": "", "refusal": None})
                for piece in _pieces(answer.text):
                    yield chunk({"content": piece})
            else:
                yield chunk({"role": "assistant", "content": None, "refusal": None})
                for index, (call_id, call) in enumerate(
                    zip(call_ids, answer.tool_calls, strict=True)
                ):
                    head = {"name": call.name, "arguments": ""}
                    yield chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": index,
                                    "id": call_id,
                                    "type": "function",
                                    "function": head,
                                }
                            ]
                        }
                    )
                    for part in _thirds(call.arguments_json):
                        yield chunk(
                            {"tool_calls": [{"index": index, "function": {"arguments": part}}]}
                        )
            yield chunk({}, finish)
            if include_usage:
                data = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
                yield _sse(data)
            yield _sse("[DONE]")

        self._stream(events(), delay=self._chunk_delay(), extra=extra)

    def _responses(self, request: ReceivedRequest, body: JSONDict) -> None:
        if self._llm_failure(body):
            return
        answer = _responses_answer(body)
        seq = self.owner._next_seq()
        response_id = f"resp_at{seq:010d}"
        output: list[JSONDict] = []
        if answer.text is not None:
            part = {"type": "output_text", "text": answer.text, "annotations": [], "logprobs": []}
            output.append(
                {
                    "id": f"msg_at{seq:010d}",
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [part],
                }
            )
        for index, call in enumerate(answer.tool_calls):
            output.append(
                {
                    "id": f"fc_at{seq:010d}_{index}",
                    "type": "function_call",
                    "status": "completed",
                    "call_id": f"call_at{seq:010d}_{index}",
                    "name": call.name,
                    "arguments": call.arguments_json,
                }
            )
        usage = {
            "input_tokens": answer.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": answer.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": answer.total_tokens,
        }
        instructions = body.get("instructions")

        def response(status: str, with_output: bool) -> JSONDict:
            return {
                "id": response_id,
                "object": "response",
                "created_at": int(time.time()),
                "status": status,
                "error": None,
                "incomplete_details": None,
                "instructions": instructions if isinstance(instructions, str) else None,
                "max_output_tokens": body.get("max_output_tokens"),
                "model": str(body.get("model", "")),
                "output": output if with_output else [],
                "parallel_tool_calls": True,
                "previous_response_id": body.get("previous_response_id"),
                "reasoning": {"effort": None, "summary": None},
                "store": True,
                "temperature": 1.0,
                "text": {"format": {"type": "text"}},
                "tool_choice": "auto",
                "tools": body.get("tools") or [],
                "top_p": 1.0,
                "truncation": "disabled",
                "usage": usage if with_output else None,
                "metadata": {},
            }

        extra = self._request_id_header(False)
        if not body.get("stream"):
            self._send_json(200, response("completed", True), extra)
            return

        def events() -> Iterator[bytes]:
            sequence = iter(range(1_000_000))

            def event(kind: str, **fields: Any) -> bytes:
                return _sse({"type": kind, "sequence_number": next(sequence), **fields}, kind)

            yield event("response.created", response=response("in_progress", False))
            yield event("response.in_progress", response=response("in_progress", False))
            for index, item in enumerate(output):
                at = {"item_id": item["id"], "output_index": index}
                if item["type"] == "message":
                    text = item["content"][0]["text"]
                    empty_part = {**item["content"][0], "text": ""}
                    started = {**item, "status": "in_progress", "content": []}
                    yield event("response.output_item.added", output_index=index, item=started)
                    yield event(
                        "response.content_part.added", **at, content_index=0, part=empty_part
                    )
                    for piece in _pieces(text):
                        yield event(
                            "response.output_text.delta",
                            **at,
                            content_index=0,
                            delta=piece,
                            logprobs=[],
                        )
                    yield event(
                        "response.output_text.done", **at, content_index=0, text=text, logprobs=[]
                    )
                    yield event(
                        "response.content_part.done", **at, content_index=0, part=item["content"][0]
                    )
                else:
                    started = {**item, "status": "in_progress", "arguments": ""}
                    yield event("response.output_item.added", output_index=index, item=started)
                    for piece in _thirds(item["arguments"]):
                        yield event("response.function_call_arguments.delta", **at, delta=piece)
                    yield event(
                        "response.function_call_arguments.done",
                        **at,
                        name=item["name"],
                        arguments=item["arguments"],
                    )
                yield event("response.output_item.done", output_index=index, item=item)
            yield event("response.completed", response=response("completed", True))

        self._stream(events(), delay=self._chunk_delay(), extra=extra)

    def _embeddings(self, request: ReceivedRequest, body: JSONDict) -> None:
        if self._llm_failure(body):
            return
        raw = body.get("input")
        # One string, a list of strings, one token list, or a list of token lists.
        if isinstance(raw, str) or (
            isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw)
        ):
            inputs: list[Any] = [raw]
        elif isinstance(raw, list) and raw:
            inputs = raw
        else:
            raise _BadRequest("'input' must be a non-empty string or list")
        dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS
        if not isinstance(dimensions, int) or not 0 < dimensions <= 4096:
            raise _BadRequest("'dimensions' must be an integer in 1..4096")
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else _dumps(item)
            tokens += len(item) if isinstance(item, list) else _count_tokens(text)
            vector = _embedding(text, dimensions)
            encoded: Any = vector
            if as_base64:
                # The SDK asks for base64 unless told otherwise and decodes it as float32.
                encoded = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": str(body.get("model", "")),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
            self._request_id_header(False),
        )

    def _anthropic_messages(self, request: ReceivedRequest, body: JSONDict) -> None:
        if self._llm_failure(body, anthropic=True):
            return
        answer = _anthropic_answer(body)
        seq = self.owner._next_seq()
        content: list[JSONDict] = []
        if answer.text is not None:
            content.append({"type": "text", "text": answer.text})
        for index, call in enumerate(answer.tool_calls):
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_at{seq:010d}_{index}",
                    "name": call.name,
                    "input": call.arguments,
                }
            )
        stop_reason = "tool_use" if answer.tool_calls else "end_turn"
        usage = {
            "input_tokens": answer.prompt_tokens,
            "output_tokens": answer.completion_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        message = {
            "id": f"msg_at{seq:010d}",
            "type": "message",
            "role": "assistant",
            "model": str(body.get("model", "")),
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        extra = self._request_id_header(True)
        if not body.get("stream"):
            self._send_json(200, message, extra)
            return

        def events() -> Iterator[bytes]:
            def event(kind: str, **fields: Any) -> bytes:
                # The SDK skips SSE events without an `event:` line, so it is not optional.
                return _sse({"type": kind, **fields}, kind)

            start_usage = {**usage, "output_tokens": 1}
            started = {**message, "content": [], "stop_reason": None, "usage": start_usage}
            yield event("message_start", message=started)
            for index, block in enumerate(content):
                if block["type"] == "text":
                    yield event(
                        "content_block_start", index=index, content_block={**block, "text": ""}
                    )
                    if index == 0:
                        yield event("ping")
                    for piece in _pieces(block["text"]):
                        delta = {"type": "text_delta", "text": piece}
                        yield event("content_block_delta", index=index, delta=delta)
                else:
                    yield event(
                        "content_block_start", index=index, content_block={**block, "input": {}}
                    )
                    if index == 0:
                        yield event("ping")
                    for piece in _thirds(_dumps(block["input"])):
                        delta = {"type": "input_json_delta", "partial_json": piece}
                        yield event("content_block_delta", index=index, delta=delta)
                yield event("content_block_stop", index=index)
            yield event(
                "message_delta",
                delta={"stop_reason": stop_reason, "stop_sequence": None},
                usage={"output_tokens": answer.completion_tokens},
            )
            yield event("message_stop")

        self._stream(events(), delay=self._chunk_delay(), extra=extra)

    # ---- plain endpoints ----

    def _json_echo(self, request: ReceivedRequest) -> None:
        self._send_json(200, _query_dict(request.query))

    def _echo(self, request: ReceivedRequest) -> None:
        self._send_json(
            200,
            {
                "method": request.method,
                "path": request.path,
                "query": _query_dict(request.query),
                "headers": request.headers,
                "body": request.body.decode("utf-8", errors="replace"),
            },
        )

    def _status(self, code_text: str) -> None:
        try:
            code = int(code_text)
        except ValueError:
            code = 0
        if not 200 <= code <= 599:
            raise _BadRequest(f"status must be an integer in 200..599, got {code_text!r}")
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = ""
        self._send_json(code, {"status": code, "reason": phrase})

    def _int_param(self, request: ReceivedRequest, name: str, default: int) -> int:
        raw = _query_dict(request.query).get(name, default)
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise _BadRequest(f"'{name}' must be an integer") from None

    def _float_param(self, request: ReceivedRequest, name: str, default: float) -> float:
        raw = _query_dict(request.query).get(name, default)
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise _BadRequest(f"'{name}' must be a number") from None

    def _binary(self, request: ReceivedRequest) -> None:
        size = self._int_param(request, "size", 1024)
        if not 0 <= size <= _MAX_BINARY_BYTES:
            raise _BadRequest(f"'size' must be in 0..{_MAX_BINARY_BYTES}")
        body = _binary_bytes(size)
        plant = _query_dict(request.query).get("plant")
        if isinstance(plant, str):
            # A string (a fake key, say) in the middle of the binary data.
            body = body[: size // 2] + plant.encode() + body[size // 2 :]
        self._send_bytes(200, body, "application/octet-stream")

    def _gzip(self, request: ReceivedRequest) -> None:
        data = {"gzipped": True, "message": "This body was sent gzip-encoded.", "items": [1, 2, 3]}
        # mtime=0 keeps the compressed bytes identical across calls.
        body = gzip.compress(_dumps(data).encode(), mtime=0)
        self._send_bytes(200, body, "application/json", [("content-encoding", "gzip")])

    def _text(self, request: ReceivedRequest) -> None:
        text = "line one\nline two: naïve café ✓\n\nline four, after a blank line\n"
        self._send_bytes(200, text.encode(), "text/plain; charset=utf-8")

    def _big(self, request: ReceivedRequest) -> None:
        mib = self._float_param(request, "mb", 1.0)
        if not 0 <= mib <= _MAX_BIG_MIB:
            raise _BadRequest(f"'mb' must be in 0..{_MAX_BIG_MIB}")
        total = int(mib * _MIB)
        block = bytes(range(256)) * (BIG_CHUNK // 256)

        def chunks() -> Iterator[bytes]:
            remaining = total
            while remaining > 0:
                yield block[:remaining]
                remaining -= BIG_CHUNK

        self._stream(chunks(), content_type="application/octet-stream")

    def _slow_sse(self, request: ReceivedRequest) -> None:
        count = self._int_param(request, "n", 5)
        delay = self._float_param(request, "delay", 0.2)
        if not 0 <= count <= _MAX_SLOW_EVENTS or not 0 <= delay <= 10:
            raise _BadRequest("'n' must be in 0..1000 and 'delay' in 0..10")
        events = (_sse({"index": i, "of": count}, "tick") for i in range(count))
        self._stream(events, delay=delay)

    def _gated_sse(self, request: ReceivedRequest) -> None:
        count = max(1, self._int_param(request, "n", 3))

        def events() -> Iterator[bytes]:
            yield _sse({"index": 0, "of": count}, "tick")
            # Wait in slices so stop() is not held up by a test that never opens the gate.
            deadline = time.monotonic() + GATE_TIMEOUT
            while not self.owner.sse_gate.wait(0.05):
                if self.owner._stopping.is_set():
                    raise ConnectionAbortedError("server stopping")
                if time.monotonic() >= deadline:
                    break
            for i in range(1, count):
                yield _sse({"index": i, "of": count}, "tick")

        self._stream(events())


# --------------------------------------------------------------------------------------------
# Public server object
# --------------------------------------------------------------------------------------------


class LLMServer:
    """Threaded loopback HTTP server; see the module docstring.

    ``stop()`` closes the listening socket *and* every open keep-alive connection, so a client
    whose pool still holds a connection sees the server gone too, as a replay test expects.
    ``start()`` after ``stop()`` binds the same port again, so base URLs stay valid.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.sse_gate = threading.Event()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._seq = 0
        self._failed_once = False
        self._hits_by_path: collections.Counter[str] = collections.Counter()
        self._requests: list[ReceivedRequest] = []

    # ---- lifecycle ----

    def start(self) -> LLMServer:
        if self._httpd is not None:
            raise RuntimeError("LLMServer is already running")
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self._port), self)
        self._port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"LLMServer:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving; idempotent. Later connections are refused."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()  # releases streams paused on a delay or on the gate
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout)
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):  # the client may have closed it already
                    conn.shutdown(socket.SHUT_RDWR)
            # Handler threads close their own sockets; waiting for them avoids leaking one.
            deadline = time.monotonic() + timeout
            while self._connections and self._idle.wait(max(0.0, deadline - time.monotonic())):
                pass
        self._httpd = None
        self._thread = None

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- addresses ----

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("LLMServer has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    # ---- observations ----

    @property
    def hits(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def hits_by_path(self) -> collections.Counter[str]:
        """A snapshot; paths exclude the query string."""
        with self._lock:
            return collections.Counter(self._hits_by_path)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A snapshot, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget requests seen and re-arm ``fail-once-500`` and the SSE gate (not ``errors``)."""
        with self._lock:
            self._requests.clear()
            self._hits_by_path.clear()
            self._failed_once = False
        self.sse_gate.clear()

    # ---- used by the handler threads ----

    def _record_request(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._hits_by_path[request.path] += 1

    def _record_error(self, formatted: str) -> None:
        with self._lock:
            self.errors.append(formatted)

    def _next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def _claim_fail_once(self) -> bool:
        with self._lock:
            first, self._failed_once = not self._failed_once, True
            return first

    def _connection_opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _connection_closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)
            self._idle.notify_all()
