"""The pytest plugin, driven as a user drives it: test files run through ``pytester``.

Every inner project gets an ``agenttape.toml`` (cassettes under its own folder) and an
``agent_app`` module whose tools append to ``executions.log`` when they really run, so
"replayed without executing" is counted, not assumed.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_server import LLMServer

import agenttape
from agenttape.pytest_plugin import CassetteHandle

# pytester drops every module first imported inside an inline run. A second copy of these
# would mean a second session context variable, second YAML node classes, and SDK imports
# paid again by every run, so they are imported once, before the first pytester snapshot.
SHARED_MODULES = ("yaml", "agenttape._storage", "agenttape.boundaries", "agenttape.session",
                  "agenttape.transports.clients", "agenttape.transports.requests",
                  "httpx2", "openai", "anthropic", "pytest_asyncio")


@pytest.fixture(scope="module", autouse=True)
def _shared_modules() -> Iterator[None]:
    for name in SHARED_MODULES:
        importlib.import_module(name)
    yield


APP = '''
import pathlib

import agenttape

LOG = pathlib.Path(__file__).with_name("executions.log")


def _ran(name, arg):
    with LOG.open("a", encoding="utf-8") as log:
        log.write(f"{name}:{arg}\\n")


@agenttape.tool
def search(query: str) -> str:
    _ran("search", query)
    return f"results for {query}"


@agenttape.tool
def fetch(url: str) -> dict:
    _ran("fetch", url)
    return {"url": url, "status": 200}


@agenttape.retrieval
def lookup(topic: str) -> list:
    _ran("lookup", topic)
    return [f"doc about {topic}"]


@agenttape.tool
async def asearch(query: str) -> str:
    _ran("asearch", query)
    return f"async results for {query}"


def run(steps):
    """Call each (tool, argument) in order; the last result is the run's output."""
    out = None
    for name, arg in steps:
        out = globals()[name](arg)
    return out


def run_forgiving(steps):
    """Like run(), but a failing step is skipped, as agent loops often do with tool errors."""
    out = None
    for name, arg in steps:
        try:
            out = globals()[name](arg)
        except Exception:
            continue
    return out
'''

# These plugins cost seconds per run (hypothesis even per inline run) and nothing here uses them.
QUIET = "-p no:hypothesispytest -p no:langsmith_plugin"
INI = f"""
[pytest]
addopts = {QUIET}
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("AGENTTAPE_MODE", raising=False)
    pytester.makefile(".toml", agenttape='cassette_dir = "cassettes"\nllm_hosts = ["127.0.0.1"]\n')
    pytester.makepyfile(agent_app=APP)
    pytester.makeini(INI)
    return pytester


def executions(pytester: pytest.Pytester) -> list[str]:
    """Tool bodies that really ran since the last call (the log is consumed)."""
    log = pytester.path / "executions.log"
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8").splitlines()
    log.unlink()
    return lines


def cassette(pytester: pytest.Pytester, name: str) -> agenttape.Cassette:
    return agenttape.read_cassette(pytester.path / "cassettes" / f"{name}.yaml")


def shows(result: pytest.RunResult, *patterns: str) -> None:
    """The output has lines matching ``patterns`` in order; only ``*`` is a wildcard."""
    result.stdout.fnmatch_lines([p.replace("[", "[[]").replace("?", "[?]") for p in patterns])


def summary(result: pytest.RunResult) -> str:
    lines = [line for line in result.outlines if line.startswith("agenttape: ")]
    assert len(lines) == 1, result.stdout.str()
    return lines[0]


# -- record, replay, names --------------------------------------------------------------------
AGENT_TEST = """
import pytest
import agent_app


@pytest.mark.agenttape
def test_books():
    assert agent_app.run([("search", "dune"), ("fetch", "https://example.test/dune")]) == {
        "url": "https://example.test/dune", "status": 200}
"""


def test_record_then_replay_never_runs_the_tools(project: pytest.Pytester) -> None:
    project.makepyfile(test_agent=AGENT_TEST)

    recorded = project.runpytest("--agenttape-record")
    recorded.assert_outcomes(passed=1)
    assert executions(project) == ["search:dune", "fetch:https://example.test/dune"]
    stored = cassette(project, "test_agent/test_books")
    assert [(i.kind, i.boundary) for i in stored.interactions] == [
        ("tool", "search"), ("tool", "fetch")]
    assert summary(recorded) == (
        "agenttape: 0 replayed, 2 live, 2 recorded, 1 cassettes written, 0 tokens not spent")

    replayed = project.runpytest()
    replayed.assert_outcomes(passed=1)
    assert executions(project) == []
    assert summary(replayed) == (
        "agenttape: 2 replayed, 0 live, 0 recorded, 0 cassettes written, 0 tokens not spent")


def test_no_summary_line_without_marked_tests(project: pytest.Pytester) -> None:
    project.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = project.runpytest()
    result.assert_outcomes(passed=1)
    assert not [line for line in result.outlines if line.startswith("agenttape")]


def test_default_names_are_module_and_test_and_path_safe(project: pytest.Pytester) -> None:
    project.makepyfile(test_names="""
        import pytest
        import agent_app


        @pytest.mark.agenttape
        @pytest.mark.parametrize("topic", ["dune", "a b/c:d"])
        def test_param(topic):
            agent_app.run([("search", topic)])


        @pytest.mark.agenttape
        class TestGroup:
            def test_method(self):
                agent_app.run([("lookup", "group")])


        @pytest.mark.agenttape("shared/custom")
        def test_named():
            agent_app.run([("search", "named")])
    """)
    project.runpytest("--agenttape-record").assert_outcomes(passed=4)
    found = sorted(p.relative_to(project.path / "cassettes").as_posix()
                   for p in (project.path / "cassettes").rglob("*.yaml"))
    assert found == [
        "shared/custom.yaml",
        "test_names/TestGroup.test_method.yaml",
        "test_names/test_param[a_b_c_d].yaml",
        "test_names/test_param[dune].yaml",
    ]
    assert cassette(project, "test_names/test_param[a_b_c_d]").interactions[0].request == {
        "name": "search", "args": {"query": "a b/c:d"}}
    executions(project)
    project.runpytest().assert_outcomes(passed=4)
    assert executions(project) == []


def test_ini_option_sets_the_cassette_dir(project: pytest.Pytester) -> None:
    project.makeini(INI + "agenttape_cassette_dir = recorded/here\n")
    project.makepyfile(test_agent=AGENT_TEST)
    project.runpytest("--agenttape-record").assert_outcomes(passed=1)
    assert (project.path / "recorded/here/test_agent/test_books.yaml").is_file()
    assert not (project.path / "cassettes").exists()


def test_marker_on_module_and_class_closest_wins(project: pytest.Pytester) -> None:
    project.makepyfile(test_scopes="""
        import pytest
        import agenttape

        pytestmark = pytest.mark.agenttape(mode="once")


        def test_module_marker():
            session = agenttape.active_session()
            assert session is not None and session.mode == "once"
            assert session.path.as_posix().endswith("cassettes/test_scopes/test_module_marker.yaml")


        @pytest.mark.agenttape(mode="new_episodes", format="json")
        class TestClassMarker:
            def test_class_marker(self):
                session = agenttape.active_session()
                assert (session.mode, session.path.name) == (
                    "new_episodes", "TestClassMarker.test_class_marker.json")

            @pytest.mark.agenttape("own", mode="all")
            def test_own_marker(self):
                session = agenttape.active_session()
                assert (session.mode, session.path.name) == ("all", "own.json")


        def test_module_marker_applies_to_every_test():
            assert agenttape.active_session() is not None
    """)
    project.makepyfile(test_unmarked="""
        import agenttape

        def test_unmarked():
            assert agenttape.active_session() is None
    """)
    project.runpytest().assert_outcomes(passed=5)


# -- flags and environment ---------------------------------------------------------------------
def test_missing_cassette_in_mode_none_fails_with_the_full_unmatched_message(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_agent=AGENT_TEST)
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    assert executions(project) == []
    shows(result, *[
        "*UnmatchedInteractionError*",
        "*tool*search*",
        "*cassettes/test_agent/test_books.yaml*",
        "*--agenttape-record*",
    ])


def test_unmatched_wrapped_by_agent_code_is_shown_as_its_own_section(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_wrapped="""
        import pytest
        import agent_app


        @pytest.mark.agenttape
        def test_wrapped():
            try:
                agent_app.run([("search", "dune")])
            except Exception as exc:
                raise RuntimeError("agent step failed") from exc
    """)
    result = project.runpytest("--tb=line")
    result.assert_outcomes(failed=1)
    shows(result, *[
        "*- agenttape: unmatched interaction -*",
        "no recording matches this tool call to `search`",
        "*cassette:*cassettes/test_wrapped/test_wrapped.yaml",
    ])


def test_failing_test_still_writes_its_recording_marked_incomplete(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_agent="""
        import pytest
        import agent_app

        @pytest.mark.agenttape
        def test_books():
            agent_app.run([("search", "dune"), ("fetch", "u")])
            raise AssertionError("the agent answered wrongly")
    """)
    project.runpytest("--agenttape-record").assert_outcomes(failed=1)
    stored = cassette(project, "test_agent/test_books")
    assert stored.meta.get("incomplete") is True
    assert len(stored.interactions) == 2


def test_flag_beats_env_and_marker(project: pytest.Pytester,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    project.makepyfile(test_agent=AGENT_TEST.replace("@pytest.mark.agenttape",
                                                     '@pytest.mark.agenttape(mode="none")'))
    monkeypatch.setenv("AGENTTAPE_MODE", "none")
    project.runpytest("--agenttape-record").assert_outcomes(passed=1)
    assert len(executions(project)) == 2
    project.runpytest("--agenttape-mode", "all").assert_outcomes(passed=1)
    assert len(executions(project)) == 2
    # Without a flag the environment wins over the marker: AGENTTAPE_MODE=all records.
    monkeypatch.setenv("AGENTTAPE_MODE", "all")
    project.runpytest().assert_outcomes(passed=1)
    assert len(executions(project)) == 2


def test_mode_once_records_then_replays(project: pytest.Pytester) -> None:
    project.makepyfile(test_agent=AGENT_TEST)
    first = project.runpytest("--agenttape-mode", "once")
    first.assert_outcomes(passed=1)
    assert len(executions(project)) == 2
    path = project.path / "cassettes/test_agent/test_books.yaml"
    before = path.read_bytes()
    second = project.runpytest("--agenttape-mode", "once")
    second.assert_outcomes(passed=1)
    assert executions(project) == []
    assert path.read_bytes() == before
    assert summary(second).startswith("agenttape: 2 replayed, 0 live, 0 recorded, 0 cassettes")


def test_bad_mode_flag_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_agent=AGENT_TEST)
    result = project.runpytest("--agenttape-mode", "sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--agenttape-mode*sometimes*none*once*new_episodes*all*"])


def test_record_flag_conflicting_with_mode_flag_is_a_usage_error(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("--agenttape-record", "--agenttape-mode", "none")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--agenttape-record*conflicts with --agenttape-mode none*"])


def test_bad_marker_option_is_a_collection_error_naming_it(project: pytest.Pytester) -> None:
    project.makepyfile(test_bad="""
        import pytest

        @pytest.mark.agenttape(mdoe="none")
        def test_typo():
            pass

        @pytest.mark.agenttape(mode="sometimes")
        def test_bad_value():
            pass

        def test_fine():
            pass
    """)
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    shows(result, *[
        "*ERROR collecting test_bad.py*",
        "agenttape marker error:",
        "test_bad.py::test_typo: @pytest.mark.agenttape got an unknown option 'mdoe' "
        "(did you mean 'mode'?); valid options: cassette, mode, live, frozen, matchers, freeze,"
        " format",
        "test_bad.py::test_bad_value: *mode*sometimes*",
    ])


def test_cassette_fixture_without_marker_says_what_is_missing(project: pytest.Pytester) -> None:
    project.makepyfile(test_agent="def test_x(agenttape_cassette):\n    pass\n")
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*the agenttape_cassette fixture needs the test to be marked @pytest.mark.agenttape*"])


# -- the handle and its assertions -----------------------------------------------------------
HANDLE_TEST = """
import pytest
import agent_app


@pytest.mark.agenttape
def test_handle(agenttape_cassette):
    agent_app.run([("search", "dune"), ("lookup", "arrakis")])
    handle = agenttape_cassette
    assert handle.path.as_posix().endswith("cassettes/test_handle/test_handle.yaml")
    assert handle.tool_calls == ["search", "lookup"]
    assert [i.kind for i in handle.interactions] == ["tool", "retrieval"]
    # No LLM call in this run: the final output is the last interaction's response.
    assert handle.final_output == ["doc about arrakis"]
    handle.assert_tool_calls(["search", "lookup"])
    handle.assert_final_output(["doc about arrakis"])
    handle.assert_snapshot()
    print("MODE", handle.mode)


@pytest.mark.agenttape("test_handle/test_handle")
def test_tool_calls_fail(agenttape_cassette):
    agent_app.run([("search", "dune"), ("lookup", "arrakis")])
    agenttape_cassette.assert_tool_calls(["search", "fetch", "lookup"])


@pytest.mark.agenttape("test_handle/test_handle")
def test_final_output_fails(agenttape_cassette):
    agent_app.run([("search", "dune"), ("lookup", "arrakis")])
    agenttape_cassette.assert_final_output(["doc about caladan"])
"""


def test_handle_properties_and_assertions(project: pytest.Pytester) -> None:
    project.makepyfile(test_handle=HANDLE_TEST)
    project.runpytest("--agenttape-record", "-k", "not fail", "-s").assert_outcomes(passed=1)
    executions(project)

    result = project.runpytest("-s")
    result.assert_outcomes(passed=1, failed=2)
    assert executions(project) == []
    result.stdout.fnmatch_lines(["*MODE none*"])
    shows(result, *[
        "E*AssertionError: tool calls differ from the expected ones: 1 missing call",
        "E*(- expected but not called, + called but not expected, ~ called out of order;"
        " [expected -> actual position])",
        "E*   [0 -> 0]  search",
        "E*- [1]       fetch   missing",
        "E*   [2 -> 1]  lookup",
        "E*expected: ['search', 'fetch', 'lookup']",
        "E*actual:   ['search', 'lookup']",
    ])
    shows(result, *[
        "E*AssertionError: final output differs from the expected value",
        "E*expected: ['doc about caladan']",
        "E*actual:   ['doc about arrakis']",
    ])
    # The handle's own frames are hidden: the traceback ends at the user's assertion.
    assert "agenttape/_handle.py" not in result.stdout.str()


SNAPSHOT_TEST = """
import json
import pathlib

import pytest
import agent_app


@pytest.mark.agenttape("snap")
def test_agent(agenttape_cassette):
    plan = json.loads(pathlib.Path(__file__).with_name("plan.json").read_text())
    agent_app.run_forgiving(plan)
    agenttape_cassette.assert_snapshot()
"""


def _plan(pytester: pytest.Pytester, steps: list[list[str]]) -> None:
    (pytester.path / "plan.json").write_text(json.dumps(steps), encoding="utf-8")


def test_assert_snapshot_reports_missing_extra_and_reordered_calls(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_snap=SNAPSHOT_TEST)
    original = [["search", "dune"], ["fetch", "u"], ["lookup", "arrakis"]]
    _plan(project, original)
    project.runpytest("--agenttape-record").assert_outcomes(passed=1)
    executions(project)

    project.runpytest().assert_outcomes(passed=1)  # same run: no drift

    _plan(project, [["fetch", "u"], ["search", "dune"], ["lookup", "arrakis"]])
    reordered = project.runpytest()
    reordered.assert_outcomes(failed=1)
    shows(reordered, *[
        "E*AssertionError: interactions drifted from the cassette: 1 reordered call",
        "E*cassette: */cassettes/snap.yaml (mode 'none'; 3 recorded, 3 this run)",
        "E*(- recorded but not called, + called but not recorded, ~ called out of order;"
        " [recorded -> this run position])",
        "E*~ [1 -> 0]  tool         fetch                    sha256:*   reordered",
        "E*  [0 -> 1]  tool         search                   sha256:*",
        "E*  [2 -> 2]  retrieval    lookup                   sha256:*",
        "E*if the change is intended, re-record: pytest --agenttape-record"
        " test_snap.py::test_agent",
    ])

    _plan(project, [["search", "dune"], ["lookup", "arrakis"]])
    missing = project.runpytest()
    missing.assert_outcomes(failed=1)
    shows(missing, *[
        "E*interactions drifted from the cassette: 1 missing call",
        "E*- [1]       tool         fetch                    sha256:*   missing",
    ])
    assert executions(project) == []

    # An extra call in mode none raises UnmatchedInteractionError; this agent swallows it.
    _plan(project, [["search", "dune"], ["fetch", "u"], ["search", "more"], ["lookup", "arrakis"]])
    swallowed = project.runpytest()
    swallowed.assert_outcomes(failed=1)  # and no teardown error on top
    shows(swallowed, *[
        "E*interactions drifted from the cassette: 1 extra call",
        "E*  [2 -> 2]  retrieval    lookup                   sha256:*",
        "E*+ [3]       tool         search                   sha256:*   extra",
        "E*(1 call found no recording and raised UnmatchedInteractionError, which the code"
        " under test caught; listed last)",
        "*- agenttape: unmatched interaction -*",
        "no recording matches this tool call to `search`",
    ])
    assert executions(project) == []

    # In new_episodes the extra call runs live and is part of the timeline.
    extra = project.runpytest("--agenttape-mode", "new_episodes")
    extra.assert_outcomes(failed=1)
    shows(extra, *[
        "E*interactions drifted from the cassette: 1 extra call",
        "E*+ [2]       tool         search                   sha256:*   extra",
    ])
    assert executions(project) == ["search:more"]


def test_assert_snapshot_passes_while_recording(project: pytest.Pytester) -> None:
    project.makepyfile(test_snap=SNAPSHOT_TEST)
    _plan(project, [["search", "dune"]])
    project.runpytest("--agenttape-record").assert_outcomes(passed=1)
    _plan(project, [["fetch", "u"]])
    project.runpytest("--agenttape-record").assert_outcomes(passed=1)
    project.runpytest().assert_outcomes(passed=1)


def test_sequence_diff_folds_long_unchanged_stretches() -> None:
    from agenttape._handle import render_sequence_diff

    recorded = [f"step{n}" for n in range(20)]
    actual = recorded[:10] + recorded[11:]
    rows, summary = render_sequence_diff(recorded, actual, str)
    assert summary == "1 missing call"
    assert rows == [
        "    ... 8 unchanged",
        "    [8 -> 8]    step8",
        "    [9 -> 9]    step9",
        "  - [10]        step10   missing",
        "    [11 -> 10]  step11",
        "    [12 -> 11]  step12",
        "    ... 7 unchanged",
    ]
    # A single unchanged row is shown, not folded: "... 1 unchanged" would save nothing.
    rows, summary = render_sequence_diff(["a", "b", "c"], ["a", "b", "c", "d"], str)
    assert (summary, rows[0]) == ("1 extra call", "    [0 -> 0]  a")


def test_final_output_of_long_text_fails_with_a_line_diff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AGENTTAPE_MODE", raising=False)

    @agenttape.tool
    def draft(topic: str) -> str:
        return f"Dear customer,\nyour {topic} is on its way.\nRegards"

    with agenttape.use_cassette("draft", mode="all", cassette_dir=tmp_path) as session:
        draft("parcel")
        handle = CassetteHandle(session)
        handle.assert_final_output("Dear customer,\nyour parcel is on its way.\nRegards")
        with pytest.raises(AssertionError) as failure:
            handle.assert_final_output("Dear customer,\nyour refund is on its way.\nRegards")
    assert str(failure.value).splitlines()[3:] == [
        "  diff:",
        "    --- expected",
        "    +++ actual",
        "    @@ -1,3 +1,3 @@",
        "     Dear customer,",
        "    -your refund is on its way.",
        "    +your parcel is on its way.",
        "     Regards",
    ]


def test_cassette_handle_is_exported_by_the_plugin() -> None:
    assert CassetteHandle.__module__ == "agenttape._handle"
    assert {"path", "mode", "tool_calls", "interactions", "final_output", "assert_tool_calls",
            "assert_final_output", "assert_snapshot"} <= set(dir(CassetteHandle))


# -- async -------------------------------------------------------------------------------------
def test_async_test_sees_its_session(project: pytest.Pytester) -> None:
    project.makepyfile(test_async="""
        import asyncio

        import pytest
        import agenttape
        import agent_app
        from agenttape.session import _current


        @pytest.mark.agenttape
        async def test_async(agenttape_cassette):
            # The context variable itself, not only the process-wide fallback, reaches the task.
            assert _current.get() is agenttape_cassette.session
            results = await asyncio.gather(agent_app.asearch("a"), agent_app.asearch("b"))
            assert results == ["async results for a", "async results for b"]
            agenttape_cassette.assert_tool_calls(["asearch", "asearch"])
    """)
    project.runpytest("--agenttape-record").assert_outcomes(passed=1)
    assert sorted(executions(project)) == ["asearch:a", "asearch:b"]
    project.runpytest().assert_outcomes(passed=1)
    assert executions(project) == []
    assert len(cassette(project, "test_async/test_async").interactions) == 2


# -- xdist ----------------------------------------------------------------------------------
def test_xdist_two_workers_record_whole_cassettes(project: pytest.Pytester) -> None:
    project.makepyfile(test_many="""
        import pytest
        import agent_app

        @pytest.mark.agenttape
        @pytest.mark.parametrize("n", range(6))
        def test_many(n):
            # A large result makes a torn write visible as an unparsable file.
            agent_app.run([("search", "x" * 20000 + str(n)), ("lookup", str(n))])
    """)
    recorded = project.runpytest_subprocess("-n", "2", "--agenttape-record")
    recorded.assert_outcomes(passed=6)
    assert summary(recorded) == (
        "agenttape: 0 replayed, 12 live, 12 recorded, 6 cassettes written, 0 tokens not spent")
    for n in range(6):
        stored = cassette(project, f"test_many/test_many[{n}]")
        assert [i.request["args"] for i in stored.interactions] == [
            {"query": "x" * 20000 + str(n)}, {"topic": str(n)}]
    assert len(executions(project)) == 12

    replayed = project.runpytest_subprocess("-n", "2")
    replayed.assert_outcomes(passed=6)
    assert summary(replayed) == (
        "agenttape: 12 replayed, 0 live, 0 recorded, 0 cassettes written, 0 tokens not spent")
    assert executions(project) == []


# -- import cost ----------------------------------------------------------------------------
def test_plugin_import_and_unmarked_runs_stay_light(pytester: pytest.Pytester) -> None:
    probe = ("import sys, agenttape.pytest_plugin; "
             "heavy = {'httpx', 'httpx2', 'requests', 'yaml', 'cattrs'} & set(sys.modules); "
             "assert not heavy, heavy")
    assert pytester.run(sys.executable, "-c", probe).ret == 0
    pytester.makepyfile(test_plain="""
        import sys

        def test_plain():
            loaded = {m for m in ("agenttape.session", "agenttape._storage", "cattrs", "yaml")
                      if m in sys.modules}
            assert not loaded, loaded
    """)
    pytester.runpytest_subprocess(*QUIET.split()).assert_outcomes(passed=1)


# -- SDKs through the injection fixtures -------------------------------------------------------
SDK_TEST = '''
import os

import anthropic
import httpx2
import openai
import pytest

BASE = os.environ["AGENTTAPE_TEST_LLM_URL"]


@pytest.mark.agenttape
def test_openai_chat(agenttape_http_client, agenttape_cassette):
    client = openai.OpenAI(api_key="sk-test", base_url=BASE + "/v1",
                           http_client=agenttape_http_client, max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello chat"}])
    assert answer.choices[0].message.content == "Echo: hello chat"
    agenttape_cassette.assert_final_output("Echo: hello chat")
    assert [i.kind for i in agenttape_cassette.interactions] == ["llm"]


@pytest.mark.agenttape
def test_openai_chat_stream(agenttape_http_client, agenttape_cassette):
    client = openai.OpenAI(api_key="sk-test", base_url=BASE + "/v1",
                           http_client=agenttape_http_client, max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello stream"}],
        stream=True, stream_options={"include_usage": True})
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Echo: hello stream"
    agenttape_cassette.assert_final_output("Echo: hello stream")


@pytest.mark.agenttape
def test_openai_responses(agenttape_transport, agenttape_cassette):
    with httpx2.Client(transport=agenttape_transport) as http:
        client = openai.OpenAI(api_key="sk-test", base_url=BASE + "/v1", http_client=http,
                               max_retries=0)
        answer = client.responses.create(model="gpt-4o-mini", input="hello responses")
    assert answer.output_text == "Echo: hello responses"
    agenttape_cassette.assert_final_output("Echo: hello responses")


@pytest.mark.agenttape
def test_anthropic(agenttape_http_client, agenttape_cassette):
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=BASE,
                                 http_client=agenttape_http_client, max_retries=0)
    answer = client.messages.create(model="claude-test", max_tokens=64,
                                    messages=[{"role": "user", "content": "hello claude"}])
    assert answer.content[0].text == "Echo: hello claude"
    with client.messages.stream(model="claude-test", max_tokens=64,
                                messages=[{"role": "user", "content": "hello again"}]) as s:
        assert s.get_final_text() == "Echo: hello again"
    agenttape_cassette.assert_final_output("Echo: hello again")


@pytest.mark.agenttape
async def test_async_openai(agenttape_async_http_client, agenttape_cassette):
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=BASE + "/v1",
                                http_client=agenttape_async_http_client, max_retries=0)
    answer = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello async"}])
    assert answer.choices[0].message.content == "Echo: hello async"
    agenttape_cassette.assert_final_output("Echo: hello async")


@pytest.mark.agenttape
def test_requests(agenttape_requests_session, agenttape_cassette):
    reply = agenttape_requests_session.post(
        BASE + "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi requests"}]})
    assert reply.json()["choices"][0]["message"]["content"] == "Echo: hi requests"
    agenttape_cassette.assert_final_output("Echo: hi requests")
'''


def test_sdks_through_injection_fixtures_replay_offline(
    project: pytest.Pytester, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTTAPE_TEST_LLM_URL", llm_server.url)
    project.makepyfile(test_sdk=SDK_TEST)
    recorded = project.runpytest("--agenttape-record")
    recorded.assert_outcomes(passed=6)
    hits = llm_server.hits
    assert hits == 7
    assert summary(recorded) == (
        "agenttape: 0 replayed, 7 live, 7 recorded, 6 cassettes written, 0 tokens not spent")

    llm_server.stop()
    replayed = project.runpytest()
    replayed.assert_outcomes(passed=6)
    assert llm_server.hits == hits
    line = summary(replayed)
    assert line.startswith("agenttape: 7 replayed, 0 live, 0 recorded, 0 cassettes written, ")
    tokens = int(line.split(", ")[-1].split()[0])
    usage = [i.usage for p in (project.path / "cassettes").rglob("*.yaml")
             for i in agenttape.read_cassette(p).interactions]
    assert tokens == sum(u["total_tokens"] for u in usage if u) > 0


def test_unmatched_inside_an_sdk_is_shown_in_full(
    project: pytest.Pytester, llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTTAPE_TEST_LLM_URL", llm_server.url)
    project.makepyfile(test_sdk=SDK_TEST)
    llm_server.stop()
    result = project.runpytest("-k", "test_openai_chat and not stream")
    result.assert_outcomes(failed=1)
    shows(result, *[
        "*UnmatchedInteractionError*",
        "*llm*openai*",
        "*cassettes/test_sdk/test_openai_chat.yaml*",
    ])
    assert llm_server.hits == 0
