"""Hostile cassettes: a cassette from someone else's pull request can only load or be refused.

A real cassette is recorded once (tools, httpx, requests, a stream, a binary asset, the
OpenAI and Anthropic SDKs), then bit-flipped, truncated, spliced and seeded with hostile
YAML/JSON. Every mutant must load as a :class:`Cassette` or raise
:class:`CassetteCorruptError`/:class:`SchemaVersionError`; opened with ``use_cassette`` and
replayed, it may only fail the way a bad recording fails (an agenttape error, a replayed
error, the SDK's own reaction to the replayed data), never with an agenttape bug, a hang,
an import or a write. tests/test_storage.py fuzzes the reader with generated documents;
this file mutates real recordings and goes through sessions and transports.

``AGENTTAPE_FUZZ_EXAMPLES=200000`` raises the example counts for a long local run (see
docs/security.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from conftest import SECRET_API_KEY
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from llm_server import LLMServer

import agenttape
from agenttape.config import Config
from agenttape.errors import AgentTapeError, CassetteCorruptError, SchemaVersionError

REPO = Path(__file__).resolve().parent.parent
AGENTTAPE_DIR = str(REPO / "agenttape")
_STDLIB = os.path.dirname(os.__file__)


READ_EXAMPLES, REPLAY_EXAMPLES = 2000, 150  # in CI: about 15 s together


def _examples(ci: int) -> int:
    """CI's example count, or the long run's share of AGENTTAPE_FUZZ_EXAMPLES (the total,
    split between the two fuzzers as in CI)."""
    total = os.environ.get("AGENTTAPE_FUZZ_EXAMPLES", "").strip()
    return max(ci, int(total) * ci // (READ_EXAMPLES + REPLAY_EXAMPLES)) if total else ci


FUZZ = settings(
    deadline=None,
    max_examples=_examples(READ_EXAMPLES),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)
REPLAY_FUZZ = settings(FUZZ, max_examples=_examples(REPLAY_EXAMPLES))


def _no_mark(test: Callable[..., Any]) -> Callable[..., Any]:
    return test


# A long run outlasts the suite's per-test timeout; CI keeps it.
LONG_RUN = pytest.mark.timeout(0) if os.environ.get("AGENTTAPE_FUZZ_EXAMPLES") else _no_mark
# Per mutant; generous so that a slow CI machine never flakes, small next to a real hang.
TIME_LIMIT = 5.0


class ToolBoom(Exception):
    """The recorded tool error; defined here so replaying it rebuilds this very class."""


@agenttape.tool
def lookup(topic: str) -> dict[str, Any]:
    return {"topic": topic, "summary": f"{topic} is a letter"}


@agenttape.tool
def explode(n: int) -> int:
    raise ToolBoom(f"boom {n}")


@dataclass(repr=False)
class Recorded:
    folder: Path  # holds real.yaml, real.json and real.assets/
    config: Config
    url: str
    openai_base_url: str
    anthropic_base_url: str
    outcomes: list[Any]

    def __repr__(self) -> str:  # hypothesis prints it with every failing example
        return f"<Recorded {self.folder}>"

    @property
    def yaml(self) -> bytes:
        return (self.folder / "real.yaml").read_bytes()

    @property
    def json(self) -> bytes:
        return (self.folder / "real.json").read_bytes()

    @property
    def asset(self) -> Path:
        [asset] = (self.folder / "real.assets").iterdir()
        return asset


def drive(rec: Recorded) -> list[Any]:
    """The recorded run: each step's value, or the exception it raised."""
    outcomes: list[Any] = []

    def step(run: Callable[[], Any]) -> None:
        try:
            outcomes.append(run())
        except Exception as exc:
            outcomes.append(exc)

    def sse() -> list[str]:
        with http.stream("GET", f"{rec.url}/slow-sse?n=3&delay=0") as response:
            return list(response.iter_lines())

    with httpx.Client(transport=agenttape.transport()) as http, openai.OpenAI(
        api_key=SECRET_API_KEY, base_url=rec.openai_base_url, max_retries=0,
        http_client=agenttape.http_client()) as oai, anthropic.Anthropic(
        api_key=SECRET_API_KEY, base_url=rec.anthropic_base_url, max_retries=0,
        http_client=agenttape.http_client()) as claude, agenttape.requests_session() as req:
        step(lambda: lookup("alpha"))
        step(lambda: explode(3))
        step(lambda: http.get(f"{rec.url}/json?x=1").json())
        step(lambda: http.post(f"{rec.url}/echo", json={"q": "hi"}).json()["body"])
        step(lambda: http.get(f"{rec.url}/binary?size=6000").content)
        step(sse)
        step(lambda: oai.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hello"}]
        ).choices[0].message.content)
        step(lambda: claude.messages.create(
            model="claude-test", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        ).content[0])
        step(lambda: req.get(f"{rec.url}/text").text)
    return outcomes


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    folder = tmp_path_factory.mktemp("real")
    with LLMServer() as server:
        config = Config(cassette_dir=folder, llm_hosts=[f"127.0.0.1:{server.port}"])
        rec = Recorded(folder, config, server.url, server.openai_base_url,
                       server.anthropic_base_url, [])
        for fmt in ("yaml", "json"):
            with agenttape.use_cassette("real", mode="record", config=config, format=fmt):
                rec.outcomes = drive(rec)
    assert isinstance(rec.outcomes[1], ToolBoom)
    assert not any(isinstance(o, Exception) for i, o in enumerate(rec.outcomes) if i != 1)
    # What the mutations start from: every kind of crossing, a stream and an asset.
    cassette = agenttape.read_cassette(folder / "real.yaml")
    assert {i.kind for i in cassette.interactions} == {"tool", "http", "llm"}
    assert b"body_asset" in rec.yaml and b"events" in rec.yaml
    assert len(list((folder / "real.assets").iterdir())) == 1
    yield rec


# --------------------------------------------------------------------------- mutations

HOSTILE_YAML = [
    "x: &a [1, 2]\ny: *a",
    "a: &a [&b [x, x], *b]\nb: [*a, *a, *a]",
    "l0: &l0 [x, x, x, x, x, x, x, x]\nl1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0]\n"
    "l2: [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]",
    "p: !!python/object/apply:os.system ['touch pwned']",
    "p: !!python/object/new:subprocess.Popen [['touch', 'pwned']]",
    "p: !!python/name:os.system",
    "p: !!python/module:antigravity",
    "p: !custom {x: 1}",
    "p: !!binary aGVsbG8=",
    "p: !!set {a, b}",
    "p: !!timestamp 2001-12-14",
    "<<: {kind: tool}",
    "? [complex, key]\n: value",
    "kind: llm\nkind: http",
    "index: .nan",
    "latency_ms: .inf",
    "index: 0x10",
    "index: 99999999999999999999999999999999999999",
    "request: " + "[" * 3000 + "]" * 3000,
    "request: {" + "a: {" * 400 + "}" * 401,
    "response: '" + "x" * 2_000_000 + "'",
    "version: '2'",
    "version: 1",
    "kind: teleport",
    "error: {module: antigravity, type: Fly, message: up}",
    "error: {module: agenttape, type: AgentTape, message: lazy}",
    "error: {module: httpx2, type: main, message: lazy}",
    "error: {module: builtins, type: KeyboardInterrupt, message: stop}",
    "error: {module: builtins, type: SystemExit, message: '3'}",
    "metadata: {stream: true, stream_format: bytes}",
    "metadata: {http: {status_code: banana, headers: [1, 2]}}",
    "response: {status_code: 99999, headers: {x: [1, {a: b}]}, body_b64: '!!'}",
    "response: {status_code: -5, chunks: [{body_b64: 3}, 4, null]}",
    "response: {status_code: '200', events: {a: 1}}",
    "body_asset: sha256:../../../../etc/passwd",
    "body_asset: sha256:" + "0" * 64,
    "%YAML 1.1\n---",
    "--- second document",
    "\t tab: indented",
]
HOSTILE_BYTES = [b"\xef\xbb\xbf", b"\xff\xfe", b"\xc3", b"\x00", b"\x1b[31m", b"\r",
                 b"\xe2\x80\xa8",
                 b"\xed\xa0\x80"]
HOSTILE_JSON = [
    '"index": NaN,', '"index": Infinity,', '"index": -Infinity,', '"kind": "x", "kind": "tool",',
    '"request": ' + "[" * 5000 + "]" * 5000 + ",", '"response": "' + "y" * 2_000_000 + '",',
    '"error": {"module": "antigravity", "type": "Fly", "message": "up"},',
    '"index": 1e999,', '"index": 123456789012345678901234567890123456789012345678901234567890,',
    '"x": "\\ud800",', "/* comment */", "'single': 1,",
]
# Values a bit flip rarely reaches: types and names the replay code reads.
REPLACEMENTS = [
    (b"kind: tool", b"kind: tools"), (b"kind: http", b"kind: llm"), (b"kind: llm", b"kind: http"),
    (b"module: ", b"module: antigravity #"), (b"type: ToolBoom", b"type: KeyboardInterrupt"),
    (b"status_code: 200", b"status_code: '200'"), (b"status_code: 200", b"status_code: -1"),
    (b"status_code: 200", b"status_code: 1000000000000"), (b"status_code: 200", b"status_code: []"),
    (b"stream: true", b"stream: 7"), (b"stream_complete: true", b"stream_complete: {}"),
    (b"events:", b"chunks:"), (b"headers:", b"headers: 5\n  old_headers:"),
    (b"content-type: ", b"content-type: [1, 2] #"),
    (b"body_asset: sha256:", b"body_asset: sha256:f"),
    (b"index: 0", b"index: -1"), (b"index: 1", b"index: 0"), (b"version: '1'", b"version: '9'"),
    (b"response:", b"responses:"), (b"request:", b"request: []\n  x:"),
    (b"data:", b"data: [[[[]]]]\n        old:"), (b"tags: []", b"tags: [1]"),
    (b'"status_code": 200', b'"status_code": "x"'), (b'"kind": "tool"', b'"kind": 5'),
    (b'"stream": true', b'"stream": "yes"'), (b'"events": [', b'"events": [null, 1, "x", '),
]


def _line_starts(data: bytes | bytearray) -> list[int]:
    return [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A and i + 1 < len(data)]


@st.composite
def mutation(draw: st.DrawFn, base: bytes, is_json: bool) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 3))):
        size = len(data)
        op = draw(st.sampled_from(["flip", "truncate", "splice", "delete", "insert", "replace"]))
        if size == 0:
            op = "insert"
        if op == "flip":
            for _ in range(draw(st.integers(1, 8))):
                data[draw(st.integers(0, size - 1))] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del data[draw(st.integers(0, size - 1)):]
        elif op == "splice":
            start = draw(st.integers(0, size - 1))
            piece = data[start:start + draw(st.integers(1, 400))]
            at = draw(st.integers(0, size))
            data[at:at + draw(st.integers(0, len(piece)))] = piece
        elif op == "delete":
            start = draw(st.integers(0, size - 1))
            del data[start:start + draw(st.integers(1, 200))]
        elif op == "insert":
            starts = _line_starts(data)
            at = starts[draw(st.integers(0, len(starts) - 1))]
            indent = len(data[at:]) - len(data[at:].lstrip(b" "))
            kind = draw(st.sampled_from(["text", "bytes"]))
            if kind == "bytes":
                snippet = draw(st.sampled_from(HOSTILE_BYTES))
                at = draw(st.integers(0, size))
            elif is_json:
                snippet = draw(st.sampled_from(HOSTILE_JSON)).encode() + b"\n"
            else:
                text = draw(st.sampled_from(HOSTILE_YAML))
                snippet = textwrap.indent(text, " " * indent).encode() + b"\n"
            data[at:at] = snippet
        else:
            old, new = draw(st.sampled_from(REPLACEMENTS))
            found: list[int] = []
            at = data.find(old)
            while at != -1:
                found.append(at)
                at = data.find(old, at + 1)
            if found:
                at = draw(st.sampled_from(found))
                data[at:at + len(old)] = new
    return bytes(data)


def mutants(rec_bytes: Callable[[], tuple[bytes, bytes]]) -> st.SearchStrategy[tuple[str, bytes]]:
    yaml_base, json_base = rec_bytes()
    return st.one_of(
        mutation(yaml_base, False).map(lambda b: ("real.yaml", b)),
        mutation(json_base, True).map(lambda b: ("real.json", b)),
    )


# Values put in place of any part of a recording: a wrong type, an extreme value, a string
# that means something elsewhere (an asset reference, base64 that is not, an ISO date).
HOSTILE_VALUES: list[Any] = [
    None, True, False, 0, -1, 10**30, -(10**30), 0.5, 1e308, "", " ", "x" * 100_000, "\u2028",
    "é\x00\x1b", [], {}, [[[[]]]], {"a": {"b": None}}, [None, 1, "x", {}], "sha256:" + "0" * 64,
    "!!", "AAAA", "====", "2024-01-01", "null", "NaN", "127.0.0.1:9", "http://[::1", "%",
    {"body_b64": "%%%"}, {"events": None}, {"stream": True}, {"status_code": 99},
]


def _refs(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a JSON-like tree."""
    found: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else (
            enumerate(node) if isinstance(node, list) else ())
        for key, item in items:
            found.append((node, key))
            stack.append(item)
    return found


@st.composite
def structural(draw: st.DrawFn, base: bytes) -> bytes:
    """A well-formed cassette with parts replaced, deleted or renamed: mutants that load
    and reach the replay code, which byte-level damage mostly does not."""
    data = json.loads(base)
    for _ in range(draw(st.integers(1, 4))):
        refs = _refs(data)
        container, key = refs[draw(st.integers(0, len(refs) - 1))]
        op = draw(st.sampled_from(["set", "set", "delete", "rename", "swap"]))
        if op == "set":
            container[key] = draw(st.sampled_from(HOSTILE_VALUES))
        elif op == "delete":
            del container[key]
        elif op == "rename" and isinstance(container, dict):
            container[draw(st.sampled_from(["kind", "error", "response", "stream", "x",
                                            "body_b64", "events", "chunks", "headers"]))] = (
                container.pop(key))
        elif op == "swap":
            other, other_key = refs[draw(st.integers(0, len(refs) - 1))]
            container[key], other[other_key] = other[other_key], container[key]
    return json.dumps(data, ensure_ascii=False).encode()


def replay_mutants(rec_bytes: Callable[[], tuple[bytes, bytes]]
                   ) -> st.SearchStrategy[tuple[str, bytes]]:
    return st.one_of(mutants(rec_bytes),
                     structural(rec_bytes()[1]).map(lambda b: ("real.json", b)))


# Mutants are built from the module's recording, which hypothesis cannot see at collection
# time; a module global filled by the first test keeps the strategies lazy.
_BASES: dict[str, bytes] = {}


def _bases() -> tuple[bytes, bytes]:
    return _BASES["yaml"], _BASES["json"]


@pytest.fixture(scope="module", autouse=True)
def _remember_bases(recorded: Recorded) -> None:
    _BASES["yaml"] = recorded.yaml
    _BASES["json"] = recorded.json


def _stage(rec: Recorded, folder: Path, name: str, data: bytes) -> Path:
    """A fresh copy of the recording's folder with ``name`` replaced by ``data``."""
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(rec.folder, folder)
    target = folder / name
    target.write_bytes(data)
    return target


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _replayable(session: agenttape.Session) -> set[tuple[str, str]]:
    """(class name, message) of every error the session's cassette records."""
    assert session.cassette is not None
    return {(str(i.error.get("type", "Exception")).rsplit(".", 1)[-1],
             str(i.error.get("message", ""))) for i in session.cassette.interactions if i.error}


def _agenttape_bug(exc: BaseException, replayable: set[tuple[str, str]]) -> bool:
    """Whether ``exc`` is a plain Python error raised by agenttape's own code.

    An agenttape error, a replayed error (a class and message the cassette records, or a
    RuntimeError naming them),
    and anything the SDKs or HTTP libraries raise about the data they were handed back
    are the ways a bad recording may fail. A builtin or standard-library exception
    (TypeError, KeyError, binascii.Error...) whose nearest non-stdlib frame is
    agenttape's is a crash in agenttape.
    """
    if isinstance(exc, (AgentTapeError, ToolBoom)):
        return False
    if type(exc) is RuntimeError and str(exc).startswith("replayed "):
        return False
    if (type(exc).__name__, str(exc)) in replayable:
        return False
    module = type(exc).__module__.split(".", 1)[0]
    if module != "builtins" and module not in sys.stdlib_module_names:
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if frame.filename.startswith(_STDLIB) and "site-packages" not in frame.filename:
            continue
        return frame.filename.startswith(AGENTTAPE_DIR)
    return False


def _imported_since(before: set[str]) -> set[str]:
    """Modules imported since ``before``. A standard codec (``encodings.cp1252``) is not
    counted: decoding a body in a recorded charset loads it, as for any HTTP response, and
    Python only ever looks for codecs inside the ``encodings`` package."""
    return {name for name in set(sys.modules) - before if not name.startswith("encodings.")}


def _quietly(run: Callable[[], Any]) -> Any:
    import warnings

    with warnings.catch_warnings():
        # Mutated recordings may replay as incomplete streams or drifted freezes: warnings
        # about the data are fine here; the outcome is what is checked.
        warnings.simplefilter("ignore")
        return run()


# --------------------------------------------------------------------------- the fuzzers


@FUZZ
@LONG_RUN
@given(case=st.deferred(lambda: mutants(_bases)))
def test_mutated_real_cassettes_load_or_raise_cassette_errors(
    recorded: Recorded, tmp_path: Path, case: tuple[str, bytes]
) -> None:
    name, data = case
    folder = tmp_path / "case"
    path = _stage(recorded, folder, name, data)
    before = _snapshot(folder)
    modules = set(sys.modules)
    started = time.perf_counter()
    try:
        cassette = agenttape.read_cassette(path)
    except (CassetteCorruptError, SchemaVersionError) as exc:
        assert exc.path == path
        event(f"refused: {type(exc).__name__}")
    else:
        assert isinstance(cassette, agenttape.Cassette)
        event("loaded")
        assert all(isinstance(i, agenttape.Interaction) for i in cassette.interactions)
    assert time.perf_counter() - started < TIME_LIMIT
    assert _snapshot(folder) == before  # nothing written, deleted or created
    assert _imported_since(modules) == set()
    assert not Path("pwned").exists()


@REPLAY_FUZZ
@LONG_RUN
@given(case=st.deferred(lambda: replay_mutants(_bases)))
def test_replaying_a_mutated_cassette_fails_only_as_a_bad_recording(
    recorded: Recorded, tmp_path: Path, case: tuple[str, bytes]
) -> None:
    name, data = case
    folder = tmp_path / "case"
    _stage(recorded, folder, name, data)
    before = _snapshot(folder)
    modules = set(sys.modules)
    config = recorded.config.evolve(cassette_dir=folder)
    fmt = "json" if name.endswith(".json") else "yaml"
    started = time.perf_counter()
    outcomes: list[Any] = []
    replayable: set[tuple[str, str]] = set()
    try:
        with agenttape.use_cassette("real", config=config, format=fmt, mode="none") as session:
            replayable = _replayable(session)
            outcomes = _quietly(lambda: drive(recorded))
    except (CassetteCorruptError, SchemaVersionError):
        event("refused")
    except AgentTapeError:
        event("loaded, then unmatched")  # surfaced by the session after an SDK swallowed it
    else:
        pairs = zip(outcomes, recorded.outcomes, strict=False)
        same = sum(1 for o, r in pairs if type(o) is type(r))
        event(f"replayed: {same} of {len(outcomes)} steps as recorded")
    assert time.perf_counter() - started < TIME_LIMIT
    bugs = [o for o in outcomes
            if isinstance(o, BaseException) and _agenttape_bug(o, replayable)]
    assert not bugs, "".join(traceback.format_exception(bugs[0]))
    assert _snapshot(folder) == before
    assert _imported_since(modules) == set()
    assert not Path("pwned").exists()


# --------------------------------------------------------------------------- the originals


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_the_unmutated_recording_replays_offline_and_exactly(recorded: Recorded,
                                                               fmt: str) -> None:
    """The fuzzers' baseline: a mutant that changes nothing must replay like this."""
    with agenttape.use_cassette("real", config=recorded.config, format=fmt, mode="none") as s:
        outcomes = drive(recorded)
    assert s.engine is not None and s.engine.live_count == 0
    assert [type(o) for o in outcomes] == [type(o) for o in recorded.outcomes]
    assert [o for o in outcomes if not isinstance(o, Exception)] == [
        o for o in recorded.outcomes if not isinstance(o, Exception)]


# --------------------------------------------------------------------------- named cases


def _hostile_file(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / "cassettes" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


INTERACTION = ("interactions:\n- index: 0\n  kind: tool\n  boundary: lookup\n"
               "  request: {name: lookup, args: {topic: alpha}}\n")
NAMED = {
    "alias-bomb": b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
                  b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n",
    "python-tag": b"meta: !!python/object/apply:os.system ['touch pwned']\n",
    "custom-tag": b"meta: !agenttape {a: 1}\n",
    "non-utf8": INTERACTION.encode() + b"  response: caf\xe9\n",
    "deep": b"meta: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "unknown-kind": INTERACTION.replace("kind: tool", "kind: telepathy").encode(),
    "version-2": b"version: '2'\ninteractions: []\n",
    "truncated": INTERACTION.encode()[:57],
}


@pytest.mark.parametrize("mode", ["none", "once", "new_episodes"])
@pytest.mark.parametrize("case", sorted(NAMED))
def test_use_cassette_on_a_hostile_file_leaves_it_byte_identical(tmp_path: Path, case: str,
                                                                  mode: str) -> None:
    path = _hostile_file(Path.cwd(), "hostile.yaml", NAMED[case])
    folder = path.parent
    before = _snapshot(folder)
    started = time.perf_counter()
    outcome: Any = None
    try:
        with agenttape.use_cassette("hostile", mode=mode):
            outcome = lookup("alpha")
    except (CassetteCorruptError, SchemaVersionError, agenttape.UnmatchedInteractionError) as exc:
        outcome = exc
    assert time.perf_counter() - started < TIME_LIMIT
    assert isinstance(outcome, (CassetteCorruptError, SchemaVersionError)), type(outcome)
    assert _snapshot(folder) == before
    assert not Path("pwned").exists()


@pytest.mark.parametrize(("data", "expected"), [
    (INTERACTION.encode() + b"  response: 1\n  response: 2\n", 2),  # the last wins, as in JSON
    (b"\xef\xbb\xbf\xef\xbb\xbf" + INTERACTION.encode() + b"  response: 3\n", 3),
    (INTERACTION.encode() + b"  response: '" + b"z" * 20_000_000 + b"'\n", "z" * 20_000_000),
], ids=["duplicate-keys", "two-boms", "20-MB-string"])
def test_odd_but_valid_files_load(data: bytes, expected: Any) -> None:
    path = _hostile_file(Path.cwd(), "odd.yaml", data)
    started = time.perf_counter()
    with agenttape.use_cassette("odd", mode="none"):
        assert lookup("alpha") == expected
    assert time.perf_counter() - started < TIME_LIMIT
    assert path.read_bytes() == data


def test_json_with_nan_is_refused_through_use_cassette() -> None:
    doc = {"interactions": [{"index": 0, "kind": "tool", "boundary": "lookup",
                             "request": {"name": "lookup", "args": {"topic": "alpha"}},
                             "response": float("nan")}]}
    path = _hostile_file(Path.cwd(), "nan.json", json.dumps(doc).encode())
    before = path.read_bytes()
    with pytest.raises(CassetteCorruptError, match="NaN"):  # noqa: SIM117
        with agenttape.use_cassette("nan", format="json"):
            pass
    assert path.read_bytes() == before


def test_a_fifo_or_device_is_refused_not_waited_on(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    folder = Path.cwd() / "cassettes"
    folder.mkdir()
    os.mkfifo(folder / "fifo.yaml")
    # A committed symlink can point anywhere: at an endless device, too.
    (folder / "zero.yaml").symlink_to("/dev/zero")
    for name in ("fifo", "zero"):
        started = time.perf_counter()
        with pytest.raises(CassetteCorruptError, match="not a regular file"):  # noqa: SIM117
            with agenttape.use_cassette(name):
                pass
        assert time.perf_counter() - started < TIME_LIMIT


def test_an_asset_that_is_a_symlink_to_a_device_is_refused(recorded: Recorded,
                                                           tmp_path: Path) -> None:
    folder = tmp_path / "case"
    _stage(recorded, folder, "real.yaml", recorded.yaml)
    asset = folder / "real.assets" / recorded.asset.name
    asset.unlink()
    asset.symlink_to("/dev/zero")
    started = time.perf_counter()
    with pytest.raises(CassetteCorruptError, match="not a regular file"):
        agenttape.read_cassette(folder / "real.yaml")
    assert time.perf_counter() - started < TIME_LIMIT


LAZY_IMPORTS = textwrap.dedent("""
    import sys
    from pathlib import Path
    import agenttape, httpx, httpx2, requests
    from agenttape.config import Config

    names = [("agenttape", "AgentTape", "agenttape.callbacks"),
             ("httpx2", "main", "httpx2._main"),
             ("antigravity_never", "Fly", "antigravity_never")]
    for module, _type, lazy in names:
        assert lazy not in sys.modules, lazy
    url = sys.argv[1]
    interactions = []
    accept = {"accept": "*/*"}  # what httpx2 and requests send (other headers are dropped)
    for n, (module, type_, _) in enumerate(names):
        error = {"type": type_, "module": module, "message": "hostile"}
        interactions.append(agenttape.Interaction(
            index=3 * n, kind="tool", boundary="t", request={"name": "t", "args": {"n": n}},
            error=error))
        interactions.append(agenttape.Interaction(
            index=3 * n + 1, kind="http", boundary="127.0.0.1:9",
            request={"method": "GET", "url": f"{url}/{n}", "headers": accept}, error=error))
        interactions.append(agenttape.Interaction(
            index=3 * n + 2, kind="http", boundary="127.0.0.1:9",
            request={"method": "GET", "url": f"{url}/r{n}", "headers": accept}, error=error))
    agenttape.write_cassette(agenttape.Cassette(interactions=interactions),
                             Path("cassettes/lazy.yaml"))

    @agenttape.tool(name="t")
    def t(n):
        raise AssertionError("replay never runs the tool")

    seen = []
    with agenttape.use_cassette("lazy", mode="none"):
        with httpx2.Client(transport=agenttape.transport()) as h, \\
                agenttape.requests_session() as r:
            for n in range(len(names)):
                for call in (lambda: t(n), lambda: h.get(f"{url}/{n}"),
                             lambda: r.get(f"{url}/r{n}")):
                    try:
                        call()
                    except Exception as exc:
                        seen.append(type(exc).__name__)
    imported = [lazy for _m, _t, lazy in names if lazy in sys.modules]
    print(imported, sorted(set(seen)))
    sys.exit(1 if imported else 0)
""")


def test_replayed_error_names_never_trigger_a_lazy_import(tmp_path: Path) -> None:
    """A module's ``__getattr__`` imports on demand (agenttape's own exports, httpx2.main):
    naming one in a cassette must not run it, on any replay path.
    A fresh interpreter, so nothing is imported already."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", LAZY_IMPORTS, "http://127.0.0.1:9"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "[] ['RuntimeError']"


@pytest.mark.parametrize("name", ["KeyboardInterrupt", "SystemExit", "GeneratorExit",
                                  "CancelledError"])
def test_a_cassette_cannot_raise_a_base_exception(name: str) -> None:
    module = "asyncio.exceptions" if name == "CancelledError" else "builtins"
    path = Path("cassettes/stop.yaml")
    agenttape.write_cassette(agenttape.Cassette(interactions=[agenttape.Interaction(
        index=0, kind="tool", boundary="lookup", request={"name": "lookup",
                                                            "args": {"topic": "alpha"}},
        error={"type": name, "module": module, "message": "stop"})]), path)
    with agenttape.use_cassette("stop"), pytest.raises(RuntimeError, match=f"replayed .*{name}"):
        lookup("alpha")


def test_unmutated_cassette_is_untouched_by_a_replay(recorded: Recorded, tmp_path: Path) -> None:
    """Reading modes never rewrite a cassette they replayed whole."""
    folder = tmp_path / "case"
    _stage(recorded, folder, "real.yaml", recorded.yaml)
    before = _snapshot(folder)
    for mode in ("none", "once", "new_episodes"):
        config = recorded.config.evolve(cassette_dir=folder)
        with agenttape.use_cassette("real", config=config, mode=mode), contextlib.suppress(
                Exception):
            drive(recorded)
        assert _snapshot(folder) == before, mode


@pytest.mark.parametrize("library", ["httpx", "requests"])
def test_a_recorded_header_outside_ascii_replays(library: str) -> None:
    """Servers send UTF-8 in headers (file names, reason texts); httpx refuses str headers
    that are not ASCII, so replay hands it the bytes."""
    url = "http://127.0.0.1:9/file"
    agenttape.write_cassette(agenttape.Cassette(interactions=[agenttape.Interaction(
        index=0, kind="http", boundary="127.0.0.1:9",
        request={"method": "GET", "url": url, "headers": {"accept": "*/*"}},
        response={"status_code": 200, "text": "ok",
                  "headers": {"content-disposition": 'attachment; filename="café.txt"'}})]),
        Path("cassettes/utf8.yaml"))
    with agenttape.use_cassette("utf8"):
        if library == "httpx":
            with httpx.Client(transport=agenttape.transport()) as client:
                response: Any = client.get(url)
            raw = dict(response.headers.raw)[b"content-disposition"]
            assert "café".encode() in raw
        else:
            with agenttape.requests_session() as session:
                response = session.get(url)
            assert "caf" in response.headers["content-disposition"]
        assert response.text == "ok"
