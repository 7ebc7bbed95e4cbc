"""A requests ``HTTPAdapter`` that records and replays through the active session.

It only converts between requests' objects and :mod:`._http`'s canonical shapes; whether a
call replays, runs live or passes through is the engine's decision.
"""

from __future__ import annotations

import http.client
import io
from collections import deque
from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from ..engine import exported, rebuild_error
from ..session import active_session
from . import _http

if TYPE_CHECKING:
    from pathlib import Path

    from .._model import Interaction
    from ..engine import Pending
    from ..session import Session

__all__ = ["requests_adapter", "requests_session"]


class _Adapter(HTTPAdapter):
    # Class-level defaults: requests pickles adapters by HTTPAdapter.__attrs__ only, so an
    # unpickled copy is an unbound adapter rather than a broken one.
    _session: Session | None = None
    _wrapped: HTTPAdapter | None = None

    def __init__(self, session: Session | None, wrapped: HTTPAdapter | None,
                 **adapter_kwargs: Any) -> None:
        super().__init__(**adapter_kwargs)
        self._session = session
        self._wrapped = wrapped

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Any = None) -> requests.Response:
        options: dict[str, Any] = {"stream": stream, "timeout": timeout, "verify": verify,
                                   "cert": cert, "proxies": proxies}
        session = self._session or active_session()
        if session is None or session.engine is None or not session.active:
            return self._real(request, options)  # outside a session: plain requests
        body = _body_bytes(request.body)
        # Each distinct header set (content-length apart) is canonicalised once, see
        # _http.build_request.
        headers = [(k, v) for k, v in request.headers.items() if k.lower() != "content-length"]
        call = _http.build_request(session, request.method or "GET", request.url or "",
                                   headers, body, headers_key=tuple(headers))
        decision = session.engine.decide(call.kind, call.boundary, call.request)
        if decision.interaction is not None:
            return self._replay(request, call, decision.interaction, session.path)
        if decision.pending is None:  # passthrough: inside another boundary's real body
            return self._real(request, options)
        pending = decision.pending
        if call.model_override_body is not None or not isinstance(
                request.body, (bytes, str, type(None))):
            # Send exactly the bytes recorded (a drained upload, or the overriding model).
            request = request.copy()
            request.body = call.model_override_body or body
            request.headers.pop("Transfer-Encoding", None)
            request.headers["Content-Length"] = str(len(request.body))
        try:
            response = self._real(request, options)
            if stream:
                tee: Any = _TeeRaw(response.raw, call, pending)
                return self.build_response(request, tee)
            content = response.content  # errors while reading the body are recorded too
        except Exception as exc:
            pending.finish(error=_http.error_record(exc))
            raise
        _finish(pending, call, response.status_code, response.headers.items(), [content],
                exhausted=True)
        return response

    def close(self) -> None:
        super().close()
        if self._wrapped is not None:
            self._wrapped.close()

    def _real(self, request: requests.PreparedRequest,
              options: dict[str, Any]) -> requests.Response:
        if self._wrapped is not None:
            return self._wrapped.send(request, **options)
        return super().send(request, **options)

    def _replay(self, request: requests.PreparedRequest, call: _http.HttpCall,
                interaction: Interaction, cassette: Path | None = None) -> requests.Response:
        if interaction.error is not None:
            raise _rebuilt(interaction.error, request)
        parts = _http.replay_parts(interaction, call, cassette=cassette)
        raw = _ReplayRaw(list(parts.chunks()), headers=urllib3.HTTPHeaderDict(parts.headers),
                         status=parts.status, reason=http.client.responses.get(parts.status, ""),
                         decode_content=True, request_url=request.url)
        return self.build_response(request, raw)


class _TeeRaw:
    """Stands in for ``response.raw``: hands out what the real one returns, recording it."""

    def __init__(self, raw: Any, call: _http.HttpCall, pending: Pending) -> None:
        self._raw, self._call, self._pending = raw, call, pending
        self._chunks: list[bytes] = []
        self._done = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def stream(self, amt: int | None = 2**16, *args: Any,
               **kwargs: Any) -> Generator[bytes, None, None]:
        for chunk in self._raw.stream(amt, *args, **kwargs):
            self._chunks.append(chunk)
            yield chunk
        self._end(exhausted=True)

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        data: bytes = self._raw.read(amt, *args, **kwargs)
        self._chunks.append(data)
        if amt is None or not data:
            self._end(exhausted=True)
        return data

    def close(self) -> None:
        # Closed before its end was read, unless a sized body had no bytes left to come.
        self._end(exhausted=getattr(self._raw, "length_remaining", None) == 0)
        self._raw.close()

    def _end(self, *, exhausted: bool) -> None:
        if not self._done:
            self._done = True
            _finish(self._pending, self._call, self._raw.status, self._raw.headers.items(),
                    self._chunks, exhausted)


def _finish(pending: Pending, call: _http.HttpCall, status: int,
            headers: Iterable[tuple[str, str]], chunks: list[bytes], exhausted: bool) -> None:
    """Store a body: whole when it was read whole, as its events or chunks otherwise."""
    # requests hands out decoded bytes: the wire encoding no longer describes them.
    pairs = [(k, v) for k, v in headers if k.lower() != "content-encoding"]
    if exhausted and not _http.is_streamed_response(pairs):
        response, usage, metadata = _http.pieces_record(call, status, pairs, chunks)
        pending.finish(response=response, usage=usage, metadata=metadata, fresh=True)
        return
    recorder = _http.StreamRecorder(call, pending, status, pairs)
    for chunk in chunks:
        recorder.feed(chunk)
    recorder.finish(exhausted, stacklevel=5)


class _ReplayRaw(urllib3.HTTPResponse):
    """A recording as urllib3's response; ``stream()`` keeps the recorded chunk boundaries."""

    def __init__(self, chunks: list[bytes], **kwargs: Any) -> None:
        super().__init__(body=io.BytesIO(b"".join(chunks)), preload_content=False, **kwargs)
        self._recorded_sizes = deque(len(chunk) for chunk in chunks if chunk)

    def stream(self, amt: int | None = 2**16,
               decode_content: bool | None = None) -> Generator[bytes, None, None]:
        while self._recorded_sizes:
            data = self.read(min(self._recorded_sizes[0], amt or 2**63), decode_content)
            if not data:
                return
            self._recorded_sizes[0] -= len(data)
            if not self._recorded_sizes[0]:
                self._recorded_sizes.popleft()
            yield data


def _body_bytes(body: object) -> bytes:
    if body is None or isinstance(body, (bytes, str)):
        return body.encode() if isinstance(body, str) else body or b""
    # A streamed upload: drained once here, then sent as these bytes.
    read = getattr(body, "read", None)
    return _body_bytes(read()) if read else b"".join(map(_body_bytes, body))  # type: ignore[call-overload]


def _rebuilt(error: dict[str, Any], request: requests.PreparedRequest) -> BaseException:
    # A transport error replays as requests' own class, even one recorded through httpx.
    family = str(error.get("module", "")).split(".", 1)[0]
    cls = exported(requests.exceptions, _http.error_class_name(error, "requests"))
    if family in ("requests", "httpx", "httpx2") and isinstance(cls, type) and issubclass(
            cls, requests.RequestException):
        return cls(str(error.get("message", "")), request=request)
    return rebuild_error(error)


def requests_adapter(*, session: Session | None = None, wrapped: HTTPAdapter | None = None,
                     **adapter_kwargs: Any) -> HTTPAdapter:
    """An adapter to ``mount`` on a ``requests.Session`` for ``http://`` and ``https://``.

    Bound to the active session at request time (or to ``session``); outside a session it
    sends for real. ``wrapped`` is a real adapter to send through instead of this one's own
    connection pool; ``adapter_kwargs`` go to ``HTTPAdapter`` (``max_retries``, ...).
    """
    return _Adapter(session, wrapped, **adapter_kwargs)


def requests_session(*, session: Session | None = None) -> requests.Session:
    """A ``requests.Session`` with :func:`requests_adapter` mounted for http and https."""
    client = requests.Session()
    adapter = requests_adapter(session=session)
    client.mount("http://", adapter)
    client.mount("https://", adapter)
    return client
