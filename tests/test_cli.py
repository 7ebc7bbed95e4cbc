"""The `agenttape` command line (DESIGN.md §15), through main([...]) and through subprocesses.

Cassettes are produced by real sessions: @agenttape.tool / @agenttape.retrieval /
@agenttape.memory_write boundaries and record_call("llm", ...). Hand-written YAML appears
only where `validate` must catch planted bad input.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agenttape
from agenttape.cli import main
from agenttape.cli._project import CONFIG_TEMPLATE
from agenttape.config import Config

runs: Counter[str] = Counter()
# What the "real world" answers while recording; tests change it to make runs differ.
world: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _fresh_world() -> None:
    runs.clear()
    world.clear()
    world.update(status="delivered", question="Can I return order A-17?")


@agenttape.retrieval
def search_docs(query: str) -> list[str]:
    runs["search_docs"] += 1
    return ["Refunds are accepted within 30 days.", "Shipping is free over $50."]


@agenttape.tool
def get_order(order_id: str) -> dict[str, Any]:
    runs["get_order"] += 1
    return {"order_id": order_id, "status": world["status"], "total": 42.5}


@agenttape.tool
def open_ticket(order_id: str) -> str:
    runs["open_ticket"] += 1
    return f"ticket for {order_id}"


@agenttape.memory_write
def save_note(key: str, value: str) -> None:
    runs["save_note"] += 1


def fake_llm(messages: list[dict[str, str]]) -> str:
    """An LLM call recorded as kind `llm` at boundary `openai`, OpenAI-shaped."""

    def call() -> dict[str, Any]:
        runs["llm"] += 1
        return {
            "id": "chatcmpl-1",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": "Yes: refunds are accepted within 30 days.",
            }}],
        }

    response = agenttape.record_call(
        "llm", {"endpoint": "chat.completions", "model": "gpt-4o-mini", "messages": messages},
        call, boundary="openai",
        usage={"input_tokens": 57, "output_tokens": 18, "total_tokens": 75},
    )
    return str(response["choices"][0]["message"]["content"])


def agent() -> str:
    docs = search_docs("refund policy")
    order = get_order("A-17")
    if order["status"] != "delivered":
        open_ticket("A-17")
    save_note("last_status", order["status"])
    return fake_llm([
        {"role": "system", "content": "You are a support agent. Policy: " + " ".join(docs)},
        {"role": "user", "content": world["question"]},
    ])


def record(name: str = "support") -> Path:
    with agenttape.use_cassette(name, record=True) as session:
        agent()
    runs.clear()
    return session.path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agenttape", *argv], input=stdin, capture_output=True,
        text=True, timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )


# --- the program -------------------------------------------------------------------------------


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert (code, out.strip()) == (0, f"agenttape {agenttape.__version__}")
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("init", "record", "replay", "inspect", "timeline", "diff", "redact",
                    "validate", "export", "view", "rm"):
        assert command in out


def test_no_command_or_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, )[0] == 2
    code, _, err = run(capsys, "diff", "only-one")
    assert code == 2
    assert "required" in err


def test_an_error_is_one_line_and_exit_2_unless_verbose(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    code, out, err = run(capsys, "inspect", "missing")
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("agenttape inspect: error: no cassette 'missing'")
    for argv in (["-v", "inspect", "missing"], ["inspect", "missing", "-v"],
                 ["inspect", "-v", "missing"]):
        code, _, err = run(capsys, *argv)
        assert code == 2
        assert err.startswith("Traceback (most recent call last):"), argv
        assert "CliError: no cassette 'missing'" in err


def test_python_dash_m_is_the_same_program() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"agenttape {agenttape.__version__}"
    failed = cli("inspect", "missing")
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines() == [
        "agenttape inspect: error: no cassette 'missing' (looked for cassettes/missing.yaml, "
        ".yml, .json)"
    ]


def test_bare_names_resolve_against_cassette_dir_with_each_extension(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    Path("agenttape.toml").write_text('cassette_dir = "tapes"\n')
    with agenttape.use_cassette("one", record=True):
        search_docs("x")
    with agenttape.use_cassette("nested/two", record=True, format="json"):
        search_docs("y")
    os.replace("tapes/one.yaml", "tapes/three.yml")
    with agenttape.use_cassette("one", record=True):
        search_docs("z")
    for name, shown in (("one", "tapes/one.yaml"), ("three", "tapes/three.yml"),
                        ("nested/two", "tapes/nested/two.json"),
                        ("tapes/one.yaml", "tapes/one.yaml")):
        code, out, _ = run(capsys, "inspect", name)
        assert code == 0, name
        assert out.splitlines()[0] == shown
    code, _, err = run(capsys, "inspect", "on")
    assert code == 2
    assert "did you mean 'one'?" in err


# --- init --------------------------------------------------------------------------------------


def _uncommented(template: str) -> str:
    """The template with every example setting switched on."""
    out = []
    for line in template.splitlines():
        body = line[2:] if line.startswith("# ") else None
        if body is not None and (re.match(r"[a-z_]+ = ", body) or body.startswith("  ")):
            out.append(body)
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def test_init_writes_a_config_that_loads_and_documents_the_defaults(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "init")
    assert code == 0
    assert "wrote agenttape.toml" in out
    assert Path("cassettes").is_dir()
    loaded = Config.load()
    assert loaded.source == Path("agenttape.toml").resolve()
    assert loaded.cassette_dir == Path("cassettes").resolve()
    # Every commented value is valid and is the default (model_override has none).
    Path("agenttape.toml").write_text(_uncommented(CONFIG_TEMPLATE))
    switched_on = Config.load()
    defaults = Config()
    for field in ("default_mode", "default_matchers", "format", "freeze",
                  "ignore_volatile_fields", "env_snapshot", "assets_threshold_bytes",
                  "allow_playback_repeats", "llm_hosts", "redact"):
        assert getattr(switched_on, field) == getattr(defaults, field), field
    assert switched_on.model_override == "gpt-4o-mini"


def test_init_never_overwrites(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    Path("agenttape.toml").write_text('default_mode = "once"\n')
    code, out, _ = run(capsys, "init")
    assert code == 0
    assert "kept agenttape.toml" in out
    assert Path("agenttape.toml").read_text() == 'default_mode = "once"\n'
    # A [tool.agenttape] table would be silently shadowed by a new agenttape.toml.
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.agenttape]\nformat = 'json'\n")
    code, out, _ = run(capsys, "init", "--dir", str(project))
    assert code == 0
    assert not (project / "agenttape.toml").exists()
    assert (project / "cassettes").is_dir()
    assert run(capsys, "init", "--dir", str(tmp_path / "nope"))[0] == 2


# --- record / replay -----------------------------------------------------------------------------

AGENT_MODULE = '''
import asyncio
import agenttape

executed = []

@agenttape.tool
def lookup(q: str) -> str:
    executed.append(q)
    return q.upper()

def main():
    return lookup("sync")

async def amain():
    await asyncio.sleep(0)
    return lookup("async")

def crash():
    lookup("before the crash")
    raise ValueError("agent exploded")

class Bot:
    @staticmethod
    def run():
        return lookup("method")
'''


@pytest.fixture
def agent_module(tmp_path: Path) -> Iterator[str]:
    """A user module in the cwd, as `agenttape record` would import it."""
    name = f"user_agent_{tmp_path.name.replace('-', '_')}"
    Path(f"{name}.py").write_text(AGENT_MODULE)
    saved = list(sys.path)
    try:
        yield name
    finally:
        sys.path[:] = saved
        sys.modules.pop(name, None)


def test_record_runs_module_func_in_a_recording_session(
    capsys: pytest.CaptureFixture[str], agent_module: str
) -> None:
    code, out, _ = run(capsys, "record", f"{agent_module}:main", "rec")
    assert code == 0, out
    assert "1 interaction(s) (tool 1): 1 live, 0 replayed; mode record" in out
    assert "wrote cassettes/rec.yaml" in out
    cassette = agenttape.read_cassette("cassettes/rec.yaml")
    assert [(i.boundary, i.response) for i in cassette.interactions] == [("lookup", "SYNC")]
    assert cassette.meta["mode"] == "record"
    module = sys.modules[agent_module]
    assert module.executed == ["sync"]
    # --mode none replays: the tool does not run and nothing is written.
    before = Path("cassettes/rec.yaml").read_bytes()
    code, out, _ = run(capsys, "record", f"{agent_module}:main", "rec", "--mode", "none")
    assert code == 0
    assert "0 live, 1 replayed" in out
    assert "nothing written" in out
    assert module.executed == ["sync"]
    assert Path("cassettes/rec.yaml").read_bytes() == before


def test_record_async_functions_and_dotted_attributes(
    capsys: pytest.CaptureFixture[str], agent_module: str
) -> None:
    assert run(capsys, "record", f"{agent_module}:amain", "a")[0] == 0
    assert agenttape.read_cassette("cassettes/a.yaml").interactions[0].response == "ASYNC"
    assert run(capsys, "record", f"{agent_module}:Bot.run", "b")[0] == 0
    assert agenttape.read_cassette("cassettes/b.yaml").interactions[0].response == "METHOD"


def test_record_errors(capsys: pytest.CaptureFixture[str], agent_module: str) -> None:
    code, _, err = run(capsys, "record", "no_colon", "x")
    assert code == 2
    assert "expected MODULE:FUNC" in err
    code, _, err = run(capsys, "record", "no_such_module_xyz:main", "x")
    assert code == 2
    assert "cannot import 'no_such_module_xyz'" in err
    code, _, err = run(capsys, "record", f"{agent_module}:nope", "x")
    assert code == 2
    assert "has no attribute 'nope'" in err
    # The user's own exception: one line naming its type; what was recorded is kept.
    code, _, err = run(capsys, "record", f"{agent_module}:crash", "crashed")
    assert code == 2
    assert "agenttape record: error: ValueError: agent exploded" in err
    cassette = agenttape.read_cassette("cassettes/crashed.yaml")
    assert cassette.meta["incomplete"] is True
    assert cassette.interactions[0].request["args"] == {"q": "before the crash"}


def test_replay_serves_the_timeline_offline(capsys: pytest.CaptureFixture[str]) -> None:
    record()
    code, out, _ = run(capsys, "replay", "support")
    assert code == 0, out
    assert runs == Counter()  # nothing real ran
    lines = out.splitlines()
    assert lines[0] == "replaying cassettes/support.yaml offline (mode none): 4 interaction(s)"
    served = [line.split()[0:4] for line in lines if line.startswith("  #")]
    assert [row[0] for row in served] == ["#0", "#1", "#2", "#3"]
    assert "search_docs" in lines[2] and "get_order" in lines[3] and "openai" in lines[5]
    assert lines[-1] == "replayed 4/4 offline; 75 tokens not spent; nothing external ran"


def test_replay_reports_recordings_the_current_config_cannot_match(
    capsys: pytest.CaptureFixture[str]
) -> None:
    record()
    # A new redaction rule changes the incoming request, not the stored one.
    Path("agenttape.toml").write_text('[redact]\nregexes = ["A-1[0-9]"]\n')
    code, out, err = run(capsys, "replay", "support")
    assert code == 1
    assert "get_order" in out and "DOES NOT REPLAY" in out
    assert "agenttape redact" in err
    assert run(capsys, "redact", "support")[0] == 0
    assert run(capsys, "replay", "support")[0] == 0


# --- inspect / timeline -------------------------------------------------------------------------


def test_inspect_shows_metadata_each_interaction_and_totals(
    capsys: pytest.CaptureFixture[str]
) -> None:
    path = record()
    cassette = agenttape.read_cassette(path)
    code, out, _ = run(capsys, "inspect", "support")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "cassettes/support.yaml"
    assert f"run {cassette.run_id}" in lines[1]
    assert "mode record" in lines[2] and "frozen: clock, uuid, random" in lines[2]
    rows = [line.split() for line in lines if re.match(r"\s+\d+\s", line)]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("0", "retrieval", "search_docs"), ("1", "tool", "get_order"),
        ("2", "memory_write", "save_note"), ("3", "llm", "openai"),
    ]
    assert 'get_order(order_id="A-17") -> {"order_id": "A-17", "status": "delivered"' in out
    assert 'chat.completions gpt-4o-mini: "Can I return order A-17?" -> "Yes: refunds' in out
    assert rows[3][5] == "75"  # tokens column of the llm row
    assert lines[-1].startswith("4 interaction(s) (retrieval 1, tool 1, memory_write 1, llm 1)")
    assert "tokens 57 in / 18 out / 75 total | 0 error(s)" in lines[-1]


def test_inspect_full_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    path = record()
    cassette = agenttape.read_cassette(path)
    code, out, _ = run(capsys, "inspect", "support", "--full")
    assert code == 0
    assert "finish_reason: stop" in out
    assert f"match_key: {cassette.interactions[1].match_key}" in out
    code, out, _ = run(capsys, "inspect", "support", "--json", "--full")
    assert code == 0
    doc = json.loads(out)
    assert doc["run_id"] == cassette.run_id
    assert doc["totals"] == {
        "interactions": 4, "by_kind": {"retrieval": 1, "tool": 1, "memory_write": 1, "llm": 1},
        "errors": 0, "latency_ms": doc["totals"]["latency_ms"], "input_tokens": 57,
        "output_tokens": 18, "total_tokens": 75,
    }
    assert [i["interaction"] for i in doc["interactions"]] == [
        i.to_dict() for i in cassette.interactions]
    assert doc["interactions"][3]["tokens"] == {"input": 57, "output": 18, "total": 75}


def _bar_eighths(bar: str) -> int:
    return sum(8 if ch == "█" else " ▏▎▍▌▋▊▉".index(ch) for ch in bar)


def test_timeline_bars_scale_to_the_longest_in_recorded_order(
    capsys: pytest.CaptureFixture[str]
) -> None:
    path = record()
    cassette = agenttape.read_cassette(path)
    code, out, _ = run(capsys, "timeline", "support", "--width", "20")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("cassettes/support.yaml: 4 interaction(s)")
    body = lines[2:]
    latencies = [i.latency_ms or 0.0 for i in cassette.interactions]
    longest = max(latencies)
    start = 0.0
    for line, inter in zip(body, cassette.interactions, strict=True):
        cells = line.split()
        assert cells[0] == str(inter.index)
        assert cells[1] == f"+{start / 1000:.3f}s"
        assert (cells[2], cells[3]) == (inter.kind, inter.boundary)
        bar = cells[-1]
        assert _bar_eighths(bar) == max(round((inter.latency_ms or 0) / longest * 160), 1)
        start += inter.latency_ms or 0.0
    assert max(_bar_eighths(line.split()[-1]) for line in body) == 160


def test_timeline_falls_back_to_ascii_bars() -> None:
    record()
    result = subprocess.run(
        [sys.executable, "-m", "agenttape", "timeline", "support", "--width", "10"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
    )
    assert result.returncode == 0, result.stderr
    bars = [line.split()[-1] for line in result.stdout.splitlines()[2:]]
    assert max(bars, key=len) == "#" * 10
    assert all(set(bar) == {"#"} for bar in bars)


def test_inspect_summarises_http_calls_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    @agenttape.tool
    def charge_card(amount: int) -> str:
        raise ValueError(f"card declined for {amount}")

    with agenttape.use_cassette("mixed", record=True):
        agenttape.record_call(
            "http", {"method": "GET", "url": "https://api.example.com/items?id=3"},
            lambda: {"status_code": 404, "json": {"detail": "no such item"}},
            boundary="api.example.com",
        )
        with pytest.raises(ValueError):
            charge_card(7)
    code, out, _ = run(capsys, "inspect", "mixed")
    assert code == 0
    assert ('GET https://api.example.com/items?id=3 -> 404 {"detail": "no such item"}'
            in out)
    assert "charge_card(amount=7) -> raised ValueError: card declined for 7" in out
    assert out.splitlines()[-1].endswith("| 1 error(s)")


# --- diff ----------------------------------------------------------------------------------------


def test_diff_of_a_cassette_and_its_derived_partial_replay(
    capsys: pytest.CaptureFixture[str]
) -> None:
    record()
    # The order is now lost: the live tools run for real, everything else replays.
    world["status"] = "lost"
    with agenttape.use_cassette("support", mode="none",
                                live={"get_order", "open_ticket", "save_note"}) as session:
        agent()
    assert [p.name for p in session.written] == ["support.derived.yaml"]
    assert runs == Counter(get_order=1, open_ticket=1, save_note=1)

    code, out, _ = run(capsys, "diff", "support", "support.derived")
    assert code == 1
    assert out.splitlines()[:2] == [
        "--- A cassettes/support.yaml (4 interactions)",
        "+++ B cassettes/support.derived.yaml (5 interactions)",
    ]
    assert "~ A#1 B#1  tool get_order" in out
    assert '    response.status: "delivered" -> "lost"' in out
    assert '+ B#2  tool open_ticket  open_ticket(order_id="A-17")' in out
    assert '    request.args.value: "delivered" -> "lost"' in out
    assert out.splitlines()[-1] == "run: 2 changed, 0 removed, 1 added, 2 unchanged"

    # The llm call replayed with the same prompt: the prompt view is equal (exit 0).
    code, out, _ = run(capsys, "diff", "support", "support.derived", "--type", "prompt")
    assert (code, out.splitlines()[-1]) == (0, "prompt: identical (1 llm request(s))")
    code, out, _ = run(capsys, "diff", "support", "support.derived", "--type", "state")
    assert code == 1
    assert "~ A#2 B#3  memory_write save_note" in out
    code, out, _ = run(capsys, "diff", "support", "support.derived", "--type", "output")
    assert code == 1
    assert '    response.status: "delivered" -> "lost"' in out
    assert "request.args" not in out  # output compares responses only
    code, out, _ = run(capsys, "diff", "support", "support.derived", "--type", "all")
    assert code == 1
    for section in ("== run ==", "== prompt ==", "== state ==", "== output =="):
        assert section in out


def test_diff_equal_cassettes_exit_0_and_removed_interactions(
    capsys: pytest.CaptureFixture[str]
) -> None:
    record()
    with agenttape.use_cassette("support", mode="none", live={"get_order"}):
        agent()
    code, out, _ = run(capsys, "diff", "support", "support.derived", "--type", "all")
    assert code == 0, out
    assert "run: 0 changed, 0 removed, 0 added, 4 unchanged" in out
    code, out, _ = run(capsys, "diff", "support.derived", "support")
    assert code == 0
    # Against a run that never looked the order up: removals.
    with agenttape.use_cassette("short", record=True):
        search_docs("refund policy")
    code, out, _ = run(capsys, "diff", "support", "short")
    assert code == 1
    assert "- A#1  tool get_order" in out
    assert out.splitlines()[-1] == "run: 0 changed, 3 removed, 0 added, 1 unchanged"


def test_diff_prompt_is_a_unified_diff_of_the_message_texts(
    capsys: pytest.CaptureFixture[str]
) -> None:
    record("before")
    world["question"] = "Can I return order A-18?"
    record("after")
    code, out, _ = run(capsys, "diff", "before", "after", "--type", "prompt")
    assert code == 1
    lines = out.splitlines()
    assert "--- A llm messages" in lines and "+++ B llm messages" in lines
    assert "-user: Can I return order A-17?" in lines
    assert "+user: Can I return order A-18?" in lines
    assert " [llm call 1 | openai | gpt-4o-mini]" in lines
    code, out, _ = run(capsys, "diff", "before", "after")
    assert code == 1
    assert '    request.messages[1].content: "Can I return order A-17?" -> ' \
           '"Can I return order A-18?"' in out


# --- redact --------------------------------------------------------------------------------------


def test_redact_reapplies_the_configured_redaction_in_place(
    capsys: pytest.CaptureFixture[str]
) -> None:
    path = record()
    assert "A-17" in path.read_text()
    Path("agenttape.toml").write_text('[redact]\nregexes = ["A-1[0-9]"]\ndenylist = ["total"]\n')
    code, out, _ = run(capsys, "redact", "support")
    assert code == 0
    assert out.strip() == "cassettes/support.yaml: redacted 2 interaction(s); rewritten in place"
    text = path.read_text()
    assert "A-17" not in text
    cassette = agenttape.read_cassette(path)
    order = cassette.interactions[1]
    assert order.request["args"]["order_id"] == "***REDACTED***"
    assert order.response == {"order_id": "***REDACTED***", "status": "delivered",
                              "total": "***REDACTED***"}
    # Atomic rewrite: no temporary file left beside it; a second run has nothing to do.
    assert sorted(p.name for p in path.parent.iterdir()) == ["support.yaml"]
    code, out, _ = run(capsys, "redact", "support")
    assert (code, out.strip()) == (0, "cassettes/support.yaml: nothing to redact")
    # The redacted cassette still replays its own requests.
    with agenttape.use_cassette("support", mode="none"):
        agent()
    assert runs == Counter()


def test_redact_when_disabled_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    record()
    Path("agenttape.toml").write_text("[redact]\nenabled = false\n")
    code, _, err = run(capsys, "redact", "support")
    assert code == 2
    assert "redaction is disabled" in err


# --- validate ------------------------------------------------------------------------------------


def test_validate_passes_clean_cassettes(capsys: pytest.CaptureFixture[str]) -> None:
    record()
    record("other")
    code, out, _ = run(capsys, "validate")
    assert (code, out) == (0, "2 cassette(s) checked: 0 error(s), 0 warning(s)\n")


def test_validate_catches_planted_secrets_wrong_kinds_and_bad_versions(
    capsys: pytest.CaptureFixture[str]
) -> None:
    good = record().read_text()
    bad = Path("cassettes/bad")
    bad.mkdir()
    # Planted bad input: a key that slipped past redaction, a wrong kind, a bad version,
    # a truncated file.
    (bad / "secret.yaml").write_text(good.replace(
        "query: refund policy", "query: refund policy sk-proj-abcdefghijklmnop1234567890XYZ"))
    (bad / "kind.yaml").write_text(good.replace("kind: tool", "kind: toool", 1))
    (bad / "version.yaml").write_text(good.replace("version: '1'", "version: '7'", 1))
    (bad / "broken.yaml").write_text(good[: good.index("interactions:")] + "interactions: [\n")
    code, out, _ = run(capsys, "validate")
    assert code == 1
    lines = out.splitlines()
    assert lines[-1] == "5 cassette(s) checked: 4 error(s), 0 warning(s)"
    assert any(re.fullmatch(r"cassettes/bad/broken\.yaml:\d+:\d+: schema: invalid YAML.*", line)
               for line in lines)
    assert ("cassettes/bad/kind.yaml:interaction 1: schema: field 'kind': kind must be one of "
            "llm, tool, retrieval, memory_read, memory_write, http; got 'toool'") in lines
    assert ("cassettes/bad/secret.yaml:interaction 0: secret (openai_api_key) at "
            "request.args.query; run `agenttape redact cassettes/bad/secret.yaml` and rotate "
            "the key") in lines
    assert "cassettes/bad/version.yaml: schema: unsupported version '7' (supported: '1')" in lines
    # Explicit paths: a folder, a file, a bare name.
    assert run(capsys, "validate", "cassettes/bad/kind.yaml")[0] == 1
    assert run(capsys, "validate", "support")[0] == 0
    code, out, _ = run(capsys, "validate", "cassettes/bad")
    assert out.splitlines()[-1] == "4 cassette(s) checked: 4 error(s), 0 warning(s)"


def test_validate_warns_about_determinism_risks(capsys: pytest.CaptureFixture[str]) -> None:
    import datetime
    import uuid

    @agenttape.tool
    def book(when: str, request_ref: str, created: str) -> str:
        return "booked"

    stamp = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc).isoformat()
    ref = str(uuid.UUID(int=7, version=4))
    with agenttape.use_cassette("loose", record=True, freeze=[]):
        book(stamp, ref, stamp)
    with agenttape.use_cassette("pinned", record=True):
        book(stamp, ref, stamp)
    code, out, _ = run(capsys, "validate")
    assert code == 0  # warnings only
    lines = out.splitlines()
    assert lines[-1] == "2 cassette(s) checked: 0 error(s), 2 warning(s)"
    assert lines[0].startswith(
        f"cassettes/loose.yaml:interaction 0: warning: request.args.when holds a timestamp "
        f"('{stamp}') but 'clock' is not frozen")
    assert lines[1].startswith(
        f"cassettes/loose.yaml:interaction 0: warning: request.args.request_ref holds a uuid "
        f"('{ref}') but 'uuid' is not frozen")
    # `created` is a volatile field: never matched, so never a risk.
    assert "args.created" not in out
    assert run(capsys, "validate", "--strict")[0] == 1
    assert run(capsys, "validate", "pinned", "--strict")[0] == 0


def test_validate_with_no_cassettes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate") == (0, "no cassettes under cassettes\n", "")


# --- export / rm ---------------------------------------------------------------------------------


def test_export_json_to_stdout_and_file(capsys: pytest.CaptureFixture[str]) -> None:
    path = record()
    expected = agenttape.read_cassette(path).to_dict()
    code, out, _ = run(capsys, "export", "support", "--format", "json")
    assert code == 0
    assert json.loads(out) == expected
    code, out, _ = run(capsys, "export", "support", "--format", "json", "-o", "out.json")
    assert (code, out) == (0, "")
    assert json.loads(Path("out.json").read_text()) == expected
    assert run(capsys, "export", "support", "--format", "xml")[0] == 2
    assert run(capsys, "export", "support", "--format", "json", "-o", "no/dir/x.json")[0] == 2


@agenttape.tool
def fetch_blob(n: int) -> bytes:
    return bytes(range(256)) * n


def test_rm_deletes_the_cassette_its_assets_and_derived_companions(
    capsys: pytest.CaptureFixture[str]
) -> None:
    with agenttape.use_cassette("blobby", record=True):
        fetch_blob(40)  # over assets_threshold_bytes: stored under blobby.assets/
        search_docs("q")
    with agenttape.use_cassette("blobby", mode="none", live={"search_docs"}):
        fetch_blob(40)
        search_docs("q")
    with agenttape.use_cassette("keep", record=True):
        search_docs("q")
    folder = Path("cassettes")
    assert sorted(p.name for p in folder.iterdir()) == [
        "blobby.assets", "blobby.derived.assets", "blobby.derived.yaml", "blobby.yaml",
        "keep.yaml"]
    code, out, err = run(capsys, "rm", "blobby", "-f")
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == ["keep.yaml"]
    assert "deleted cassettes/blobby.assets" in out
    assert run(capsys, "rm", "blobby", "-f")[0] == 2


def test_rm_asks_first(tmp_path: Path) -> None:
    record()
    declined = cli("rm", "support", stdin="n\n")
    assert declined.returncode == 1
    assert "will delete:\n  cassettes/support.yaml\n" in declined.stdout
    assert "nothing deleted" in declined.stdout
    assert Path("cassettes/support.yaml").exists()
    silent = cli("rm", "support", stdin="")  # no answer is a no
    assert silent.returncode == 1
    assert Path("cassettes/support.yaml").exists()
    accepted = cli("rm", "support", stdin="y\n")
    assert accepted.returncode == 0
    assert not Path("cassettes/support.yaml").exists()


# --- every command once through a real process ------------------------------------------------

SUBPROCESS_RUNS = [
    (["inspect", "support"], 0, "4 interaction(s) (retrieval 1, tool 1, memory_write 1, llm 1)"),
    (["timeline", "support"], 0, "bars scaled to the longest"),
    (["replay", "support"], 0, "replayed 4/4 offline"),
    (["diff", "support", "support"], 0, "run: 0 changed, 0 removed, 0 added, 4 unchanged"),
    (["diff", "support", "other", "--type", "prompt"], 1, "+user: Where is my parcel?"),
    (["validate"], 0, "2 cassette(s) checked: 0 error(s), 0 warning(s)"),
    (["redact", "support"], 0, "nothing to redact"),
    (["export", "support", "--format", "otel"], 0, '"gen_ai.operation.name"'),
    (["export", "support", "--format", "json"], 0, '"run_id"'),
    (["view", "support"], 0, "wrote cassettes/support.html"),
    (["view", "support", "other", "-o", "cmp.html"], 0, "wrote cmp.html"),
    (["rm", "other", "-f"], 0, "deleted cassettes/other.yaml"),
    (["init"], 0, "wrote agenttape.toml"),
]


@pytest.mark.parametrize(("argv", "code", "expected"), SUBPROCESS_RUNS,
                         ids=[" ".join(r[0]) for r in SUBPROCESS_RUNS])
def test_each_command_through_python_dash_m(argv: list[str], code: int, expected: str) -> None:
    record()
    world["question"] = "Where is my parcel?"
    record("other")
    result = cli(*argv)
    assert result.returncode == code, result.stderr
    assert expected in result.stdout
    assert result.stderr == ""


def test_record_through_python_dash_m(agent_module: str) -> None:
    result = cli("record", f"{agent_module}:amain", "sub")
    assert result.returncode == 0, result.stderr
    assert "wrote cassettes/sub.yaml" in result.stdout
    assert agenttape.read_cassette("cassettes/sub.yaml").interactions[0].response == "ASYNC"
