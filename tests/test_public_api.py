"""The public face: exactly the documented names, resolved lazily, importing nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys

import agenttape

# Every name of api-reference.md plus the injection objects, hooks, matchers and freeze
# providers that DESIGN.md adds to the top level.
EXPECTED = sorted([
    "AgentTape", "AgentTapeError", "Cassette", "CassetteCorruptError", "CassetteNotFoundError",
    "Config", "ConfigError", "DeterminismDriftWarning", "FieldDiff", "Interaction", "Matcher",
    "SchemaVersionError", "Session", "StreamingNotRecordedWarning", "StreamingReplayError",
    "UnmatchedInteractionError", "__version__", "active_session", "async_http_client", "clock",
    "hooks", "http_client", "memory_read", "memory_write", "now", "read_cassette", "record",
    "record_call", "register_hook", "replay", "requests_adapter", "requests_session",
    "retrieval", "rng", "time", "tool", "transport", "use_cassette", "uuid4", "write_cassette",
])


def test_all_is_exactly_the_public_names_and_sorted() -> None:
    assert agenttape.__all__ == EXPECTED
    assert dir(agenttape) == EXPECTED


def test_every_public_name_resolves() -> None:
    for name in agenttape.__all__:
        assert getattr(agenttape, name) is not None, name


def test_errors_share_one_base_and_warnings_are_user_warnings() -> None:
    for name in ["UnmatchedInteractionError", "CassetteNotFoundError", "CassetteCorruptError",
                 "SchemaVersionError", "ConfigError", "StreamingReplayError"]:
        assert issubclass(getattr(agenttape, name), agenttape.AgentTapeError)
    assert issubclass(agenttape.ConfigError, ValueError)
    assert issubclass(agenttape.DeterminismDriftWarning, UserWarning)
    assert issubclass(agenttape.StreamingNotRecordedWarning, UserWarning)


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        agenttape.does_not_exist  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "does_not_exist" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_import_is_cheap_and_side_effect_free() -> None:
    code = (
        "import sys, json; before = set(sys.modules); import agenttape; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    loaded = json.loads(out)
    heavy = {"httpx", "httpx2", "requests", "yaml", "cattrs", "attrs", "attr", "pytest",
             "openai", "anthropic", "urllib3"}
    assert not heavy & set(loaded), loaded
    assert [m for m in loaded if m.startswith("agenttape")] == ["agenttape"]


def test_version_comes_from_package_metadata() -> None:
    from importlib.metadata import version

    assert agenttape.__version__ == version("agenttape")
