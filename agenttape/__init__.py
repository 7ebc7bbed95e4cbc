"""agenttape: record every boundary an AI agent crosses, replay it offline.

Top-level names resolve lazily (PEP 562) so ``import agenttape`` imports nothing heavy:
no httpx, requests, yaml, cattrs or pytest until a name that needs them is used.
"""

from __future__ import annotations

# Not `from typing import TYPE_CHECKING`: importing typing (and the re, collections and
# functools it pulls in) would be most of what `import agenttape` costs. Type checkers
# treat any constant of this name as typing.TYPE_CHECKING.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    # `X as X`: re-exported for type checkers; at run time __getattr__ resolves them
    from ._model import Cassette as Cassette
    from ._model import Interaction as Interaction
    from ._storage import read_cassette as read_cassette
    from ._storage import write_cassette as write_cassette
    from .boundaries import memory_read as memory_read
    from .boundaries import memory_write as memory_write
    from .boundaries import record as record
    from .boundaries import record_call as record_call
    from .boundaries import replay as replay
    from .boundaries import retrieval as retrieval
    from .boundaries import tool as tool
    from .callbacks import AgentTape as AgentTape
    from .config import Config as Config
    from .errors import AgentTapeError as AgentTapeError
    from .errors import CassetteCorruptError as CassetteCorruptError
    from .errors import CassetteNotFoundError as CassetteNotFoundError
    from .errors import ConfigError as ConfigError
    from .errors import DeterminismDriftWarning as DeterminismDriftWarning
    from .errors import SchemaVersionError as SchemaVersionError
    from .errors import StreamingNotRecordedWarning as StreamingNotRecordedWarning
    from .errors import StreamingReplayError as StreamingReplayError
    from .errors import UnmatchedInteractionError as UnmatchedInteractionError
    from .freeze import clock as clock
    from .freeze import now as now
    from .freeze import rng as rng
    from .freeze import time as time
    from .freeze import uuid4 as uuid4
    from .matchers import FieldDiff as FieldDiff
    from .matchers import Matcher as Matcher
    from .session import Session as Session
    from .session import active_session as active_session
    from .session import use_cassette as use_cassette
    from .transports.clients import async_http_client as async_http_client
    from .transports.clients import http_client as http_client
    from .transports.hooks import hooks as hooks
    from .transports.hooks import register_hook as register_hook
    from .transports.httpx import transport as transport
    from .transports.requests import requests_adapter as requests_adapter
    from .transports.requests import requests_session as requests_session

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "AgentTape": ".callbacks",
    "AgentTapeError": ".errors",
    "Cassette": "._model",
    "CassetteCorruptError": ".errors",
    "CassetteNotFoundError": ".errors",
    "Config": ".config",
    "ConfigError": ".errors",
    "DeterminismDriftWarning": ".errors",
    "FieldDiff": ".matchers",
    "Interaction": "._model",
    "Matcher": ".matchers",
    "SchemaVersionError": ".errors",
    "Session": ".session",
    "StreamingNotRecordedWarning": ".errors",
    "StreamingReplayError": ".errors",
    "UnmatchedInteractionError": ".errors",
    "active_session": ".session",
    "async_http_client": ".transports.clients",
    "clock": ".freeze",
    "hooks": ".transports.hooks",
    "http_client": ".transports.clients",
    "memory_read": ".boundaries",
    "memory_write": ".boundaries",
    "now": ".freeze",
    "read_cassette": "._storage",
    "record": ".boundaries",
    "record_call": ".boundaries",
    "register_hook": ".transports.hooks",
    "replay": ".boundaries",
    "requests_adapter": ".transports.requests",
    "requests_session": ".transports.requests",
    "retrieval": ".boundaries",
    "rng": ".freeze",
    "time": ".freeze",
    "tool": ".boundaries",
    "transport": ".transports.httpx",
    "use_cassette": ".session",
    "uuid4": ".freeze",
    "write_cassette": "._storage",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        if name == "__version__":
            from importlib.metadata import PackageNotFoundError, version

            try:
                value: Any = version("agenttape")
            except PackageNotFoundError:  # running from a source tree without install
                from ._version import __version__ as value
            globals()["__version__"] = value
            return value
        raise AttributeError(f"module 'agenttape' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module_name, __name__), name)
    # Cache so the next access is a plain module attribute lookup.
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
