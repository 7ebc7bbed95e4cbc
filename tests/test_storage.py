"""Cassette files on disk: round trips, hostile input, assets, the parse cache, paths."""

from __future__ import annotations

import base64
import contextlib
import enum
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agenttape import _storage
from agenttape._model import Cassette, Interaction, shallow_dict
from agenttape._storage import (
    assets_dir,
    cassette_path,
    derived_path,
    format_of,
    parse_cache_dir,
    read_cassette,
    write_cassette,
)
from agenttape.errors import (
    CassetteCorruptError,
    CassetteNotFoundError,
    ConfigError,
    SchemaVersionError,
)

FILE_SETTINGS = settings(
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.mktemp("parsed")
    monkeypatch.setenv("AGENTTAPE_CACHE_DIR", str(folder))
    monkeypatch.delenv("AGENTTAPE_NO_CACHE", raising=False)
    return folder


@contextlib.contextmanager
def libyaml(enabled: bool) -> Iterator[None]:
    """Run with libyaml's classes or PyYAML's pure-Python ones (a machine without libyaml)."""
    saved = _storage._USE_LIBYAML
    _storage._USE_LIBYAML = enabled
    try:
        yield
    finally:
        _storage._USE_LIBYAML = saved


BOTH_YAML_BACKENDS = pytest.mark.parametrize("use_libyaml", [True, False], ids=["libyaml", "pure"])


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tool_call(index: int, response: Any = None, **extra: Any) -> Interaction:
    return Interaction(
        index=index,
        kind="tool",
        boundary="lookup",
        request={"name": "lookup", "args": {"q": f"item {index}"}},
        response=response,
        **extra,
    )


def sample() -> Cassette:
    return Cassette(
        created_at="2025-01-02T03:04:05Z",
        run_id="run-1",
        meta={"agenttape_version": "0.1.0", "mode": "all"},
        interactions=[tool_call(0, {"ok": True}), tool_call(1, {"ok": False})],
    )


# --------------------------------------------------------------------------- round trips

text_st = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
# Strings built to hit YAML's special cases: indicators, resolver look-alikes, line breaks.
tricky_st = st.lists(
    st.sampled_from(
        ["yes", "No", "on", "null", "~", "1e3", "0x10", "0o17", "1_000", "2020-01-01", "12:30",
         ".inf", ".nan", "<<", "=", "!", "&a", "*a", "- ", ": ", "#", "'", '"', "\\", "\n", "\r",
         "\t", " ", "\x00", "\x85", "\u2028", "\ufeff", "é", "🎉", "|", ">", "%", "@", "`", "?"]
    ),
    max_size=6,
).map("".join)
leaf_st = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text_st
    | tricky_st
)
# `body_asset: "sha256:..."` is the one reserved shape (an asset reference); see the assets tests.
key_st = (text_st | tricky_st).filter(lambda key: key != "body_asset")
json_st = st.recursive(
    leaf_st,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(key_st, children, max_size=4),
    max_leaves=20,
)


@st.composite
def interactions_st(draw: st.DrawFn, index: int) -> Interaction:
    failed = draw(st.booleans())
    return Interaction(
        index=index,
        kind=draw(st.sampled_from(["llm", "tool", "retrieval", "memory_read", "memory_write",
                                   "http"])),
        boundary=draw(st.none() | text_st),
        request=draw(st.dictionaries(key_st, json_st, max_size=4)),
        response=None if failed else draw(json_st),
        error=(
            {"type": "ValueError", "module": "builtins", "message": draw(text_st | tricky_st)}
            if failed else None
        ),
        match_key=draw(st.just("") | st.text(max_size=10)),
        latency_ms=draw(st.none() | st.floats(0, 1e6) | st.integers(0, 10**6)),
        usage=draw(st.none() | st.dictionaries(text_st, st.integers(0, 10**6), max_size=3)),
        tags=draw(st.lists(text_st, max_size=3)),
        metadata=draw(st.dictionaries(key_st, json_st, max_size=3)),
    )


@st.composite
def cassettes_st(draw: st.DrawFn) -> Cassette:
    count = draw(st.integers(0, 4))
    return Cassette(
        created_at=draw(text_st | tricky_st),
        run_id=draw(text_st),
        meta=draw(st.dictionaries(key_st, json_st, max_size=3)),
        interactions=[draw(interactions_st(i)) for i in range(count)],
    )


@pytest.mark.parametrize(
    ("write_with_libyaml", "read_with_libyaml"),
    [(True, True), (False, False), (True, False), (False, True)],
)
@FILE_SETTINGS
@given(cassette=cassettes_st())
def test_yaml_round_trip_is_exact(
    write_with_libyaml: bool, read_with_libyaml: bool, tmp_path: Path, cassette: Cassette
) -> None:
    with libyaml(write_with_libyaml):
        path = write_cassette(cassette, tmp_path / "c.yaml")
    with libyaml(read_with_libyaml):
        assert read_cassette(path) == cassette


@FILE_SETTINGS
@given(cassette=cassettes_st())
def test_json_round_trip_is_exact(tmp_path: Path, cassette: Cassette) -> None:
    path = write_cassette(cassette, tmp_path / "c.json")
    assert read_cassette(path) == cassette


class _Colour(str, enum.Enum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize(("field", "value", "error", "message"), [
    ("response", {"a": [1, {"b": object()}]}, TypeError,
     r"object is not JSON-like .* at interactions\[0\]\.response\.a\[1\]\.b$"),
    ("request", {"k": {1: "x"}}, TypeError,
     r"mapping key 1 is not a string at interactions\[0\]\.request\.k$"),
    ("metadata", {"m": [1, float("nan")]}, ValueError,
     r"nan is not a finite number at interactions\[0\]\.metadata\.m\[1\]$"),
    ("response", [{"ok": [None, {"deep": [float("inf")]}]}], ValueError,
     r"inf is not a finite number at interactions\[0\]\.response\[0\]\.ok\[1\]\.deep\[0\]$"),
])
def test_a_value_that_is_not_json_is_named_and_nothing_is_written(
    tmp_path: Path, field: str, value: Any, error: type[Exception], message: str
) -> None:
    path = write_cassette(Cassette(), tmp_path / "c.yaml")
    before = path.read_bytes()
    fields: dict[str, Any] = {"request": {"q": 1}, field: value}
    cassette = Cassette(interactions=[Interaction(index=0, kind="tool", **fields)])
    with pytest.raises(error, match=message):
        write_cassette(cassette, path)
    assert path.read_bytes() == before


def test_str_and_int_subclasses_are_written_as_their_plain_values(tmp_path: Path) -> None:
    cassette = Cassette(interactions=[Interaction(
        index=0, kind="tool", request={_Colour.RED: [_Level.HIGH, _Colour.RED, True, 1.5]},
        response={"level": _Level.HIGH})])
    loaded = read_cassette(write_cassette(cassette, tmp_path / "c.yaml"))
    assert loaded.interactions[0].request == {"red": [3, "red", True, 1.5]}
    assert type(next(iter(loaded.interactions[0].request))) is str
    assert type(loaded.interactions[0].response["level"]) is int


@given(cassette=cassettes_st())
def test_the_writers_shallow_dict_is_to_dict_without_copies(cassette: Cassette) -> None:
    # The writer starts from shallow_dict (it copies every value itself afterwards): same
    # keys in the same order as the public to_dict(), the same values, none copied.
    deep, shallow = cassette.to_dict(), shallow_dict(cassette)
    assert shallow == deep
    assert list(shallow) == list(deep)
    assert shallow["meta"] is cassette.meta
    for item, plain, inter in zip(shallow["interactions"], deep["interactions"],
                                  cassette.interactions, strict=True):
        assert list(item) == list(plain)
        assert item["request"] is inter.request
        if "metadata" in item:
            assert item["metadata"] is inter.metadata


@BOTH_YAML_BACKENDS
def test_emoji_and_other_astral_characters_stay_readable(use_libyaml: bool, tmp_path: Path) -> None:
    # libyaml alone would write "\U0001F389" and give up the `|` block for the whole answer.
    cassette = Cassette(interactions=[tool_call(0, {"answer": "Done 🎉\nNext: 𝛑 ≈ 3.14\n"})])
    with libyaml(use_libyaml):
        path = write_cassette(cassette, tmp_path / "c.yaml")
    assert "    answer: |\n      Done 🎉\n      Next: 𝛑 ≈ 3.14\n" in path.read_text("utf-8")
    assert read_cassette(path) == cassette


@pytest.mark.parametrize(
    "value",
    ["yes", "no", "on", "off", "y", "n", "true", "False", "null", "Null", "~", "", " ", "1e3",
     "1.5", "0x10", "0o17", "017", "0b101", "1_000", "12:30:00", "+1", "-0", ".inf", "-.inf",
     ".nan", "2020-01-01", "2001-12-14t21:59:43.10-05:00", "<<", "=", "!", "!!str", "&a", "*a",
     "- x", "? x", ": x", "#x", "x #y", "a: b", "[1]", "{a: 1}", "'", '"', "\\", "%TAG", "@x",
     "`x", "|", ">", "trailing ", " leading", "tab\tinside", "cr\rinside", "nul\x00inside",
     "nel\x85inside", "ls\u2028inside", "\ufeffbom", "emoji 🎉", "line\n", "\n", "\n\n",
     "  indented\nblock", "trailing \nspace", "crlf\r\nline", "x\n\n\n"],
)
@BOTH_YAML_BACKENDS
def test_yaml_look_alike_strings_stay_strings(
    use_libyaml: bool, tmp_path: Path, value: str
) -> None:
    cassette = Cassette(
        created_at=value,
        meta={value: value, "list": [value]},
        interactions=[tool_call(0, {value: [value, {"k": value}]})],
    )
    with libyaml(use_libyaml):
        assert read_cassette(write_cassette(cassette, tmp_path / "c.yaml")) == cassette


@pytest.mark.parametrize("value", [0.1, 1e16, 1e-05, -0.0, 5e-324, 1.7976931348623157e308, 10**30,
                                   -(10**30), True, False, None])
def test_numbers_keep_their_type_and_value(tmp_path: Path, value: Any) -> None:
    cassette = Cassette(interactions=[tool_call(0, [value])])
    for name in ("c.yaml", "c.json"):
        back = read_cassette(write_cassette(cassette, tmp_path / name)).interactions[0].response
        assert back == [value] and type(back[0]) is type(value)


def test_yaml_output_is_readable(tmp_path: Path) -> None:
    cassette = Cassette(
        created_at="2025-01-02T03:04:05Z",
        run_id="r1",
        meta={"mode": "all"},
        interactions=[
            Interaction(
                index=0,
                kind="llm",
                boundary="openai",
                request={"endpoint": "chat.completions", "model": "gpt-4o",
                         "messages": [{"role": "user", "content": "Hi"}]},
                response={"choices": [{"message": {"content": "Hello!\nHow can I help?\n"}}]},
                latency_ms=12.5,
            )
        ],
    )
    text = write_cassette(cassette, tmp_path / "c.yaml").read_text("utf-8")
    assert text == textwrap.dedent(
        """\
        version: '1'
        created_at: '2025-01-02T03:04:05Z'
        run_id: r1
        meta:
          mode: all
        interactions:
        - index: 0
          kind: llm
          boundary: openai
          request:
            endpoint: chat.completions
            model: gpt-4o
            messages:
            - role: user
              content: Hi
          response:
            choices:
            - message:
                content: |
                  Hello!
                  How can I help?
          latency_ms: 12.5
        """
    )


def test_json_output_is_indented_utf8_with_trailing_newline(tmp_path: Path) -> None:
    cassette = Cassette(interactions=[tool_call(0, {"text": "héllo 🎉"})])
    text = write_cassette(cassette, tmp_path / "c.json").read_text("utf-8")
    assert text.endswith("}\n")
    assert '"text": "héllo 🎉"' in text
    assert text.startswith('{\n  "version": "1",\n')


def test_error_interaction_omits_response(tmp_path: Path) -> None:
    failed = Interaction(index=0, kind="tool", request={"name": "f", "args": {}},
                         error={"type": "ValueError", "module": "builtins", "message": "bad"})
    path = write_cassette(Cassette(interactions=[failed]), tmp_path / "c.yaml")
    text = path.read_text("utf-8")
    assert "error:" in text and "response" not in text
    assert read_cassette(path) == Cassette(interactions=[failed])


def test_unquoted_timestamps_stay_strings(tmp_path: Path) -> None:
    path = tmp_path / "hand.yaml"
    path.write_text(
        "version: '1'\ncreated_at: 2024-01-01T10:00:00Z\ninteractions:\n"
        "- index: 0\n  kind: tool\n  request: {day: 2024-01-01, eq: =}\n  response: null\n"
    )
    cassette = read_cassette(path)
    assert cassette.created_at == "2024-01-01T10:00:00Z"
    assert cassette.interactions[0].request == {"day": "2024-01-01", "eq": "="}
    # Only our loader changed: PyYAML's own classes still build dates.
    assert yaml.safe_load("d: 2024-01-01")["d"].__class__.__name__ == "date"


# The loader builds data from nodes itself; it must agree with PyYAML's own safe loading
# (with the same resolvers) on every document it accepts.
class _Reference(yaml.SafeLoader):
    pass


_Reference.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in entries if tag not in _storage._READER_DROPS]
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@pytest.mark.parametrize(
    "document",
    [
        "a: 1\nb: [1, 2.5, -3, 0x1F, 0o17, 017, 1_000, 1:30, 0b11, .5, 1:30.5, -0.0]\n",
        "a: {x: yes, y: No, z: ~, w: null, v: ''}\n",
        "- !!str 123\n- !!int '7'\n- !!float '1'\n- !!bool 'true'\n- !!null ''\n",
        "a: &s text\nb: *s\n",
        "? long key\n: value\n'quoted: key': \"esc\\t\\u00e9\"\n",
        "text: |\n  line 1\n   line 2\nfolded: >\n  a\n  b\n\n  c\nkeep: |+\n  x\n\n",
        "- [a, {b: c}, [d]]\n- {}\n- []\n",
        "a: 1\na: 2\n",
        "plain multi\n  line\n",
        "--- 5\n...\n",
    ],
)
@BOTH_YAML_BACKENDS
def test_loader_matches_pyyaml_safe_load(use_libyaml: bool, document: str) -> None:
    with libyaml(use_libyaml):
        ours = _storage._parse_yaml(document, Path("doc.yaml"))
    assert ours == yaml.load(document, Loader=_Reference)


@settings(max_examples=150, deadline=None)
@given(value=json_st, style=st.sampled_from([None, '"', "'"]), flow=st.booleans())
def test_loader_matches_pyyaml_on_generated_documents(
    value: Any, style: str | None, flow: bool
) -> None:
    document = yaml.safe_dump(value, default_style=style, default_flow_style=flow,
                              allow_unicode=True)
    ours = _storage._parse_yaml(document, Path("doc.yaml"))
    assert ours == yaml.load(document, Loader=_Reference)


# --------------------------------------------------------------------------- bad input


def corrupt(path: Path) -> CassetteCorruptError:
    """Read ``path`` expecting CassetteCorruptError; check speed and that the file is intact."""
    before = sha(path)
    started = time.perf_counter()
    with pytest.raises(CassetteCorruptError) as info:
        read_cassette(path)
    assert time.perf_counter() - started < 1.0
    assert sha(path) == before
    assert str(path) in str(info.value)
    return info.value


def write_bytes(tmp_path: Path, data: bytes | str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(CassetteNotFoundError) as info:
        read_cassette(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value)


def test_garbage_yaml_names_line(tmp_path: Path) -> None:
    error = corrupt(write_bytes(tmp_path, "version: '1'\ninteractions:\n  - {index: 0, kind: [\n"))
    assert error.line == 4
    assert f"{tmp_path / 'bad.yaml'}:4:" in str(error)


def test_empty_file_is_corrupt(tmp_path: Path) -> None:
    assert "empty" in corrupt(write_bytes(tmp_path, "\n  \n")).reason


def test_truncated_file(tmp_path: Path) -> None:
    cassette = Cassette(interactions=[tool_call(i, {"text": "a\tb " * 20}) for i in range(5)])
    path = write_cassette(cassette, tmp_path / "c.yaml")
    data = path.read_bytes()
    cut = data.index(b"a\\tb", len(data) // 2)  # inside a double-quoted string
    path.write_bytes(data[:cut])
    error = corrupt(path)
    assert error.line == data[:cut].count(b"\n") + 1


def test_truncated_json(tmp_path: Path) -> None:
    path = write_cassette(sample(), tmp_path / "c.json")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert corrupt(path).line is not None


def test_non_utf8_bytes_name_line_and_column(tmp_path: Path) -> None:
    error = corrupt(write_bytes(tmp_path, b"version: '1'\nrun_id: ab\xffcd\n"))
    assert (error.line, error.column) == (2, 11)
    assert "UTF-8" in error.reason and "0xff" in error.reason


def test_control_character_names_line(tmp_path: Path) -> None:
    error = corrupt(write_bytes(tmp_path, "version: '1'\nrun_id: a\x01b\n"))
    assert (error.line, error.column) == (2, 10)


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@BOTH_YAML_BACKENDS
def test_billion_laughs_is_rejected_fast(use_libyaml: bool, tmp_path: Path) -> None:
    with libyaml(use_libyaml):
        error = corrupt(write_bytes(tmp_path, BILLION_LAUGHS))
    assert "alias" in error.reason
    assert error.line == 2


@BOTH_YAML_BACKENDS
def test_self_referencing_alias_is_rejected(use_libyaml: bool, tmp_path: Path) -> None:
    with libyaml(use_libyaml):
        assert "alias" in corrupt(write_bytes(tmp_path, "meta: &m {x: *m}\n")).reason


def test_merge_keys_are_rejected(tmp_path: Path) -> None:
    # Merges expand inside PyYAML before any later check could see them.
    error = corrupt(write_bytes(tmp_path, "meta:\n  base: {a: 1}\n  x:\n    <<: {b: 2}\n"))
    assert "merge" in error.reason and error.line == 4


@BOTH_YAML_BACKENDS
def test_python_tags_never_run(use_libyaml: bool, tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    text = (
        "version: '1'\n"
        f"run_id: !!python/object/apply:os.mkdir [{str(target)!r}]\n"
        f"meta: !!python/object/apply:os.system [\"echo hi > {target}\"]\n"
    )
    modules_before = set(sys.modules)
    with libyaml(use_libyaml):
        error = corrupt(write_bytes(tmp_path, text))
    assert not target.exists()
    assert error.line == 2 and "!!python/object/apply:os.mkdir" in error.reason
    assert set(sys.modules) == modules_before


@pytest.mark.parametrize(
    ("tag_text", "shown"),
    [
        ("!!binary aGVsbG8=", "!!binary"),
        ("!!set {a, b}", "!!set"),
        ("!!omap [a: 1]", "!!omap"),
        ("!!timestamp 2020-01-01", "!!timestamp"),
        ("!foo bar", "!foo"),
        ("!!python/name:os.system", "!!python/name:os.system"),
        ("!!str {a: 1}", "!!str"),
    ],
)
def test_non_json_tags_are_rejected(tmp_path: Path, tag_text: str, shown: str) -> None:
    error = corrupt(write_bytes(tmp_path, f"version: '1'\nmeta:\n  x: {tag_text}\n"))
    assert shown in error.reason and error.line == 3


def test_globally_registered_tags_do_not_leak_in(tmp_path: Path) -> None:
    # Some libraries register constructors on yaml.SafeLoader for the whole process.
    class Marker:
        pass

    loader_cls = yaml.SafeLoader
    saved = dict(loader_cls.yaml_constructors)
    yaml.add_constructor("!marker", lambda loader, node: Marker(), Loader=loader_cls)
    try:
        assert isinstance(yaml.safe_load("x: !marker y")["x"], Marker)
        corrupt(write_bytes(tmp_path, "meta:\n  x: !marker y\n"))
    finally:
        loader_cls.yaml_constructors = saved


@pytest.mark.parametrize(
    "text", ["meta: {x: .nan}\n", "meta: {x: -.inf}\n", "meta: {x: 1.0e+999}\n"]
)
def test_non_finite_yaml_numbers_are_rejected(tmp_path: Path, text: str) -> None:
    assert corrupt(write_bytes(tmp_path, text)).line == 1


@pytest.mark.parametrize("key", ["1", "yes", "null", "[a]", "{a: 1}"])
def test_non_string_keys_are_rejected(tmp_path: Path, key: str) -> None:
    error = corrupt(write_bytes(tmp_path, f"meta:\n  ok: 1\n  ? {key}\n  : v\n"))
    assert "keys must be strings" in error.reason and error.line == 3


def test_wrong_index_type_names_interaction_and_field(tmp_path: Path) -> None:
    text = (
        "version: '1'\ninteractions:\n"
        "- {index: 0, kind: tool, request: {}}\n"
        "- {index: 'x', kind: tool, request: {}}\n"
    )
    error = corrupt(write_bytes(tmp_path, text))
    assert (error.index, error.field) == (1, "index")
    assert "interaction 1" in str(error) and "'index'" in str(error)


def test_unknown_kind_names_interaction_and_field(tmp_path: Path) -> None:
    error = corrupt(write_bytes(tmp_path, "interactions:\n- {index: 0, kind: nope, request: {}}\n"))
    assert (error.index, error.field) == (0, "kind")
    assert "nope" in str(error)


def test_unsupported_version(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "version: '99'\ninteractions: []\n")
    before = sha(path)
    with pytest.raises(SchemaVersionError) as info:
        read_cassette(path)
    assert info.value.found == "99" and info.value.supported == ("1",)
    assert "'99'" in str(info.value) and "'1'" in str(info.value) and str(path) in str(info.value)
    assert sha(path) == before


@pytest.mark.parametrize(("token", "column"), [("NaN", 40), ("-Infinity", 40), ("1e999", 40)])
def test_json_non_finite_numbers_are_rejected(tmp_path: Path, token: str, column: int) -> None:
    text = '{"version": "1",\n "meta": {"x": [1, ' + token + "]}}\n"
    path = write_bytes(tmp_path, text.replace("[1, ", "[1, " + " " * 20), "bad.json")
    error = corrupt(path)
    assert (error.line, error.column) == (2, column)
    assert token in error.reason


@pytest.mark.parametrize("name", ["deep.yaml", "deep.json"])
@BOTH_YAML_BACKENDS
def test_absurd_nesting_is_corrupt(use_libyaml: bool, tmp_path: Path, name: str) -> None:
    with libyaml(use_libyaml):
        corrupt(write_bytes(tmp_path, "[" * 100_000, name))
        corrupt(write_bytes(tmp_path, "[" * 100_000 + "]" * 100_000, name))
        corrupt(write_bytes(tmp_path, '{"a": ' * 100_000, name))
        if name.endswith(".yaml"):
            corrupt(write_bytes(tmp_path, "- " * 100_000 + "x", name))
            corrupt(write_bytes(tmp_path, "".join(" " * i + "a:\n" for i in range(3000)), name))


@pytest.mark.parametrize("name", ["c.yaml", "c.json"])
def test_utf8_bom_is_accepted(tmp_path: Path, name: str) -> None:
    path = write_cassette(sample(), tmp_path / name)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_cassette(path) == sample()


def test_directory_is_corrupt_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(CassetteCorruptError, match="directory"):
        read_cassette(tmp_path / "dir.yaml")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert "mapping" in corrupt(write_bytes(tmp_path, "- 1\n- 2\n")).reason


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
       name=st.sampled_from(["f.yaml", "f.json"]))
@example(data=b"interactions: [{index: 0, kind: tool, request: {a: !!int x}}]", name="f.yaml")
@example(data=b"meta: {x: !!bool maybe}", name="f.yaml")
@example(data=b'{"meta": {"x": 1' + b"1" * 5000 + b"}}", name="f.json")
def test_arbitrary_bytes_raise_only_cassette_errors(tmp_path: Path, data: bytes, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with contextlib.suppress(CassetteCorruptError, SchemaVersionError):
        read_cassette(path)
    assert path.read_bytes() == data


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(st.sampled_from(["version", "created_at", "run_id", "meta",
                                             "interactions", "other"]), json_st)
       | st.builds(lambda i: {"interactions": [i]},
                   st.dictionaries(st.sampled_from(["index", "kind", "request", "response",
                                                    "error", "tags", "usage", "latency_ms",
                                                    "boundary", "metadata", "match_key"]),
                                   json_st)))
def test_wrong_shapes_raise_only_cassette_errors(tmp_path: Path, data: dict[str, Any]) -> None:
    path = tmp_path / "f.json"
    path.write_text(json.dumps(data))
    with contextlib.suppress(CassetteCorruptError, SchemaVersionError):
        read_cassette(path)


# --------------------------------------------------------------------------- assets

BIG = bytes(range(256)) * 40  # 10240 bytes, over the default 4096 threshold
BIG_B64 = base64.b64encode(BIG).decode("ascii")
BIG_SHA = hashlib.sha256(BIG).hexdigest()


def http_call(index: int, body_b64: str) -> Interaction:
    return Interaction(
        index=index,
        kind="http",
        boundary="example.com",
        request={"method": "GET", "url": "https://example.com/img", "headers": {}},
        response={"status_code": 200, "headers": {"content-type": "image/png"},
                  "body_b64": body_b64},
    )


@pytest.mark.parametrize("name", ["c.yaml", "c.json"])
def test_big_binary_goes_to_sidecar_and_comes_back(tmp_path: Path, name: str) -> None:
    cassette = Cassette(interactions=[http_call(0, BIG_B64)])
    path = write_cassette(cassette, tmp_path / name)
    asset = tmp_path / "c.assets" / f"{BIG_SHA}.bin"
    assert asset.read_bytes() == BIG
    text = path.read_text("utf-8")
    assert BIG_B64 not in text and f"sha256:{BIG_SHA}" in text
    assert text.index("status_code") < text.index("body_asset")  # keeps the key's position
    assert read_cassette(path) == cassette


def test_small_or_non_canonical_binary_stays_inline(tmp_path: Path) -> None:
    small = base64.b64encode(b"x" * 4096).decode()
    wrapped = base64.encodebytes(BIG).decode()  # base64 with newlines: not rebuildable exactly
    cassette = Cassette(interactions=[http_call(0, small), http_call(1, wrapped)])
    path = write_cassette(cassette, tmp_path / "c.yaml")
    assert not assets_dir(path).exists()
    assert read_cassette(path) == cassette


def test_threshold_is_configurable(tmp_path: Path) -> None:
    small = base64.b64encode(b"tiny").decode()
    path = write_cassette(Cassette(interactions=[http_call(0, small)]), tmp_path / "c.yaml",
                          assets_threshold_bytes=3)
    assert len(list(assets_dir(path).iterdir())) == 1
    assert read_cassette(path).interactions[0].response["body_b64"] == small


@pytest.mark.parametrize("threshold", [-1, True, 1.5])
def test_threshold_must_be_a_non_negative_int(tmp_path: Path, threshold: Any) -> None:
    with pytest.raises(ValueError, match="assets_threshold_bytes"):
        write_cassette(sample(), tmp_path / "c.yaml", assets_threshold_bytes=threshold)
    assert not (tmp_path / "c.yaml").exists()


def test_tampered_asset_is_corrupt(tmp_path: Path) -> None:
    path = write_cassette(Cassette(interactions=[tool_call(0), http_call(1, BIG_B64)]),
                          tmp_path / "c.yaml")
    asset = assets_dir(path) / f"{BIG_SHA}.bin"
    asset.write_bytes(b"evil" + BIG[4:])
    error = corrupt(path)
    assert (error.index, error.field) == (1, "response.body_asset")
    assert "sha256" in error.reason


def test_missing_asset_is_corrupt(tmp_path: Path) -> None:
    path = write_cassette(Cassette(interactions=[http_call(0, BIG_B64)]), tmp_path / "c.yaml")
    (assets_dir(path) / f"{BIG_SHA}.bin").unlink()
    error = corrupt(path)
    assert (error.index, error.field) == (0, "response.body_asset")


@pytest.mark.parametrize("ref", ["sha256:../../etc/passwd", f"sha256:{BIG_SHA.upper()}",
                                 f"sha256:{BIG_SHA}0", "sha256:"])
def test_asset_references_are_validated(tmp_path: Path, ref: str) -> None:
    text = (
        "interactions:\n- index: 0\n  kind: http\n  request: {}\n"
        f"  response:\n    body_asset: {ref!r}\n"
    )
    error = corrupt(write_bytes(tmp_path, text))
    assert (error.index, error.field) == (0, "response.body_asset")


def test_tampered_asset_is_repaired_by_rewriting(tmp_path: Path) -> None:
    cassette = Cassette(interactions=[http_call(0, BIG_B64)])
    path = write_cassette(cassette, tmp_path / "c.yaml")
    (assets_dir(path) / f"{BIG_SHA}.bin").write_bytes(b"broken")
    write_cassette(cassette, path)
    assert read_cassette(path) == cassette


def test_unreferenced_assets_are_removed(tmp_path: Path) -> None:
    other = bytes(reversed(BIG))
    path = write_cassette(
        Cassette(interactions=[http_call(0, BIG_B64),
                               http_call(1, base64.b64encode(other).decode())]),
        tmp_path / "c.yaml",
    )
    folder = assets_dir(path)
    (folder / "notes.txt").write_text("not ours")
    assert len(list(folder.glob("*.bin"))) == 2
    write_cassette(Cassette(interactions=[http_call(0, BIG_B64)]), path)
    assert sorted(p.name for p in folder.iterdir()) == [f"{BIG_SHA}.bin", "notes.txt"]
    (folder / "notes.txt").unlink()
    write_cassette(Cassette(interactions=[tool_call(0)]), path)
    assert not folder.exists()


def test_assets_of_a_sibling_format_survive(tmp_path: Path) -> None:
    cassette = Cassette(interactions=[http_call(0, BIG_B64)])
    write_cassette(cassette, tmp_path / "c.json")
    write_cassette(Cassette(interactions=[tool_call(0)]), tmp_path / "c.yaml")
    assert read_cassette(tmp_path / "c.json") == cassette


def test_only_reference_shaped_body_asset_is_reserved(tmp_path: Path) -> None:
    plain = Cassette(interactions=[tool_call(0, {"body_asset": "md5:x", "body_b64": BIG_B64,
                                                 "more": {"body_asset": 7}})])
    path = write_cassette(plain, tmp_path / "c.yaml")
    assert not assets_dir(path).exists()  # moving body_b64 would clash with the key present
    assert read_cassette(path) == plain
    with pytest.raises(ValueError, match=r"body_asset.*interactions\[0\]\.response\.x"):
        write_cassette(Cassette(interactions=[tool_call(0, {"x": {"body_asset": "sha256:a"}})]),
                       path)
    assert read_cassette(path) == plain


# --------------------------------------------------------------------------- parse cache


def big_cassette(n: int = 400, note: str = "") -> Cassette:
    return Cassette(
        run_id=note,
        interactions=[tool_call(i, {"rows": [{"id": i, "text": "x" * 100}]}) for i in range(n)],
    )


def cache_entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json"))


def test_big_yaml_is_served_from_cache(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cassette = big_cassette()
    path = write_cassette(cassette, tmp_path / "big.yaml")
    assert path.stat().st_size > 64 * 1024
    assert read_cassette(path) == cassette
    (entry,) = cache_entries(cache_dir)
    assert entry.name.startswith(sha(path))

    def no_parsing(text: str, p: Path) -> Any:
        raise AssertionError("the YAML parser ran although the cache holds this file")

    monkeypatch.setattr(_storage, "_parse_yaml", no_parsing)
    assert read_cassette(path) == cassette

    # What the cache holds is what a load returns: the entry really is the source.
    payload = json.loads(entry.read_bytes())
    payload["data"]["run_id"] = "from-cache"
    entry.write_text(json.dumps(payload))
    assert read_cassette(path).run_id == "from-cache"


def test_broken_cache_entry_is_ignored_and_replaced(tmp_path: Path, cache_dir: Path) -> None:
    cassette = big_cassette()
    path = write_cassette(cassette, tmp_path / "big.yaml")
    read_cassette(path)
    (entry,) = cache_entries(cache_dir)
    for junk in (b"", b'{"format": 1, "sha', b"[1]", b'{"format": 99, "data": {}}', b"\xff"):
        entry.write_bytes(junk)
        assert read_cassette(path) == cassette
        assert json.loads(entry.read_bytes())["data"]["run_id"] == cassette.run_id


def test_changed_file_misses_the_cache(tmp_path: Path, cache_dir: Path) -> None:
    path = write_cassette(big_cassette(note="one"), tmp_path / "big.yaml")
    assert read_cassette(path).run_id == "one"
    path.write_bytes(path.read_bytes().replace(b"run_id: one", b"run_id: two"))
    assert read_cassette(path).run_id == "two"
    assert len(cache_entries(cache_dir)) == 2


def test_small_and_json_files_are_not_cached(tmp_path: Path, cache_dir: Path) -> None:
    read_cassette(write_cassette(sample(), tmp_path / "small.yaml"))
    read_cassette(write_cassette(big_cassette(), tmp_path / "big.json"))
    assert cache_entries(cache_dir) == []


def test_cache_can_be_turned_off(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTTAPE_NO_CACHE", "1")
    assert parse_cache_dir() is None
    read_cassette(write_cassette(big_cassette(), tmp_path / "big.yaml"))
    assert cache_entries(cache_dir) == []


def test_unwritable_cache_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the write (which stores the entry too) nor the reads fail."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("AGENTTAPE_CACHE_DIR", str(blocker / "parsed"))
    cassette = big_cassette()
    path = write_cassette(cassette, tmp_path / "big.yaml")
    assert read_cassette(path) == cassette
    assert read_cassette(path) == cassette


def test_rejected_file_is_never_cached(tmp_path: Path, cache_dir: Path) -> None:
    path = write_bytes(tmp_path, BILLION_LAUGHS + "# padding\n" * 8000)
    assert path.stat().st_size > 64 * 1024
    corrupt(path)
    assert cache_entries(cache_dir) == []


def test_cache_folder_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AGENTTAPE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert parse_cache_dir() == tmp_path / "xdg" / "agenttape" / "parsed"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/is/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert parse_cache_dir() == tmp_path / "home" / ".cache" / "agenttape" / "parsed"
    monkeypatch.setenv("AGENTTAPE_CACHE_DIR", str(tmp_path / "mine"))
    assert parse_cache_dir() == tmp_path / "mine"
    monkeypatch.setenv("AGENTTAPE_NO_CACHE", "0")
    assert parse_cache_dir() == tmp_path / "mine"


def test_cache_is_pruned_oldest_first(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_storage, "_CACHE_MAX_TOTAL_BYTES", 1)
    first = write_cassette(big_cassette(note="a"), tmp_path / "a.yaml")
    read_cassette(first)
    second = write_cassette(big_cassette(note="b"), tmp_path / "b.yaml")
    read_cassette(second)
    (entry,) = cache_entries(cache_dir)
    assert entry.name.startswith(sha(second))


# --------------------------------------------------------------------------- writing


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("response", "error", "where"),
    [
        ({"when": object()}, TypeError, r"interactions\[0\]\.response\.when"),
        ([1, float("nan")], ValueError, r"interactions\[0\]\.response\[1\]"),
        ({1: "int key"}, TypeError, r"interactions\[0\]\.response"),
        ({"t": {1, 2}}, TypeError, r"interactions\[0\]\.response\.t"),
    ],
)
@pytest.mark.parametrize("name", ["c.yaml", "c.json"])
def test_failed_write_keeps_old_file(
    tmp_path: Path, name: str, response: Any, error: type[Exception], where: str
) -> None:
    path = write_cassette(sample(), tmp_path / name)
    before = path.read_bytes()
    with pytest.raises(error, match=where):
        write_cassette(Cassette(interactions=[tool_call(0, response)]), path)
    assert path.read_bytes() == before
    assert no_temp_files(tmp_path)


def test_self_containing_data_fails_cleanly(tmp_path: Path) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        write_cassette(Cassette(interactions=[tool_call(0, loop)]), tmp_path / "c.yaml")
    assert not (tmp_path / "c.yaml").exists()


def test_crash_during_replace_removes_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_cassette(sample(), tmp_path / "c.yaml")
    before = path.read_bytes()

    def broken_replace(src: str, dst: Any) -> None:
        assert Path(src).exists() and Path(src).parent == tmp_path
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_cassette(big_cassette(10), path)
    assert path.read_bytes() == before
    assert no_temp_files(tmp_path)


def test_write_creates_folders_and_returns_path(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.yaml"
    assert write_cassette(sample(), str(target)) == target
    assert read_cassette(target) == sample()


def test_unknown_suffix_cannot_be_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.yaml, \.yml or \.json"):
        write_cassette(sample(), tmp_path / "c.txt")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_written_file_follows_umask_not_mkstemp(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_cassette(sample(), tmp_path / "c.yaml")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_str_subclasses_and_enums_are_written_as_plain_values(tmp_path: Path) -> None:
    import enum

    class Color(str, enum.Enum):
        RED = "red"

    class Level(enum.IntEnum):
        HIGH = 3

    cassette = Cassette(interactions=[tool_call(0, {"c": Color.RED, "l": Level.HIGH})])
    for name in ("c.yaml", "c.json"):
        back = read_cassette(write_cassette(cassette, tmp_path / name)).interactions[0].response
        assert back == {"c": "red", "l": 3}
        assert type(back["c"]) is str and type(back["l"]) is int


WRITER = """
import sys
from agenttape._model import Cassette, Interaction, shallow_dict
from agenttape._storage import write_cassette
tag, path = sys.argv[1], sys.argv[2]
cassette = Cassette(run_id=tag, interactions=[
    Interaction(index=i, kind="tool", request={"name": tag, "args": {"i": i}}, response="r" * 500)
    for i in range(200)])
for _ in range(25):
    write_cassette(cassette, path)
"""


def test_concurrent_writers_leave_one_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    root = Path(_storage.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, tag, str(path)], env=env)
        for tag in ("A", "B")
    ]
    seen: set[str] = set()
    while any(w.poll() is None for w in writers):
        if path.exists():
            cassette = read_cassette(path)  # never a torn or interleaved file
            assert len(cassette.interactions) == 200
            seen.add(cassette.run_id)
    assert [w.returncode for w in writers] == [0, 0]
    assert read_cassette(path).run_id in {"A", "B"}
    assert seen and seen <= {"A", "B"}  # reads did overlap the writes
    assert no_temp_files(tmp_path)


def test_reading_never_imports_yaml_at_module_level() -> None:
    code = "import sys, agenttape._storage; sys.exit('yaml' in sys.modules)"
    root = Path(_storage.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, "-c", code], env=env, check=False)
    assert result.returncode == 0


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("checkout", "yaml", "tapes/checkout.yaml"),
        ("checkout", "json", "tapes/checkout.json"),
        ("suite/test_a", "yaml", "tapes/suite/test_a.yaml"),
        ("./suite/./x", "yaml", "tapes/suite/x.yaml"),
        ("x.yml", "json", "tapes/x.yml"),
        ("x.JSON", "yaml", "tapes/x.JSON"),
        ("x.json", "yaml", "tapes/x.json"),
        ("v1.2", "yaml", "tapes/v1.2.yaml"),
        ('test_x[a<b>:"c"|d?*]', "yaml", "tapes/test_x[a_b___c__d__].yaml"),
        ("tab\there\x00", "yaml", "tapes/tab_here_.yaml"),
        ("back\\slash" if os.name != "nt" else "back_slash", "yaml", "tapes/back_slash.yaml"),
        ("dots.. /x", "yaml", "tapes/dots___/x.yaml"),
        ("name.", "yaml", "tapes/name_.yaml"),
        ("CON", "yaml", "tapes/_CON.yaml"),
        ("sub/nul.txt", "yaml", "tapes/sub/_nul.txt.yaml"),
        ("console", "yaml", "tapes/console.yaml"),
    ],
)
def test_cassette_path(name: str, fmt: str, expected: str) -> None:
    assert cassette_path(name, "tapes", fmt) == Path(expected)


def test_cassette_path_accepts_paths_and_absolute_names(tmp_path: Path) -> None:
    assert cassette_path(Path("a") / "b", tmp_path) == tmp_path / "a" / "b.yaml"
    outside = tmp_path / "elsewhere" / "x"
    assert cassette_path(outside, "tapes") == outside.with_name("x.yaml")
    assert cassette_path(str(outside) + ".json", "tapes") == outside.with_name("x.json")


@pytest.mark.parametrize("name", ["../x", "a/../../x", "a/../b", ".."])
def test_cassette_path_refuses_to_leave_the_folder(name: str) -> None:
    with pytest.raises(ConfigError, match="would leave the cassette folder") as info:
        cassette_path(name, "tapes")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("name", "fmt"), [("", "yaml"), (".", "yaml"), ("x", "toml")])
def test_cassette_path_rejects_empty_names_and_unknown_formats(name: str, fmt: str) -> None:
    with pytest.raises(ConfigError):
        cassette_path(name, "tapes", fmt)


def test_sibling_paths() -> None:
    assert derived_path(Path("t/shop.yaml")) == Path("t/shop.derived.yaml")
    assert derived_path("t/shop.json") == Path("t/shop.derived.json")
    assert assets_dir("t/shop.yaml") == Path("t/shop.assets")
    assert assets_dir(Path("t/shop.derived.yaml")) == Path("t/shop.derived.assets")


@pytest.mark.parametrize(("name", "fmt"), [("a.yaml", "yaml"), ("a.YML", "yaml"),
                                           ("a.json", "json"), (Path("d/a.b.json"), "json")])
def test_format_of(name: str | Path, fmt: str) -> None:
    assert format_of(name) == fmt


def test_format_of_unknown_suffix() -> None:
    with pytest.raises(ConfigError, match="cannot tell the cassette format"):
        format_of("a.txt")


def test_other_suffixes_are_read_as_yaml(tmp_path: Path) -> None:
    path = write_cassette(sample(), tmp_path / "c.yaml")
    renamed = path.rename(tmp_path / "c.tape")
    assert read_cassette(renamed) == sample()

