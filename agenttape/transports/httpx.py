"""``agenttape.transport()``: one transport for httpx and httpx2, sync and async clients.

It only converts: httpx requests and responses to and from the plain values of
:mod:`agenttape.transports._http`; the session's engine decides what happens.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..session import active_session
from . import _http

if TYPE_CHECKING:
    from pathlib import Path

    from .._model import Interaction
    from ..session import Session

__all__ = ["AgentTapeTransport", "transport"]

_KEPT_EXTENSIONS = ("http_version", "reason_phrase")
# Left out of a header set's cache key, as spelled by httpx and by hand; any other spelling
# only makes a key that misses the cache (the header is dropped either way).
_CONTENT_LENGTH = frozenset({b"Content-Length", b"content-length", b"CONTENT-LENGTH"})


class _Lib:
    """One HTTP library (httpx or httpx2) and the stream classes its clients accept."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        bases = (module.SyncByteStream, module.AsyncByteStream)
        self.replay_stream: Any = type("ReplayStream", (_http.ReplayStream, *bases), {})
        self.tee_stream: Any = type("TeeStream", (_http.TeeStream, *bases), {})
        self.body_tee: Any = type("BodyTeeStream", (_http.BodyTeeStream, *bases), {})


def _modules() -> list[ModuleType]:
    found: list[ModuleType] = []
    for name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if all(module is not seen for seen in found):  # httpx2 can alias itself as httpx
            found.append(module)
    return found


_LIBS = {module.__name__: _Lib(module) for module in _modules()}


# Request class -> its library: the MRO walk below costs more than a replayed lookup.
_LIB_OF_TYPE: dict[type, _Lib] = {}


def _lib_of(request: Any) -> _Lib:
    lib = _LIB_OF_TYPE.get(type(request))
    if lib is not None:
        return lib
    for cls in type(request).__mro__:
        lib = _LIBS.get(cls.__module__.split(".", 1)[0])
        if lib is not None:
            _LIB_OF_TYPE[type(request)] = lib
            return lib
    raise TypeError(f"agenttape.transport() got a {type(request).__qualname__}, not an httpx "
                    "or httpx2 request")


def _replayed(lib: _Lib, request: Any, call: _http.HttpCall, recording: Interaction,
              cassette: Path | None = None) -> Any:
    if recording.error is not None:
        name = _http.error_class_name(recording.error, "httpx")
        from ..engine import exported, rebuild_error

        cls = exported(lib.module, name)  # never getattr: httpx2's __getattr__ imports
        message = str(recording.error.get("message", ""))
        if isinstance(cls, type) and issubclass(cls, lib.module.RequestError):
            raise cls(message, request=request)
        raise rebuild_error(recording.error)
    parts = _http.replay_parts(recording, call, cassette=cassette)
    headers: list[tuple[Any, Any]] = parts.headers
    for name, value in headers:
        if not (name.isascii() and value.isascii()):
            # httpx encodes str headers as ASCII; a recorded value it decoded from UTF-8
            # goes back as those bytes.
            headers = [
                (name, value) if name.isascii() and value.isascii()
                else (name.encode("utf-8", "replace"), value.encode("utf-8", "replace"))
                for name, value in parts.headers
            ]
            break
    else:
        headers = list(headers)  # parts.headers stay as replay_parts made them
    if not parts.is_stream:
        headers.append(("content-length", str(len(parts.body))))
    return lib.module.Response(parts.status, headers=headers, stream=lib.replay_stream(parts),
                               request=request, extensions={"http_version": b"HTTP/1.1"})


def _outgoing(lib: _Lib, request: Any, call: _http.HttpCall) -> Any:
    if call.model_override_body is None:
        return request
    headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length"]
    return lib.module.Request(request.method, request.url, headers=headers,
                              content=call.model_override_body, extensions=request.extensions)


def _finish_read(lib: _Lib, call: _http.HttpCall, pending: Any, request: Any,
                 response: Any) -> Any:
    """Store a whole (already read) response; give the caller its decoded twin."""
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    value, usage, metadata = _http.response_record(call, response.status_code, headers,
                                                   response.content)
    pending.finish(response=value, usage=usage, metadata=metadata, fresh=True)
    extensions = {k: v for k, v in response.extensions.items() if k in _KEPT_EXTENSIONS}
    return lib.module.Response(response.status_code, headers=headers, content=response.content,
                               request=request, extensions=extensions)


def _tee_body(lib: _Lib, call: _http.HttpCall, pending: Any, response: Any,
              items: list[tuple[str, str]]) -> Any:
    """Record a whole body while handing it to the caller as it arrives (DESIGN §16: a
    large download is never held twice). Only an identity-encoded one: the caller must
    get decoded bytes with no content-encoding header, which needs the whole body."""
    recorder = _http.BodyRecorder(call, pending, response.status_code, items)
    response.stream = lib.body_tee(response.stream, recorder)
    return response


def _identity(response: Any) -> bool:
    return response.headers.get("content-encoding", "").strip().lower() in ("", "identity")


def _tee(lib: _Lib, call: _http.HttpCall, pending: Any, response: Any,
         items: list[tuple[str, str]]) -> Any:
    recorder = _http.StreamRecorder(call, pending, response.status_code, items)
    response.stream = lib.tee_stream(response.stream, recorder)
    return response


class _Transport:
    """Serves all four client kinds; see :func:`transport`."""

    def __init__(self, session: Session | None, wrapped: Any,
                 real_kwargs: dict[str, Any] | None = None) -> None:
        self._session = session
        self._wrapped = wrapped
        self._real_kwargs = real_kwargs or {}
        self._defaults: dict[tuple[str, bool], Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        bound = "active session" if self._session is None else repr(self._session)
        return f"<agenttape transport bound to the {bound}>"

    def _bound(self) -> Session | None:
        session = self._session if self._session is not None else active_session()
        if session is None or session.engine is None or not session.active:
            return None
        return session

    def _real(self, lib: _Lib, sync: bool) -> Any:
        if self._wrapped is not None:
            return self._wrapped
        key = (lib.module.__name__, sync)
        with self._lock:
            real = self._defaults.get(key)
            if real is None:
                factory = lib.module.HTTPTransport if sync else lib.module.AsyncHTTPTransport
                # Created on first use: building one loads certificates (milliseconds),
                # too slow for every session that installs a hook.
                real = self._defaults[key] = factory(**self._real_kwargs)
        return real

    def _plan(self, lib: _Lib, request: Any, session: Session, body: bytes) -> Any:
        """The engine's decision: None (pass through), a replayed response, or a live
        ``(call, pending, outgoing request)``."""
        assert session.engine is not None
        headers = request.headers
        # Decoding the headers costs more than canonicalising the rest of the request; the
        # raw pairs identify the set, which is only decoded when not seen lately.
        key = tuple([pair for pair in headers.raw if pair[0] not in _CONTENT_LENGTH])
        call = _http.build_request(session, request.method, str(request.url),
                                   headers.multi_items, body, headers_key=key)
        decision = session.engine.decide(call.kind, call.boundary, call.request)
        if decision.interaction is not None:
            return _replayed(lib, request, call, decision.interaction, session.path)
        if decision.pending is None:
            return None
        return call, decision.pending, _outgoing(lib, request, call)

    def handle_request(self, request: Any) -> Any:
        lib = _lib_of(request)
        session = self._bound()
        plan = None if session is None else self._plan(lib, request, session, request.read())
        if not isinstance(plan, tuple):
            # A replay never needs the real transport (building one loads certificates).
            return plan if plan is not None else self._real(lib, True).handle_request(request)
        call, pending, outgoing = plan
        try:
            response = self._real(lib, True).handle_request(outgoing)
            items = response.headers.multi_items()  # decoded once: it is not cached
            if _http.is_streamed_response(items):
                return _tee(lib, call, pending, response, items)
            if _identity(response):
                return _tee_body(lib, call, pending, response, items)
            try:
                response.read()
            finally:
                response.close()
        except Exception as exc:
            pending.finish(error=_http.error_record(exc))
            raise
        return _finish_read(lib, call, pending, request, response)

    async def handle_async_request(self, request: Any) -> Any:
        lib = _lib_of(request)
        session = self._bound()
        body = b"" if session is None else await request.aread()
        plan = None if session is None else self._plan(lib, request, session, body)
        if not isinstance(plan, tuple):
            if plan is not None:
                return plan
            return await self._real(lib, False).handle_async_request(request)
        call, pending, outgoing = plan
        try:
            response = await self._real(lib, False).handle_async_request(outgoing)
            items = response.headers.multi_items()
            if _http.is_streamed_response(items):
                return _tee(lib, call, pending, response, items)
            if _identity(response):
                return _tee_body(lib, call, pending, response, items)
            try:
                await response.aread()
            finally:
                await response.aclose()
        except Exception as exc:
            pending.finish(error=_http.error_record(exc))
            raise
        return _finish_read(lib, call, pending, request, response)

    def close(self) -> None:
        self._close_all(sync=True)

    async def aclose(self) -> None:
        for real in self._close_all(sync=False):
            await real.aclose()

    def _close_all(self, *, sync: bool) -> list[Any]:
        with self._lock:
            owned = [t for (_, s), t in self._defaults.items() if s is sync]
            self._defaults = {k: t for k, t in self._defaults.items() if k[1] is not sync}
        if self._wrapped is not None and hasattr(self._wrapped, "close" if sync else "aclose"):
            owned.append(self._wrapped)
        if sync:
            for real in owned:
                real.close()
        return owned


_BASES = tuple(base for lib in _LIBS.values()
               for base in (lib.module.BaseTransport, lib.module.AsyncBaseTransport))
AgentTapeTransport: type[_Transport] = type("AgentTapeTransport", (_Transport, *_BASES), {
    "__module__": __name__,
    "__doc__": "An httpx/httpx2 transport that records and replays through agenttape.",
})


def transport(*, session: Session | None = None, wrapped: Any = None) -> _Transport:
    """An httpx/httpx2 transport for ``transport=`` of any Client or AsyncClient.

    Inside a session (the active one, or ``session``) requests are recorded or replayed;
    outside one they go to ``wrapped`` (default: a real transport of the request's library).
    """
    if not _LIBS:
        raise ImportError("agenttape.transport() needs httpx or httpx2: pip install httpx2")
    return AgentTapeTransport(session, wrapped)
