"""Ready-made httpx2/httpx clients for SDKs' ``http_client=`` argument.

``OpenAI(http_client=agenttape.http_client())`` and ``Anthropic(http_client=...)`` record
and replay through agenttape inside a session and behave like the SDKs' own default
clients outside one (same timeouts, connection limits and redirect handling).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .httpx import AgentTapeTransport

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["async_http_client", "http_client"]

# Settings that belong to the real transport once a client is given `transport=`
# (httpx ignores them on the client then, silently).
_TRANSPORT_KEYS = ("verify", "cert", "trust_env", "http1", "http2", "limits", "proxy", "uds",
                   "local_address", "retries", "socket_options")
_LIBRARIES = ("httpx2", "httpx")


def _library(library: str | None) -> ModuleType:
    if library is not None and library not in _LIBRARIES:
        raise ValueError(f"library must be 'httpx2' or 'httpx'; got {library!r}")
    names = (library,) if library else _LIBRARIES
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    wanted = library or "httpx2 (or httpx)"
    raise ImportError(f"agenttape.http_client() needs {wanted}: pip install {names[0]}")


def _split(module: ModuleType, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(client kwargs, real-transport kwargs)`` with the SDKs' default-client settings."""
    client_kwargs = dict(kwargs)
    transport_kwargs = {k: client_kwargs.pop(k) for k in _TRANSPORT_KEYS if k in client_kwargs}
    if "trust_env" in transport_kwargs:
        client_kwargs["trust_env"] = transport_kwargs["trust_env"]
    # The OpenAI and Anthropic SDKs' DefaultHttpxClient values.
    transport_kwargs.setdefault(
        "limits", module.Limits(max_connections=1000, max_keepalive_connections=100))
    client_kwargs.setdefault("timeout", module.Timeout(600.0, connect=5.0))
    client_kwargs.setdefault("follow_redirects", True)
    return client_kwargs, transport_kwargs


def http_client(*, session: Session | None = None, library: str | None = None,
                **client_kwargs: Any) -> Any:
    """A sync ``httpx2.Client`` (``httpx.Client`` without httpx2, or ``library="httpx"``)
    whose transport is :func:`agenttape.transport`; extra keyword arguments go to the
    client, or to its real transport for ``verify``, ``proxy``, ``limits`` and the like."""
    module = _library(library)
    kwargs, transport_kwargs = _split(module, client_kwargs)
    tape = AgentTapeTransport(session, kwargs.pop("transport", None), transport_kwargs)
    return module.Client(transport=tape, **kwargs)


def async_http_client(*, session: Session | None = None, library: str | None = None,
                      **client_kwargs: Any) -> Any:
    """The ``AsyncClient`` counterpart of :func:`http_client`."""
    module = _library(library)
    kwargs, transport_kwargs = _split(module, client_kwargs)
    tape = AgentTapeTransport(session, kwargs.pop("transport", None), transport_kwargs)
    return module.AsyncClient(transport=tape, **kwargs)
