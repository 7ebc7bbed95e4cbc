"""The fast cassette YAML writer (agenttape._yaml_emit) against PyYAML, and the parse-cache
entry that writing a cassette leaves behind.

The writer must produce exactly the bytes the PyYAML dump produces, or give up (return
None) so that PyYAML writes the document. These tests compare the two on generated trees
full of YAML's special cases, on the repository's cassettes and on real recordings, and
check that what is written always reads back as the data it came from.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from llm_server import LLMServer

import agenttape
from agenttape import _storage, _yaml_emit
from agenttape._model import Cassette, Interaction
from agenttape._storage import read_cassette, write_cassette
from agenttape.config import Config

REPO = Path(__file__).resolve().parent.parent
RESOLVERS = _storage._yaml_dumper_class().yaml_implicit_resolvers
LIBYAML_DUMPER = _storage._yaml_classes(True)[1]
PURE_DUMPER = _storage._yaml_classes(False)[1]


def fast(data: Any) -> bytes | None:
    return _yaml_emit.dump(data, RESOLVERS, libyaml=True)


def reference(data: Any) -> bytes | Exception:
    """What agenttape wrote before the fast writer existed (libyaml, then the pure-Python
    emitter when libyaml escaped an astral character), or the error it raised."""
    try:
        return _storage._dump_yaml_pyyaml(data)
    except Exception as exc:  # e.g. a lone surrogate: libyaml cannot encode it
        return exc


def load(blob: bytes) -> Any:
    return _storage._parse_yaml(blob.decode("utf-8"), Path("generated.yaml"))


def same(a: Any, b: Any) -> bool:
    """Equal with exact types (True is not 1, 1 is not 1.0) and float signs (-0.0)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is float:
        return struct.pack("<d", a) == struct.pack("<d", b)
    return bool(a == b)


def has_astral(data: Any) -> bool:
    if type(data) is str:
        return any(ord(c) > 0xFFFF for c in data)
    if type(data) is dict:
        return any(has_astral(k) or has_astral(v) for k, v in data.items())
    if type(data) is list:
        return any(has_astral(v) for v in data)
    return False


def check(data: Any) -> bytes | None:
    """The writer's contract on one tree; returns its output (None when it gave up)."""
    out = fast(data)
    want = reference(data)
    if out is None:
        # What PyYAML writes instead must read back as the data too: writing a cassette
        # caches that data as the file's parse.
        if isinstance(want, bytes):
            assert same(load(want), data)
        return None
    assert not isinstance(want, Exception), f"PyYAML raised {want!r}; the fast writer did not"
    assert out == want
    # Where libyaml is missing (or disabled), PyYAML's pure-Python emitter is the reference.
    assert _yaml_emit.dump(data, RESOLVERS, libyaml=False) == _storage._yaml_dump(data, PURE_DUMPER)
    # Stronger than the contract: each style is what both emitters choose, so the output
    # does not depend on which of them the reference happened to use. Only the `...` that
    # may follow a `|+` block differs between them.
    body = out.removesuffix(b"...\n")
    assert body == _storage._yaml_dump(data, PURE_DUMPER).removesuffix(b"...\n")
    if not has_astral(data):
        assert body == _storage._yaml_dump(data, LIBYAML_DUMPER).removesuffix(b"...\n")
    assert same(load(out), data)
    return out


# --------------------------------------------------------------------------- strategies

# Lone surrogates ("\ud800") are included on purpose: libyaml cannot encode them and the
# write must keep failing as it did.
NASTY = [
    "", " ", "  ", ":", ": ", " :", "::", "a:b", "a: b", "a:", "#", " #", "a#b", "a #b", "- ",
    "-", "--", "---", "...", "..", "?", "? ", "?x", ":x", "-x", "- x", "'", "''", '"', "\\",
    "\\U", "\\U0001F600", "\n", "\n\n", " \n", "\n ", "\t", "\r", "\r\n", "\x0b", "\x0c",
    "yes", "no", "Yes", "NO", "on", "Off", "y", "n", "true", "False", "TRUE", "null", "Null",
    "~", "1e3", "1.0e+3", "1e+3", "0x1F", "0o17", "017", "0b101", "1_000", "1:20", "190:20:30",
    "+1", "-1", "1.5", "-.5", ".5", "1.", ".inf", "-.Inf", ".NaN", "2026-01-01",
    "2026-01-01 10:00:00", "2026-1-1T1:00:00Z", "<<", "=", "!", "!!str", "&a", "*a", "|",
    "|-", ">", "%", "@", "`", "[", "]", "{", "}", ",", "{a: 1}", "[1, 2]", "a", "word",
    "x y", "é", "ü", "中文", "\xa0", "🎉", "\U0001F600", "\U00010000", "\U0010fffe",
    "\U0010ffff", "\x85", "\u2028", "\u2029", "\ufeff", "\ufffe", "\uffff", "\ufffd", "\x00",
    "\x07", "\x1b", "\x7f", "\x80", "\x9f", "\ud7ff", "\ue000", "\ud800",
]
nasty_st = st.sampled_from(NASTY)
any_text_st = st.text(st.characters(), max_size=30)
text_st = st.one_of(
    nasty_st,
    st.lists(nasty_st, max_size=6).map("".join),
    st.lists(nasty_st | any_text_st, max_size=4).map("".join),
    any_text_st,
    st.text(st.characters(codec="ascii"), max_size=30),
    st.text(st.sampled_from(" \n:#-'\"ab"), max_size=20),
    # Very long strings, and long keys around the two emitters' simple-key limits.
    st.tuples(st.integers(90, 140), nasty_st).map(lambda t: "k" * t[0] + t[1]),
    st.tuples(st.integers(1, 3000), st.sampled_from(["x", "y: ", "ab\n", "é "])).map(
        lambda t: t[1] * t[0]
    ),
)
leaf_st = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**40), 10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e16, 1e17, 1e-5, 5e-324, 1.7976931348623157e308, 0.1, 1.5]),
    text_st,
)
tree_st = st.recursive(
    leaf_st,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(text_st, children, max_size=4),
    max_leaves=25,
)
document_st = st.one_of(
    st.dictionaries(text_st, tree_st, max_size=6),
    st.lists(tree_st, max_size=4),
)


def tuned(examples: int) -> Any:
    return settings(
        deadline=None,
        max_examples=examples,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


# --------------------------------------------------------------------------- the writer


@tuned(3000)
@given(text_st)
@example("it's")
@example("keep\n\n")
@example("\n")
@example(" indented\nnext")
@example("trailing \nspace")
@example("emoji 🎉\nline")
@example("C:\\Users\\x")
def test_every_string_is_written_as_pyyaml_writes_it(value: str) -> None:
    # As a value, in a list, at the end of the document and as a key.
    check({"v": value})
    check({"v": value, "after": 1})
    check([value, [value], {"k": value}])
    check({"outer": {"inner": [value]}})
    check({value: 1})


@tuned(1500)
@given(document_st)
@example({"kept": "\n", "after": 1})  # `...` after a `|+` block that is not last: libyaml
@example({"kept": "a\n\n", "after": "C:\\Users"})  # ...but not once it re-dumps
@example({"kept": "a\n\n", "after": ["🎉"]})
@example({"kept": "a\n\n", "then": "b\n"})  # a later block scalar closes it
@example([{"a": "x\n\n"}])
def test_documents_are_written_as_pyyaml_writes_them(data: Any) -> None:
    check(data)


@tuned(1000)
@given(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)))
def test_numbers_are_written_as_pyyaml_writes_them(value: Any) -> None:
    assert check({"n": value, "l": [value]}) is not None


@pytest.mark.parametrize(
    "data",
    [
        {"x": float("nan")},  # not JSON; PyYAML writes .nan
        {"x": float("inf")},
        {1: "int key"},
        {"x": (1, 2)},
        {"": "empty key"},  # a `? ''` complex key
        {"k" * 130: 1},
        {"a\nb": 1},
        {"tab\tkey": 1},
        {"x": "\ud800"},  # lone surrogate: PyYAML raises, and still must
        {"x": 10**5000},  # past Python's int-to-str limit: PyYAML raises, and still must
        "bare scalar document",
    ],
)
def test_falls_back_to_pyyaml_for_what_it_cannot_vouch_for(data: Any) -> None:
    assert fast(data) is None
    if isinstance(reference(data), bytes):
        assert _storage._dump_yaml(data) == reference(data)


def test_common_text_is_not_left_to_pyyaml() -> None:
    # The cases cassettes are full of must take the fast path, or it saves nothing.
    data = {
        "text": "Hello, world: it's 10:30 #1",
        "prompt": "You are helpful.\nAnswer briefly.\n",
        "code": "def f(x):\n\treturn x  \n",
        "crlf": "a\r\nb",
        "emoji": "🎉 done\nnext line",
        "look_alikes": ["yes", "null", "1e3", "0x1F", "2026-01-01", "~", "", " padded "],
        "numbers": [0, -1, 10**30, 1.5, -0.0, 1e17, True, None],
        "empty": {"list": [], "map": {}},
    }
    assert check(data) is not None


def test_repository_cassettes_are_rewritten_byte_for_byte() -> None:
    files = sorted((REPO / "cassettes").rglob("*.yaml"))
    assert files
    for path in files:
        data = load(path.read_bytes())
        assert fast(data) == path.read_bytes(), path
        assert check(data) is not None


def test_recorded_sessions_are_written_byte_for_byte(llm_server: LLMServer, tmp_path: Path) -> None:
    config = Config(cassette_dir=tmp_path, llm_hosts=[f"127.0.0.1:{llm_server.port}"])
    base, api = llm_server.url, llm_server.url + "/v1"
    chat = {"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are terse.\nAnswer in one line."},
        {"role": "user", "content": "What's 2+2? Reply: 'four' 🎉"},
    ]}
    with agenttape.use_cassette("session", mode="record", config=config) as session, \
            httpx.Client(transport=agenttape.transport()) as client:
        client.get(f"{base}/json?b=2&a=1")
        client.post(f"{base}/echo", json={"q": "hello\nworld", "n": [1, 2.5, None, True]})
        client.post(f"{base}/echo", data={"field": "value: yes"})
        client.get(f"{base}/text")
        client.get(f"{base}/gzip")
        client.get(f"{base}/binary?size=10000")
        client.get(f"{base}/status/404")
        client.post(f"{api}/chat/completions", json=chat)
        with client.stream("POST", f"{api}/chat/completions", json={**chat, "stream": True}) as r:
            r.read()
        client.post(f"{api}/messages", json={
            "model": "claude-3-5-haiku", "max_tokens": 64,
            "messages": [{"role": "user", "content": "Hi  there\n\n"}],
        })
        client.post(f"{api}/embeddings", json={"model": "text-embedding-3-small",
                                              "input": ["a", "b"]})
    (path,) = [p for p in session.written if p.suffix == ".yaml"]
    blob = path.read_bytes()
    data = load(blob)
    assert fast(data) == blob
    assert reference(data) == blob
    assert check(data) is not None


# --------------------------------------------------------------------------- cache at write

BIG = bytes(range(256)) * 40  # 10 KiB: goes to an asset


def big_cassette(note: str = "", with_asset: bool = False) -> Cassette:
    interactions = [
        Interaction(index=i, kind="tool", boundary="lookup",
                    request={"name": "lookup", "args": {"q": f"item {i}: yes"}},
                    response={"rows": [{"id": i, "text": "x\n" * 50, "score": i / 7}]})
        for i in range(400)
    ]
    if with_asset:
        interactions.append(Interaction(
            index=400, kind="http", boundary="example.com",
            request={"method": "GET", "url": "https://example.com/img", "headers": {}},
            response={"status_code": 200, "headers": {"content-type": "image/png"},
                      "body_b64": base64.b64encode(BIG).decode()},
        ))
    return Cassette(run_id=note, interactions=interactions)


def cache_entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json"))


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "parse-cache"
    monkeypatch.setenv("AGENTTAPE_CACHE_DIR", str(folder))
    monkeypatch.delenv("AGENTTAPE_NO_CACHE", raising=False)
    return folder


@pytest.mark.parametrize("with_asset", [False, True], ids=["inline", "asset"])
def test_writing_stores_the_cache_entry_a_load_would_store(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, with_asset: bool
) -> None:
    cassette = big_cassette(with_asset=with_asset)
    path = write_cassette(cassette, tmp_path / "big.yaml")
    blob = path.read_bytes()
    assert len(blob) > _storage._CACHE_MIN_BYTES
    assert (b"body_asset" in blob) is with_asset

    (entry,) = cache_entries(cache_dir)
    assert entry.name.startswith(hashlib.sha256(blob).hexdigest())
    payload = json.loads(entry.read_bytes())
    # Exactly what parsing the file gives, asset references unresolved (as a load caches).
    assert same(payload["data"], load(blob))
    stamp = entry.stat().st_mtime_ns

    cached = read_cassette(path)
    monkeypatch.setenv("AGENTTAPE_NO_CACHE", "1")
    parsed = read_cassette(path)
    assert cached == parsed == cassette
    assert same(cached.to_dict(), parsed.to_dict())
    if with_asset:
        assert parsed.interactions[-1].response["body_b64"] == base64.b64encode(BIG).decode()
    # The load used the entry as it was (a load that misses rewrites it).
    assert cache_entries(cache_dir) == [entry]
    assert json.loads(entry.read_bytes()) == payload
    assert entry.stat().st_mtime_ns >= stamp


@tuned(40)
@given(st.dictionaries(text_st, tree_st, max_size=4))
def test_cache_written_with_generated_data_equals_a_fresh_parse(
    tmp_path_factory: pytest.TempPathFactory, metadata: dict[str, Any]
) -> None:
    folder = tmp_path_factory.mktemp("gen")
    cassette = big_cassette()
    cassette.interactions[0].metadata = metadata
    try:
        path = write_cassette(cassette, folder / "big.yaml")
    except (ValueError, TypeError, UnicodeEncodeError):
        return  # data a cassette cannot hold (e.g. a lone surrogate): nothing is written
    blob = path.read_bytes()
    entry = _storage._cache_entry(blob)
    assert entry is not None
    assert same(json.loads(entry.read_bytes())["data"], load(blob))


def test_small_and_json_cassettes_leave_no_entry(tmp_path: Path, cache_dir: Path) -> None:
    write_cassette(Cassette(run_id="small"), tmp_path / "small.yaml")
    write_cassette(big_cassette(), tmp_path / "big.json")
    assert cache_entries(cache_dir) == []


def test_no_cache_setting_is_respected_when_writing(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTTAPE_NO_CACHE", "1")
    write_cassette(big_cassette(), tmp_path / "big.yaml")
    assert not cache_dir.exists()


def test_rewriting_a_cassette_caches_the_new_content(tmp_path: Path, cache_dir: Path) -> None:
    path = write_cassette(big_cassette(note="one"), tmp_path / "big.yaml")
    write_cassette(big_cassette(note="two"), path)
    assert read_cassette(path).run_id == "two"
    names = [e.name.split(".", 1)[0] for e in cache_entries(cache_dir)]
    assert hashlib.sha256(path.read_bytes()).hexdigest() in names


def test_same_is_strict() -> None:
    assert not same(1, True) and not same(1, 1.0) and not same(0.0, -0.0)
    assert not same({"a": 1, "b": 2}, {"b": 2, "a": 1})
    assert same({"a": [1.5, None, "x"]}, {"a": [1.5, None, "x"]})
    assert math.copysign(1, load(fast({"z": -0.0}) or b"")["z"]) == -1


def test_a_recording_session_leaves_the_entry_its_first_replay_uses(
    tmp_path: Path, cache_dir: Path
) -> None:
    @agenttape.tool
    def forecast(city: str, day: int) -> dict[str, Any]:
        return {"city": city, "day": day, "summary": f"Mild in {city}.\nLight wind: west."}

    with agenttape.use_cassette("tools", mode="record", cassette_dir=tmp_path) as session:
        for i in range(400):
            forecast(f"city-{i}", i)
    (path,) = session.written
    blob = path.read_bytes()
    assert len(blob) > _storage._CACHE_MIN_BYTES
    (entry,) = cache_entries(cache_dir)
    assert entry.name.startswith(hashlib.sha256(blob).hexdigest())
    assert same(json.loads(entry.read_bytes())["data"], load(blob))
    with agenttape.use_cassette("tools", mode="none", cassette_dir=tmp_path):
        assert forecast("city-7", 7)["summary"] == "Mild in city-7.\nLight wind: west."
    assert cache_entries(cache_dir) == [entry]
