"""Hooks: the registry, their install/restore order, and the two built-in hooks."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import httpx2
import openai
import pytest

import agenttape
from agenttape.transports import hooks as hooks_module


@pytest.fixture(autouse=True)
def _registry_snapshot() -> Iterator[None]:
    """Hooks registered by a test are gone after it, so other tests' sessions never run them."""
    hooks_module._ensure_builtins()
    saved = dict(hooks_module._registry)
    try:
        yield
    finally:
        hooks_module._registry.clear()
        hooks_module._registry.update(saved)


def test_hooks_lists_builtins_without_importing_them() -> None:
    code = ("import sys, json, agenttape; h = agenttape.hooks(); "
            "print(json.dumps([h, [m for m in ('openai', 'litellm', 'httpx', 'httpx2') "
            "if m in sys.modules]]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    available, imported = json.loads(out)
    assert available == {"openai": False, "litellm": False}
    assert imported == []


def test_builtin_openai_hook_is_available_once_openai_is_imported() -> None:
    assert agenttape.hooks()["openai"] is True


def test_function_hooks_install_in_order_and_restore_in_reverse() -> None:
    events: list[str] = []

    @agenttape.register_hook
    def first(session: agenttape.Session) -> Callable[[], None]:
        events.append(f"install first {session.name}")
        return lambda: events.append("restore first")

    @agenttape.register_hook
    def second(session: agenttape.Session) -> Callable[[], None]:
        events.append("install second")
        return lambda: events.append("restore second")

    assert callable(first)  # the decorator returns the function
    assert agenttape.hooks()["first"] is True
    with pytest.raises(RuntimeError, match="boom"), agenttape.use_cassette("h"):
        assert events == ["install first h", "install second"]
        raise RuntimeError("boom")
    assert events[2:] == ["restore second", "restore first"]


class _FlagHook:
    def __init__(self, name: str, available: bool, fail: bool = False) -> None:
        self.name = name
        self._available = available
        self._fail = fail
        self.installed = 0
        self.restored = 0

    def available(self) -> bool:
        return self._available

    def install(self, session: agenttape.Session) -> Callable[[], None]:
        if self._fail:
            raise OSError("cannot install")
        self.installed += 1

        def restore() -> None:
            self.restored += 1

        return restore


def test_unavailable_hooks_are_skipped() -> None:
    hook = _FlagHook("absent_library", available=False)
    agenttape.register_hook(hook)
    assert agenttape.hooks()["absent_library"] is False
    with agenttape.use_cassette("h"):
        pass
    assert hook.installed == 0


def test_a_failing_install_undoes_the_others_and_leaves_no_session() -> None:
    good = _FlagHook("good", available=True)
    agenttape.register_hook(good)
    agenttape.register_hook(_FlagHook("bad", available=True, fail=True))
    with pytest.raises(OSError, match="cannot install"), agenttape.use_cassette("h"):
        pass  # pragma: no cover - never entered
    assert (good.installed, good.restored) == (1, 1)
    assert agenttape.active_session() is None


def test_a_failing_restore_warns_and_the_others_still_run() -> None:
    later = _FlagHook("later", available=True)

    @agenttape.register_hook
    def broken(session: agenttape.Session) -> Callable[[], None]:
        def restore() -> None:
            raise ValueError("stuck")

        return restore

    agenttape.register_hook(later)
    with pytest.warns(RuntimeWarning, match="stuck"), agenttape.use_cassette("h"):
        pass
    assert later.restored == 1


def test_register_hook_rejects_other_objects() -> None:
    with pytest.raises(TypeError, match="install"):
        agenttape.register_hook(42)


def test_openai_module_hook_sets_and_restores_the_public_setting() -> None:
    previous = openai.http_client
    with agenttape.use_cassette("h") as session:
        client = openai.http_client
        assert isinstance(client, httpx2.Client)
        # Bound to this session explicitly, so it records into it from any thread.
        assert client._transport._session is session
    assert openai.http_client is previous
    assert client.is_closed


@pytest.mark.filterwarnings("ignore:Item.*ReadOnly:UserWarning")
def test_litellm_hook_swaps_sessions_and_flushes_the_client_cache(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        litellm: Any = pytest.importorskip("litellm")
    before = (litellm.client_session, litellm.aclient_session)
    cache = litellm.in_memory_llm_clients_cache
    cache.set_cache("stale-client", "cached before the session")
    with agenttape.use_cassette("h"):
        assert isinstance(litellm.client_session, httpx.Client)
        assert isinstance(litellm.aclient_session, httpx.AsyncClient)
        assert cache.get_cache("stale-client") is None
        cache.set_cache("session-client", "cached during the session")
    assert (litellm.client_session, litellm.aclient_session) == before
    assert cache.get_cache("session-client") is None
