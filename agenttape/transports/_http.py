"""HTTP calls as agenttape sees them, whatever library made them.

The httpx and requests adapters only convert their library's objects to and from the
plain values here: :func:`build_request` turns a request into a canonical
:class:`HttpCall`, :func:`response_record` / :func:`stream_record` turn what came back into
what a cassette stores, and :func:`replay_parts` turns a recording back into status,
headers and bytes. Nothing in this module imports httpx or requests.
"""

from __future__ import annotations

import base64
import codecs
import functools
import json
import operator
import re
import threading
import warnings
import zlib
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urlsplit, urlunsplit

import attrs

from .. import _b64, _fastjson
from . import llm
from .sse import SseEvent, SseParser, serialize_events

if TYPE_CHECKING:
    from pathlib import Path

    from .._model import Interaction
    from ..engine import Pending
    from ..session import Session

__all__ = [
    "BodyRecorder",
    "BodyTeeStream",
    "HttpCall",
    "ReplayParts",
    "ReplayStream",
    "StreamRecorder",
    "TeeStream",
    "build_request",
    "error_class_name",
    "error_record",
    "is_streamed_response",
    "pieces_record",
    "replay_parts",
    "response_record",
    "stream_record",
]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

# Never part of a recorded request: they vary by machine, run, or installed compressors.
_TRANSPORT_HEADERS = frozenset({
    "content-length", "accept-encoding", "connection", "host", "user-agent",
    "transfer-encoding", "keep-alive", "te", "upgrade", "proxy-connection", "expect",
})
# Per-org identifiers that a replay run (CI, another developer) does not share.
_IDENTITY_HEADERS = frozenset({"openai-organization", "openai-project"})
# Wire encoding: the body is stored decoded, so these would lie about it.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
# Response headers that change on every call and would make every re-record a diff.
_NOISY_RESPONSE_HEADERS = frozenset({
    "date", "connection", "keep-alive", "cf-ray", "cf-cache-status", "alt-svc",
    "x-envoy-upstream-service-time", "openai-processing-ms", "server-timing", "report-to",
    "nel", "strict-transport-security", "age", "expires", "via", "x-cache",
})
_NOISY_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "x-stainless-")
_QUERY_SECRETS = frozenset({
    "key", "api-key", "api_key", "apikey", "sig", "signature", "token", "access_token",
    "x-amz-signature", "x-amz-security-token", "x-amz-credential",
})
_MULTIPART_BOUNDARY = "agenttape-boundary"
# Binary bodies from this size are held as their bytes (a Blob), not as base64 text.
_BLOB_MIN = 64 * 1024


@attrs.define(slots=True)
class HttpCall:
    """One outgoing HTTP request, canonicalised; what the engine decides on."""

    kind: str  # "http" | "llm"
    boundary: str  # host[:port] for http, provider name for llm
    request: dict[str, Any]
    stream_requested: bool = False
    model_override_body: bytes | None = None
    provider: llm.Provider | None = None
    method: str = "GET"
    url: str = ""


# -- requests --------------------------------------------------------------------------

def _secret_names(session: Session | None) -> frozenset[str]:
    """The session's denylisted names (lower-case, ``_`` folded to ``-``)."""
    redactor = session.redactor if session is not None else None
    return redactor.denylist if redactor is not None else _default_secret_names()


@functools.cache
def _default_secret_names() -> frozenset[str]:
    from ..redaction import DEFAULT_DENYLIST

    return frozenset(k.lower().replace("_", "-") for k in DEFAULT_DENYLIST)


def _split_url(url: str) -> tuple[str, str, str, list[tuple[str, str]]]:
    """``(scheme, netloc, path, query pairs)``; host lower-cased, default port dropped."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    netloc = _canonical_netloc(scheme, parts.netloc)
    pairs = parse_qsl(parts.query, keep_blank_values=True) if parts.query else []
    return scheme, netloc, parts.path or "/", pairs


# A session talks to a handful of hosts; parsing host and port costs more than the cache.
@functools.lru_cache(maxsize=256)
def _canonical_netloc(scheme: str, netloc: str) -> str:
    parts = SplitResult(scheme, netloc, "", "", "")
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"


# A session talks to a handful of hosts and paths; only the query changes from call to
# call (and often not even that: an LLM API has none).
@functools.lru_cache(maxsize=1024)
def _split_base(url: str) -> tuple[str, str, str, str]:
    """``(scheme, netloc, path, canonical URL)`` of a URL without query or fragment."""
    scheme, netloc, path, _ = _split_url(url)
    return scheme, netloc, path, urlunsplit((scheme, netloc, path, "", ""))


# A query that parse_qsl and quote() would give back unchanged: names and values of
# unreserved characters only (no "%", "+", "=" in a value, empty field or fragment).
_SIMPLE_QUERY = re.compile(
    r"[\w.~-]+(?:=[\w.~-]*)?(?:&[\w.~-]+(?:=[\w.~-]*)?)*", re.ASCII).fullmatch


def _target(url: str, secrets: frozenset[str]) -> tuple[str, str, list[tuple[str, str]], str]:
    """``(netloc, path, query pairs, canonical URL)``: the pairs sorted by name, secret ones
    (``secrets`` or :data:`_QUERY_SECRETS`) dropped."""
    base, _, query = url.partition("?")
    simple = "#" not in url and (not query or _SIMPLE_QUERY(query) is not None)
    if simple:
        _, netloc, path, prefix = _split_base(base)
        pairs: list[tuple[str, str]] = []
        if query:
            for field in query.split("&"):
                name, _, value = field.partition("=")
                pairs.append((name, value))
    else:
        scheme, netloc, path, pairs = _split_url(url)
        prefix = urlunsplit((scheme, netloc, path, "", ""))
    kept: list[tuple[str, str]] = []
    for k, v in pairs:
        lowered = k.lower()
        if lowered not in _QUERY_SECRETS and lowered.replace("_", "-") not in secrets:
            kept.append((k, v))
    pairs = sorted(kept, key=_first)  # stable: a repeated name keeps its values' order
    if not pairs:
        return netloc, path, pairs, prefix
    if simple:  # quote() would leave these characters as they are
        return netloc, path, pairs, prefix + "?" + "&".join([f"{k}={v}" for k, v in pairs])
    return netloc, path, pairs, prefix + "?" + urlencode(pairs, quote_via=quote)


_first = operator.itemgetter(0)


def _headers_dict(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _header_value(pairs: Iterable[tuple[str, str]], name: str) -> str:
    """``_headers_dict(pairs).get(name, "")`` without building the dict (per response)."""
    return ", ".join([value for key, value in pairs if key.lower() == name])


def body_fields(body: bytes, content_type: str, *, form: bool = True) -> dict[str, Any]:
    """``{json|form|text|body_b64: ...}`` for a body, or ``{}`` when there is none."""
    if not body:
        return {}
    return _body_fields(body, content_type.split(";", 1)[0].strip().lower(), form=form)


def _body_fields(body: bytes, media: str, *, form: bool = True) -> dict[str, Any]:
    if media.endswith("json") or (not media and body.lstrip()[:1] in (b"{", b"[")):
        try:
            return {"json": _fastjson.loads(body)}
        except ValueError:
            pass
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {"body_b64": base64.b64encode(body).decode("ascii")}
    if form and media == "application/x-www-form-urlencoded":
        fields: dict[str, Any] = {}
        for key, value in parse_qsl(text, keep_blank_values=True):
            if key in fields:
                previous = fields[key]
                fields[key] = [*previous, value] if isinstance(previous, list) else [
                    previous, value]
            else:
                fields[key] = value
        return {"form": fields}
    return {"text": text}


def _fixed_multipart(content_type: str, body: bytes) -> tuple[str, bytes]:
    """Multipart boundaries are random per request; pin them so requests can match."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value:
            value = value.strip('"')
            return (content_type.replace(value, _MULTIPART_BOUNDARY),
                    body.replace(value.encode("latin-1"), _MULTIPART_BOUNDARY.encode()))
    return content_type, body


# Hosts and paths repeat across a session's requests; identifying the provider walks every
# known host pattern.
_identify = functools.lru_cache(maxsize=1024)(llm.identify)


class _Bounded:
    """A dict of at most ``size`` entries, the oldest dropped first; shared by threads."""

    __slots__ = ("_data", "_lock", "_size")

    def __init__(self, size: int) -> None:
        self._data: dict[Any, Any] = {}
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        return self._data.get(key)

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            if key not in self._data and len(self._data) >= self._size:
                del self._data[next(iter(self._data))]
            self._data[key] = value


class _HeaderView:
    """What a request's headers mean to agenttape, worked out once per distinct set."""

    __slots__ = ("accept_sse", "all", "ascii", "content_type", "kept", "media", "multipart")

    def __init__(self, pairs: Iterable[tuple[str, str]], secrets: frozenset[str]) -> None:
        pairs = [p for p in pairs if p[0].lower() != "content-length"]
        # Only an ASCII set is cached: its bytes read the same in any encoding a client
        # may decode headers with, so equal raw pairs always mean equal text.
        self.ascii = all(isinstance(n, str) and isinstance(v, str) and n.isascii()
                         and v.isascii() for n, v in pairs)
        # `all` is read only (never handed out); `kept` is copied into each request.
        self.all = _headers_dict(pairs)
        self.content_type: str = self.all.get("content-type", "")
        self.media = self.content_type.split(";", 1)[0].strip().lower()
        self.multipart = self.content_type.lower().startswith("multipart/")
        self.accept_sse = "text/event-stream" in self.all.get("accept", "")
        self.kept = {
            name: value for name, value in sorted(self.all.items())
            if name not in _TRANSPORT_HEADERS and name not in _IDENTITY_HEADERS
            and not name.startswith("x-stainless-")
            and name.replace("_", "-") not in secrets
        }


# Requests of a session carry the same few header sets (the client's defaults, an SDK's
# headers) and differ in their body; each set is canonicalised once. Keyed by the exact
# header pairs (less content-length, which is never part of a recording) and the secret
# names in force: the same key always yields the same view.
_HEADER_VIEWS = _Bounded(256)

HeaderPairs = Iterable[tuple[str, str]]


def _header_view(headers: HeaderPairs | Callable[[], HeaderPairs], key: Hashable | None,
                 secrets: frozenset[str]) -> _HeaderView:
    if key is not None:
        view: _HeaderView | None = _HEADER_VIEWS.get((key, secrets))
        if view is not None:
            return view
    view = _HeaderView(headers() if callable(headers) else headers, secrets)
    # A multipart body's boundary is random, so its content-type never repeats.
    if key is not None and view.ascii and not view.multipart:
        _HEADER_VIEWS.put((key, secrets), view)
    return view


def build_request(session: Session | None, method: str, url: str,
                  headers: HeaderPairs | Callable[[], HeaderPairs], body: bytes, *,
                  headers_key: Hashable | None = None) -> HttpCall:
    """Canonicalise one outgoing request (DESIGN §5).

    ``headers`` are ``(name, value)`` pairs, or a function returning them. With
    ``headers_key``, a value that identifies those pairs exactly whatever the
    ``content-length`` among them, the function is only called for a set not seen lately.
    """
    config = session.config if session is not None else None
    secrets = _secret_names(session)
    method = method.upper()
    netloc, path, pairs, canonical_url = _target(url, secrets)
    view = _header_view(headers, headers_key, secrets)
    content_type, media, all_headers = view.content_type, view.media, view.all
    kept = dict(view.kept)
    if view.multipart:
        content_type, body = _fixed_multipart(content_type, body)
        media = content_type.split(";", 1)[0].strip().lower()
        all_headers = {**all_headers, "content-type": content_type}
        if "content-type" in kept:
            kept["content-type"] = content_type
    provider = _identify(netloc, path, tuple(config.llm_hosts) if config is not None else ())
    if provider is not None:
        parsed: Any = None
        if body and content_type.split(";")[0].strip().lower() in ("application/json", ""):
            try:
                parsed = _fastjson.loads(body)
            except ValueError:
                parsed = None
        override = config.model_override if config is not None else None
        override_body: bytes | None = None
        if override and isinstance(parsed, dict):
            changed = llm.override_model(parsed, override)
            if changed is not None:
                parsed = changed
                override_body = json.dumps(changed, ensure_ascii=False).encode("utf-8")
        fields = {} if isinstance(parsed, dict) else body_fields(body, content_type)
        _, request = llm.llm_request(
            provider, method=method, path=path, query=pairs,
            headers=all_headers, body=parsed, body_fields=fields,
        )
        stream = view.accept_sse or llm.wants_stream(provider, path, parsed)
        return HttpCall("llm", provider.name, request, stream, override_body, provider,
                        method, url)
    request = {"method": method, "url": canonical_url, "headers": kept}
    if body:
        request.update(_body_fields(body, media))
    return HttpCall("http", netloc, request, view.accept_sse, None, None, method, url)


# -- responses -------------------------------------------------------------------------

def _response_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        key = name.lower()
        if key in _WIRE_HEADERS or key in _NOISY_RESPONSE_HEADERS or key.startswith(
                _NOISY_PREFIXES):
            continue
        if key in out:
            previous = out[key]
            out[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[key] = value
    return out


def is_streamed_response(headers: Iterable[tuple[str, str]]) -> bool:
    """Whether a response body is a stream to tee rather than a body to read whole."""
    media = _header_value(headers, "content-type").split(";")[0].strip().lower()
    return media in ("text/event-stream", "application/x-ndjson", "application/jsonl")


def decode_body(data: bytes, encoding: str) -> bytes | None:
    """Undo ``content-encoding`` (for bodies read raw from a stream); None if unknown."""
    result = data
    for coding in reversed([c.strip().lower() for c in encoding.split(",") if c.strip()]):
        if coding in ("identity", ""):
            continue
        try:
            if coding in ("gzip", "x-gzip"):
                result = zlib.decompress(result, 16 + zlib.MAX_WBITS)
            elif coding == "deflate":
                try:
                    result = zlib.decompress(result)
                except zlib.error:
                    result = zlib.decompress(result, -zlib.MAX_WBITS)
            elif coding == "br":
                import brotli  # type: ignore[import-not-found,unused-ignore]

                result = brotli.decompress(result)
            elif coding == "zstd":
                import zstandard  # type: ignore[import-not-found,unused-ignore]

                result = zstandard.ZstdDecompressor().decompressobj().decompress(result)
            else:
                return None
        except Exception:  # a body we cannot decode is kept as sent
            return None
    return result


def _llm_value(body: bytes) -> Any:
    """A provider's body as stored: its JSON, else text, else base64."""
    if body.lstrip()[:1] in (b"{", b"["):
        try:
            return _fastjson.loads(body)
        except ValueError:
            pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return {"body_b64": base64.b64encode(body).decode("ascii")}


def response_record(call: HttpCall, status: int, headers: Iterable[tuple[str, str]],
                    body: bytes) -> tuple[Any, dict[str, Any] | None, dict[str, Any]]:
    """``(response, usage, metadata)`` for a whole, already decoded body."""
    header_pairs = list(headers)
    kept = _response_headers(header_pairs)
    if call.kind == "llm":
        value = _llm_value(body)
        style = call.provider.style if call.provider else "openai"
        usage = llm.usage_of(style, value) if status < 400 else None
        return value, usage, {"http": {"status_code": status, "headers": kept}}
    content_type = _header_value(header_pairs, "content-type")
    response = {"status_code": status, "headers": kept,
                **body_fields(body, content_type, form=False)}
    return response, None, {}


def pieces_record(call: HttpCall, status: int, headers: Iterable[tuple[str, str]],
                  chunks: list[bytes]) -> tuple[Any, dict[str, Any] | None, dict[str, Any]]:
    """:func:`response_record` for a whole body still in the pieces it arrived in.

    Empties ``chunks``. A large binary body becomes a :class:`~agenttape._b64.Blob`, its
    bytes gathered while the pieces are let go: a 100 MB download is then held about
    once, where its base64 text would have been held twice while being built.
    """
    header_pairs = list(headers)
    if _maybe_text(chunks, header_pairs, call.kind):
        body = b"".join(chunks)
        chunks.clear()
        return response_record(call, status, header_pairs, body)
    fields: dict[str, Any] = {"body_b64": (
        _b64.Blob(_b64.join_consuming(chunks)) if sum(map(len, chunks)) >= _BLOB_MIN
        else _b64.encode_consuming(chunks))}
    kept = _response_headers(header_pairs)
    if call.kind == "llm":
        return fields, None, {"http": {"status_code": status, "headers": kept}}
    return {"status_code": status, "headers": kept, **fields}, None, {}


def _maybe_text(chunks: list[bytes], headers: list[tuple[str, str]], kind: str) -> bool:
    """False only for a body that response_record would store as ``body_b64``."""
    first = next((c.lstrip()[:1] for c in chunks if c.strip()), b"")
    media = _header_value(headers, "content-type").split(";", 1)[0].strip().lower()
    if first in (b"{", b"[") or (kind == "http" and media.endswith("json")):
        return True  # JSON decoding is tried first and accepts UTF-16/32 too
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for chunk in chunks:
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _stream_format(headers: Mapping[str, str]) -> str:
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "text/event-stream":
        return "sse"
    if media in ("application/x-ndjson", "application/jsonl"):
        return "ndjson"
    return "bytes"


def _chunk_value(chunk: bytes) -> Any:
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError:
        return {"body_b64": base64.b64encode(chunk).decode("ascii")}


def stream_record(call: HttpCall, status: int, headers: Iterable[tuple[str, str]],
                  events: Iterable[SseEvent] | Iterable[bytes],
                  complete: bool) -> tuple[Any, dict[str, Any] | None, dict[str, Any]]:
    """``(response, usage, metadata)`` for a streamed body (events or raw wire chunks)."""
    header_pairs = list(headers)
    all_headers = _headers_dict(header_pairs)
    kept = _response_headers(header_pairs)
    items = list(events)
    fmt = _stream_format(all_headers)
    records: list[Any]
    if items and isinstance(items[0], SseEvent):
        fmt = "sse"
        records = [e.to_record() for e in items if isinstance(e, SseEvent)]
    else:
        raw = [bytes(c) for c in items if isinstance(c, (bytes, bytearray, memoryview))]
        encoding = all_headers.get("content-encoding", "")
        if encoding and encoding.lower() != "identity":
            decoded = decode_body(b"".join(raw), encoding)
            if decoded is None:
                kept["content-encoding"] = encoding
            else:
                raw = [decoded]
        if fmt == "sse":
            parser = SseParser()
            parsed = [e for chunk in raw for e in parser.feed(chunk)] + parser.finish()
            records = [e.to_record() for e in parsed]
        elif fmt == "ndjson":
            lines = b"".join(raw).splitlines()
            records = [{"data": _ndjson_value(line)} for line in lines if line.strip()]
        else:
            records = [_chunk_value(c) for c in raw if c]
    datas = [r.get("data") for r in records if isinstance(r, dict)] if fmt != "bytes" else []
    complete = complete or any(llm.is_terminal(d) for d in datas[-3:])
    metadata: dict[str, Any] = {"stream": True, "stream_complete": complete}
    if fmt != "sse":
        metadata["stream_format"] = fmt
    if call.kind == "llm":
        style = call.provider.style if call.provider else "openai"
        metadata = {"http": {"status_code": status, "headers": kept}, **metadata}
        return records, llm.stream_usage(style, datas), metadata
    key = "chunks" if fmt == "bytes" else "events"
    return {"status_code": status, "headers": kept, key: records}, None, metadata


def _ndjson_value(line: bytes) -> Any:
    text = line.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class _Recorder:
    """Collects a live response's chunks as the caller reads them; stores them once."""

    __slots__ = ("_chunks", "call", "done", "headers", "pending", "status")

    def __init__(self, call: HttpCall, pending: Pending, status: int,
                 headers: Iterable[tuple[str, str]]) -> None:
        self.call = call
        self.pending = pending
        self.status = status
        self.headers = list(headers)
        self._chunks: list[bytes] = []
        self.done = False

    def feed(self, chunk: bytes) -> None:
        if not self.done:
            self._chunks.append(bytes(chunk))


class StreamRecorder(_Recorder):
    """An event stream: :meth:`finish` stores what was seen and says if it was whole."""

    __slots__ = ()

    def finish(self, exhausted: bool, *, stacklevel: int = 3) -> None:
        """Store what was seen; warn when the caller stopped before the end."""
        if self.done:
            return
        self.done = True
        response, usage, metadata = stream_record(self.call, self.status, self.headers,
                                                  self._chunks, exhausted)
        self._chunks = []
        self.pending.finish(response=response, usage=usage, metadata=metadata)
        if not metadata["stream_complete"]:
            from ..errors import StreamingNotRecordedWarning

            warnings.warn(
                f"agenttape: the {self.call.kind} stream from {self.call.boundary} was closed "
                "before its end; the recording keeps what was received and is marked "
                "stream_complete: false",
                StreamingNotRecordedWarning,
                stacklevel=stacklevel,
            )


class BodyRecorder(_Recorder):
    """A whole (not event-stream) body, stored once it has been read to the end."""

    __slots__ = ()

    def fail(self, exc: BaseException) -> None:
        """The body could not be read whole: record the error, as a failed read does."""
        if not self.done:
            self.done = True
            self._chunks = []
            self.pending.finish(error=error_record(exc))

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        chunks, self._chunks = self._chunks, []
        response, usage, metadata = pieces_record(self.call, self.status, self.headers, chunks)
        self.pending.finish(response=response, usage=usage, metadata=metadata, fresh=True)


# -- replay ----------------------------------------------------------------------------

@attrs.define(slots=True)
class ReplayParts:
    """A recording as a response: status, headers and either a body or a stream."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes | bytearray = b""
    is_stream: bool = False
    events: list[Any] | None = None
    stream_format: str = "sse"
    # Where the recording came from, for the error a bad event raises while streaming.
    index: int | None = None
    cassette: Path | None = None

    def chunks(self) -> Iterator[bytes]:
        """The body as the wire would carry it: one piece per recorded event or chunk."""
        body = self.body
        if not self.is_stream and len(body) <= _REPLAY_PIECE:
            # Most bodies: one piece, handed out without a generator to step through.
            return iter((bytes(body) if isinstance(body, bytearray) else body,) if body else ())
        return self._pieces()

    def _pieces(self) -> Iterator[bytes]:
        if not self.is_stream:
            # A large body (decoded into a bytearray) goes out in bytes pieces, the way the
            # wire would deliver it, without a whole second copy.
            view = memoryview(self.body)
            for start in range(0, len(view), _REPLAY_PIECE):
                yield bytes(view[start:start + _REPLAY_PIECE])
            return
        for position, item in enumerate(self.events or ()):
            try:
                chunk = self._chunk(item)
            except _BAD_RECORDING as exc:
                raise _corrupt(exc, self.index, self.cassette,
                               f"response[{position}]") from None
            yield chunk

    def _chunk(self, item: Any) -> bytes:
        if self.stream_format == "sse":
            return serialize_events([item] if isinstance(item, dict) else [{"data": item}])
        if self.stream_format == "ndjson":
            data = item.get("data") if isinstance(item, dict) else item
            text = data if isinstance(data, str) else json.dumps(
                data, ensure_ascii=False, separators=(",", ":"))
            return (text + "\n").encode("utf-8")
        if isinstance(item, dict):
            body = item.get("body_b64")
            if isinstance(body, _b64.Blob):  # a chunk a session loaded from its asset
                return bytes(body.data)
            if isinstance(body, str):
                return base64.b64decode(body, validate=True)
        return str(item).encode("utf-8")


def _header_pairs(headers: Any) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    # `dict` first: the ABC check alone costs as much as the loop for a few headers.
    if isinstance(headers, (dict, Mapping)):
        for name, value in headers.items():
            if type(name) is str and type(value) is str:  # nearly always: no conversions
                if name.lower() not in _WIRE_HEADERS:
                    pairs.append((name, value))
                continue
            if str(name).lower() in _WIRE_HEADERS:
                continue
            values = value if isinstance(value, list) else [value]
            pairs.extend((str(name), str(v)) for v in values)
    return pairs


_REPLAY_PIECE = 1024 * 1024

# A replayed JSON body is encoded on every request (agenttape._fastjson says why so).
_compact_json = _fastjson.compact(sort_keys=False)


def _body_bytes(fields: Mapping[str, Any]) -> bytes | bytearray:
    if "json" in fields:
        return _compact_json(fields["json"]).encode()
    if isinstance(fields.get("text"), str):
        return str(fields["text"]).encode("utf-8")
    blob = fields.get("body_b64")
    if isinstance(blob, _b64.Blob):
        # Not copied: replay only reads it (ReplayParts.chunks hands out copies in pieces).
        return blob.data
    if isinstance(fields.get("body_b64"), str):
        # Slice by slice: a whole-text decode would copy a large body's text once more.
        body = _b64.decode(fields["body_b64"])
        if body is None:
            raise ValueError("body_b64 is not base64")
        return body
    return b""


def _ensure_type(headers: list[tuple[str, str]], content_type: str) -> list[tuple[str, str]]:
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("content-type", content_type))
    return headers


# What rebuilding a response from a well-formed but wrong recording can raise (a hand
# edit, a merge, a hostile pull request): reported as a corrupt cassette, not as a crash.
_BAD_RECORDING = (TypeError, ValueError, KeyError, AttributeError, OverflowError)


def _corrupt(exc: Exception, index: int | None, cassette: Path | None,
             field: str = "response") -> Exception:
    from ..errors import CassetteCorruptError

    return CassetteCorruptError(cassette, f"cannot be replayed as an HTTP response: {exc}",
                                index=index, field=field)


def _status(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 999:
        raise ValueError(f"status_code must be an integer from 100 to 999, not {value!r:.40}")
    return value


def replay_parts(interaction: Interaction, call: HttpCall | None = None, *,
                 cassette: Path | None = None) -> ReplayParts:
    """Turn a recorded ``http``/``llm`` interaction back into a response.

    With ``call`` given, a streamed LLM request whose recording holds no stream raises
    :class:`~agenttape.StreamingReplayError`. A recording that cannot be a response (a
    status that is not a number, a ``body_b64`` that is not base64) raises
    :class:`~agenttape.CassetteCorruptError` naming ``cassette`` and the interaction.
    """
    try:
        parts = _replay_parts(interaction)
    except _BAD_RECORDING as exc:
        raise _corrupt(exc, interaction.index, cassette) from None
    parts.index, parts.cassette = interaction.index, cassette
    metadata = interaction.metadata or {}
    if (call is not None and call.kind == "llm" and call.stream_requested
            and not parts.is_stream and parts.status < 400):
        from ..errors import StreamingReplayError

        source = "by a callback object" if metadata.get("source") == "callback" else (
            "without streaming")
        raise StreamingReplayError(
            f"agenttape: a streaming {call.boundary} call ({call.request.get('endpoint')}) "
            f"was replayed, but its recording (interaction {interaction.index}) was made "
            f"{source} and holds no stream. Re-record it with stream=True "
            "(--agenttape-record or mode='new_episodes' after deleting the entry).",
            boundary=call.boundary,
        )
    return parts


def _replay_parts(interaction: Interaction) -> ReplayParts:
    metadata = interaction.metadata or {}
    response = interaction.response
    is_stream = bool(metadata.get("stream"))
    fmt = str(metadata.get("stream_format", "sse"))
    if interaction.kind == "llm":
        raw_http = metadata.get("http")
        http: dict[str, Any] = raw_http if isinstance(raw_http, dict) else {}
        status = _status(http.get("status_code", 200))
        headers = _header_pairs(http.get("headers"))
        if is_stream:
            events = response if isinstance(response, list) else []
            parts = ReplayParts(status, headers, b"", True, list(events), fmt)
        elif isinstance(response, dict) and set(response) == {"body_b64"}:
            parts = ReplayParts(status, headers, _body_bytes(response))
        elif isinstance(response, str):
            parts = ReplayParts(status, headers, response.encode("utf-8"))
        else:
            parts = ReplayParts(status, _ensure_type(headers, "application/json"),
                                _body_bytes({"json": response}))
    else:
        data = response if isinstance(response, dict) else {}
        status = _status(data.get("status_code", 200))
        headers = _header_pairs(data.get("headers"))
        if is_stream or "events" in data or "chunks" in data:
            events = data.get("events", data.get("chunks")) or []
            if "chunks" in data:
                fmt = "bytes"
            parts = ReplayParts(status, headers, b"", True, list(events), fmt)
        else:
            parts = ReplayParts(status, headers, _body_bytes(data))
    if parts.is_stream and parts.stream_format == "sse":
        _ensure_type(parts.headers, "text/event-stream")
    return parts


# -- byte streams (adapters subclass these with their library's stream base classes) --

class ReplayStream:
    """A recorded body served as a real stream: one chunk per recorded event."""

    def __init__(self, parts: ReplayParts) -> None:
        self._parts = parts

    def __iter__(self) -> Iterator[bytes]:
        return self._parts.chunks()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._parts.chunks():
            yield chunk

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class TeeStream:
    """Hands each chunk to the caller as it arrives and to the recorder; stores on close."""

    def __init__(self, inner: Any, recorder: StreamRecorder) -> None:
        self._inner = inner
        self._recorder = recorder
        self._exhausted = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._recorder.feed(chunk)
            yield chunk
        self._exhausted = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._recorder.feed(chunk)
            yield chunk
        self._exhausted = True

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._recorder.finish(self._exhausted, stacklevel=4)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._recorder.finish(self._exhausted, stacklevel=4)


class BodyTeeStream:
    """Hands a body to the caller as it arrives and records it whole.

    Whatever the caller leaves unread is read on close, so the recording never depends
    on how far the caller read (a client that reads the whole body sees no difference;
    a ``client.stream()`` caller gets its first bytes at once instead of after the last).
    """

    def __init__(self, inner: Any, recorder: BodyRecorder) -> None:
        self._inner = inner
        self._recorder = recorder
        # One iterator for the caller's reads and the drain on close: a second iteration
        # of the real stream could start over or fail.
        self._it: Any = None

    def __iter__(self) -> Iterator[bytes]:
        if self._it is None:
            self._it = iter(self._inner)
        try:
            for chunk in self._it:
                self._recorder.feed(chunk)
                yield chunk
        except Exception as exc:
            self._recorder.fail(exc)
            raise
        self._recorder.finish()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._it is None:
            self._it = self._inner.__aiter__()
        try:
            async for chunk in self._it:
                self._recorder.feed(chunk)
                yield chunk
        except Exception as exc:
            self._recorder.fail(exc)
            raise
        self._recorder.finish()

    def close(self) -> None:
        try:
            if not self._recorder.done:
                try:
                    for chunk in self._it if self._it is not None else self._inner:
                        self._recorder.feed(chunk)
                except Exception as exc:
                    self._recorder.fail(exc)
                else:
                    self._recorder.finish()
        finally:
            self._inner.close()

    async def aclose(self) -> None:
        try:
            if not self._recorder.done:
                it = self._it if self._it is not None else self._inner.__aiter__()
                try:
                    async for chunk in it:
                        self._recorder.feed(chunk)
                except Exception as exc:
                    self._recorder.fail(exc)
                else:
                    self._recorder.finish()
        finally:
            await self._inner.aclose()


# -- errors ----------------------------------------------------------------------------

def error_record(exc: BaseException) -> dict[str, Any]:
    """``{type, module, message}`` naming the library's public module when it exports it."""
    import sys

    cls = type(exc)
    module = cls.__module__
    top = module.split(".", 1)[0]
    if getattr(sys.modules.get(top), cls.__name__, None) is cls:
        module = top
    return {"type": cls.__name__, "module": module, "message": str(exc)}


# A transport error recorded by one library, replayed through another family.
_EQUIVALENTS: dict[str, dict[str, str]] = {
    "httpx": {
        "ConnectionError": "ConnectError", "SSLError": "ConnectError",
        "ProxyError": "ProxyError", "ConnectTimeout": "ConnectTimeout",
        "ReadTimeout": "ReadTimeout", "Timeout": "TimeoutException",
        "ChunkedEncodingError": "RemoteProtocolError", "TooManyRedirects": "TooManyRedirects",
        "InvalidSchema": "UnsupportedProtocol", "ContentDecodingError": "DecodingError",
    },
    "requests": {
        "ConnectError": "ConnectionError", "ConnectTimeout": "ConnectTimeout",
        "ReadTimeout": "ReadTimeout", "WriteTimeout": "Timeout", "PoolTimeout": "Timeout",
        "TimeoutException": "Timeout", "ReadError": "ConnectionError",
        "WriteError": "ConnectionError", "RemoteProtocolError": "ConnectionError",
        "LocalProtocolError": "ConnectionError", "ProxyError": "ProxyError",
        "NetworkError": "ConnectionError", "TransportError": "ConnectionError",
        "UnsupportedProtocol": "InvalidSchema", "TooManyRedirects": "TooManyRedirects",
        "DecodingError": "ContentDecodingError",
    },
}
_FAMILY = {"httpx": "httpx", "httpx2": "httpx", "requests": "requests"}


def error_class_name(error: Mapping[str, Any], family: str) -> str:
    """The class name to look up in ``family`` (``httpx`` for httpx and httpx2, or
    ``requests``) for a recorded error, translating between families when needed."""
    name = str(error.get("type", ""))
    recorded = _FAMILY.get(str(error.get("module", "")).split(".", 1)[0])
    if recorded == _FAMILY.get(family, family):
        return name
    return _EQUIVALENTS.get(_FAMILY.get(family, family), {}).get(name, name)
