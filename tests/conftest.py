from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_server import LLMServer


def _stop_and_check(*servers: LLMServer) -> None:
    for server in servers:
        server.stop()
    # A traceback in the server is a bug in the server, not in the test that happened to hit it.
    errors = [error for server in servers for error in server.errors]
    assert not errors, "the test LLM server raised:\n" + "\n".join(errors)


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    """A started loopback OpenAI/Anthropic stand-in; stopped at teardown."""
    server = LLMServer().start()
    try:
        yield server
    finally:
        _stop_and_check(server)


@pytest.fixture
def llm_server_factory() -> Iterator[Callable[[], LLMServer]]:
    """Starts extra independent servers on demand; all are stopped at teardown."""
    servers: list[LLMServer] = []

    def make() -> LLMServer:
        server = LLMServer().start()
        servers.append(server)
        return server

    try:
        yield make
    finally:
        _stop_and_check(*servers)


# --- isolation (lead) -----------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _isolated_workdir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Every test runs in its own empty folder, with no inherited mode and a private cache.

    Sessions discover agenttape.toml from the cwd and write cassettes under it, so this keeps
    tests from reading or writing the repository's own cassettes/.
    """
    work = tmp_path_factory.mktemp("work")
    monkeypatch.chdir(work)
    monkeypatch.delenv("AGENTTAPE_MODE", raising=False)
    monkeypatch.setenv("AGENTTAPE_CACHE_DIR", str(tmp_path_factory.mktemp("parse-cache")))
    yield


# --- transports: httpx / httpx2 / SDKs (transports helper) ----------------------------------
# The API key used while recording; tests assert it appears nowhere in a written cassette.
SECRET_API_KEY = "sk-test-SECRETabcdefghijklmnopqrstuvwxyz0123"


@pytest.fixture
def llm_config(llm_server: LLMServer) -> Any:
    """A Config that treats the loopback server's API paths as LLM calls (kind ``llm``)."""
    from agenttape.config import Config

    return Config(cassette_dir=Path.cwd() / "cassettes", llm_hosts=[f"127.0.0.1:{llm_server.port}"])


@pytest.fixture
def cassette_file() -> Callable[[Any], dict[str, Any]]:
    """Read a session's written cassette from disk, as users commit it (YAML, parsed)."""
    import yaml

    def read(session: Any) -> dict[str, Any]:
        assert session.written, "the session wrote no cassette"
        data = yaml.safe_load(Path(session.written[0]).read_text(encoding="utf-8"))
        assert isinstance(data, dict)
        return data

    return read
