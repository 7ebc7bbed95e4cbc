"""Built-in hooks: the OpenAI module-level client and litellm's shared httpx clients.

Each uses a setting the library documents for exactly this purpose, checks availability
without importing anything (``sys.modules``), and restores the previous value on exit.
Anthropic has no such setting, so it has no hook: pass ``http_client=`` (see the docs).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..session import Session

__all__ = ["BUILTIN_HOOKS", "LitellmHook", "OpenAIModuleHook"]


class OpenAIModuleHook:
    """``openai.chat.completions.create(...)`` (the module-level client) records and replays.

    ``openai.http_client`` is the SDK's public slot for the module client's HTTP client; the
    module client reads it on every request, even after first use.
    """

    name = "openai"

    def available(self) -> bool:
        return "openai" in sys.modules

    def install(self, session: Session) -> Callable[[], None]:
        from .clients import http_client

        openai: Any = sys.modules["openai"]
        library = _openai_library(str(getattr(openai, "__version__", "3")))
        previous = openai.http_client
        client = http_client(session=session, library=library)
        openai.http_client = client  # documented public setting of the OpenAI module client

        def restore() -> None:
            if openai.http_client is client:  # leave a value the app set meanwhile alone
                openai.http_client = previous  # documented public setting (restored)
            client.close()

        return restore


class LitellmHook:
    """litellm's OpenAI-compatible calls record and replay.

    ``litellm.client_session`` / ``litellm.aclient_session`` are litellm's public settings
    for the httpx clients it hands to the SDKs it wraps. litellm caches SDK clients, so the
    cache is flushed (its public ``flush_cache()``) after swapping and again after restoring.
    """

    name = "litellm"

    def available(self) -> bool:
        return "litellm" in sys.modules

    def install(self, session: Session) -> Callable[[], None]:
        from .clients import async_http_client, http_client

        litellm: Any = sys.modules["litellm"]
        previous = (litellm.client_session, litellm.aclient_session)
        sync_client = http_client(session=session, library="httpx")
        async_client = async_http_client(session=session, library="httpx")
        litellm.client_session = sync_client  # documented public setting of litellm
        litellm.aclient_session = async_client  # documented public setting of litellm
        _flush(litellm)

        def restore() -> None:
            if litellm.client_session is sync_client:
                litellm.client_session = previous[0]  # documented public setting (restored)
            if litellm.aclient_session is async_client:
                litellm.aclient_session = previous[1]  # documented public setting (restored)
            _flush(litellm)
            sync_client.close()
            # The async client holds no open connection outside a running loop worth
            # awaiting here; its transport's pool is dropped with it.

        return restore


def _openai_library(version: str) -> str:
    """openai >= 3 is built on httpx2 (and takes httpx too); 2.x is built on httpx."""
    major = version.split(".", 1)[0]
    return "httpx2" if not major.isdigit() or int(major) >= 3 else "httpx"


def _flush(litellm: Any) -> None:
    cache = getattr(litellm, "in_memory_llm_clients_cache", None)
    if cache is not None:
        cache.flush_cache()


BUILTIN_HOOKS: list[Any] = [OpenAIModuleHook(), LitellmHook()]
