"""The replay fast paths and their caches give exactly what the plain code gives, and a
cache never serves an answer for a request, header set or redaction setting it was not
made for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llm_server import LLMServer

import agenttape
from agenttape import _fastjson
from agenttape.config import Config, RedactConfig
from agenttape.matchers import canonical_json
from agenttape.redaction import DEFAULT_DENYLIST, Redactor
from agenttape.transports import _http, llm

# -- the reference: build_request as it was before its caches ----------------------------


def _reference_secret(name: str, denylist: frozenset[str] | None) -> bool:
    if denylist is not None:
        return name.lower().replace("_", "-") in denylist
    return name.replace("_", "-") in {k.replace("_", "-") for k in DEFAULT_DENYLIST}


def reference_build(method: str, url: str, headers: list[tuple[str, str]], body: bytes,
                    denylist: frozenset[str] | None = None) -> dict[str, Any]:
    method = method.upper()
    scheme, netloc, path, pairs = _http._split_url(url)
    all_headers = _http._headers_dict(headers)
    content_type = all_headers.get("content-type", "")
    if content_type.lower().startswith("multipart/"):
        content_type, body = _http._fixed_multipart(content_type, body)
        all_headers["content-type"] = content_type
    pairs = [(k, v) for k, v in pairs if k.lower() not in _http._QUERY_SECRETS
             and not _reference_secret(k.lower(), denylist)]
    provider = llm.identify(netloc, path, ())
    if provider is not None:
        parsed: Any = None
        if body and content_type.split(";")[0].strip().lower() in ("application/json", ""):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        fields = {} if isinstance(parsed, dict) else _http.body_fields(body, content_type)
        _, request = llm.llm_request(
            provider, method=method, path=path, query=sorted(pairs, key=lambda p: p[0]),
            headers=all_headers, body=parsed, body_fields=fields)
        return request
    query = urlencode(sorted(pairs, key=lambda p: p[0]), quote_via=quote)
    from urllib.parse import urlunsplit

    kept = {
        name: value for name, value in sorted(all_headers.items())
        if name not in _http._TRANSPORT_HEADERS and name not in _http._IDENTITY_HEADERS
        and not name.startswith("x-stainless-") and not _reference_secret(name, denylist)
    }
    return {"method": method, "url": urlunsplit((scheme, netloc, path, query, "")),
            "headers": kept, **_http.body_fields(body, content_type)}


class _Session:
    """Just what build_request reads from a session."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.config = Config()


QUERY_TEXT = st.text(alphabet="aZ09_-.~=&+%#?/ é:@;!*", max_size=12)
NAMES = st.sampled_from(["a", "b", "q", "key", "Key", "api_key", "API-KEY", "sig", "token",
                         "x_y", "page", "a b", "é"])
PAIRS = st.lists(st.tuples(NAMES, st.text(alphabet="ab1 =&+%é-_.~", max_size=5)), max_size=4)
HOSTS = st.sampled_from(["http://example.com", "https://Example.COM:443", "http://h:8080",
                         "HTTP://h", "http://[::1]:80", "https://api.openai.com",
                         "http://u:p@h.io"])
PATHS = st.sampled_from(["", "/", "/echo", "/a/b;c", "/v1/chat/completions", "/p%20q"])


@st.composite
def urls(draw: st.DrawFn) -> str:
    base = draw(HOSTS) + draw(PATHS)
    style = draw(st.integers(0, 3))
    if style == 0:
        return base
    if style == 1:
        return base + "?" + draw(QUERY_TEXT)
    if style == 2:
        return base + "?" + "&".join(f"{k}={v}" for k, v in draw(PAIRS))
    return base + "?" + urlencode(draw(PAIRS)) + draw(st.sampled_from(["", "#frag", "&", "&&"]))


HEADER_NAMES = st.sampled_from(["accept", "Content-Type", "content-length", "X-Custom",
                                "authorization", "x_api_key", "user-agent", "x-stainless-os",
                                "openai-beta", "Cookie", "x-trace"])
HEADER_VALUES = st.sampled_from(["*/*", "application/json", "text/plain; charset=utf-8",
                                 "multipart/form-data; boundary=abc123", "12", "v1", "v2",
                                 "text/event-stream", ""])
HEADERS = st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=6)
BODIES = st.sampled_from([b"", b'{"model":"m","x":1}', b"[1, 2]", b"a=1&b=2", b"\xff\xfe",
                          b"plain text", b"--abc123\r\ncontent\r\n--abc123--"])
DENYLISTS = st.sampled_from([None, frozenset({"x-custom"}), frozenset({"x-trace", "q"})])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["GET", "post"]), urls(), HEADERS, BODIES, DENYLISTS,
       st.booleans())
def test_build_request_equals_the_reference(method: str, url: str,
                                            headers: list[tuple[str, str]], body: bytes,
                                            extra: frozenset[str] | None, keyed: bool) -> None:
    redactor = Redactor(denylist=sorted(extra)) if extra is not None else None
    denylist = redactor.denylist if redactor is not None else None
    try:
        expected = reference_build(method, url, headers, body, denylist)
    except ValueError:  # urlsplit refuses the URL: so must the fast path
        with pytest.raises(ValueError):
            _http.build_request(_Session(redactor) if redactor else None,
                                method, url, headers, body)
        return
    session: Any = _Session(redactor) if redactor is not None else None
    # Twice with a key (the second from the cache), and once handing the pairs directly.
    key = tuple(p for p in headers if p[0].lower() != "content-length") if keyed else None
    for _ in range(2):
        call = _http.build_request(session, method, url, lambda: list(headers), body,
                                   headers_key=key)
        assert call.request == expected
        assert canonical_json(call.request) == canonical_json(expected)
    assert _http.build_request(session, method, url, headers, body).request == expected


@settings(max_examples=300, deadline=None)
@given(urls())
def test_canonical_url_equals_urlsplit_and_urlencode(url: str) -> None:
    secrets = frozenset({"token"})
    try:
        scheme, netloc, path, pairs = _http._split_url(url)
    except ValueError:
        with pytest.raises(ValueError):
            _http._target(url, secrets)
        return
    kept = sorted([(k, v) for k, v in pairs if k.lower() not in _http._QUERY_SECRETS
                   and k.lower().replace("_", "-") not in secrets], key=lambda p: p[0])
    from urllib.parse import urlunsplit

    expected = urlunsplit((scheme, netloc, path, urlencode(kept, quote_via=quote), ""))
    assert _http._target(url, secrets) == (netloc, path, kept, expected)


# -- the engine's canonical JSON --------------------------------------------------------

JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=6), c,
                                                                  max_size=4)),
    max_leaves=25)


def _reference_json(value: Any, *, sort_keys: bool = True) -> str:
    """What the built-once C encoders (agenttape._fastjson) must reproduce."""
    return json.dumps(value, sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=False,
                      default=str)


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES)
def test_canonical_json_is_the_stdlib_text(value: Any) -> None:
    assert canonical_json(value) == _reference_json(value)
    assert _http._compact_json(value) == _reference_json(value, sort_keys=False)


def test_canonical_json_of_other_values() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    value = {"b": (1, 2), "a": Odd(), "c": {"z": float("inf"), "y": "é\n\"\\"}}
    assert canonical_json(value) == _reference_json(value)
    for text in ("plain", "é\n\"", ""):
        assert canonical_json(text) == _reference_json(text)
    with pytest.raises(TypeError):
        canonical_json({1: "a", "b": 2})
    with pytest.raises(TypeError, match="not JSON serializable"):
        _http._compact_json({"a": Odd()})


def _outcome(parse: Any, data: bytes) -> tuple[str, str]:
    try:
        return "value", repr(parse(data))
    except RecursionError:
        return "RecursionError", ""
    except ValueError as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES, st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32"]),
       st.sampled_from(["", " ", "\n", " x", "}", ",1"]), st.booleans())
def test_loads_is_json_loads(value: Any, encoding: str, tail: str, indent: bool) -> None:
    text = json.dumps(value, ensure_ascii=False, indent=1 if indent else None) + tail
    data = text.encode(encoding, "surrogatepass")
    assert _outcome(_fastjson.loads, data) == _outcome(json.loads, data)


@pytest.mark.parametrize("data", [
    b"{}", b"[]", b"  {}", b"1", b'"s"', b"{", b"[1,]", b'{"a":NaN}', b'{"a":1e400}',
    b'{"a":"\xed\xa0\x80"}', b'{"a":"\\ud800"}', b'{"a":"\xc3"}', b"\xff{", b"{\xff}",
    b"{\x00}", b"[\x00", b"{" * 3000 + b"}" * 3000, b"[" * 100_000 + b"]" * 100_000,
])
def test_loads_is_json_loads_on_edges(data: bytes) -> None:
    assert _outcome(_fastjson.loads, data) == _outcome(json.loads, data)


# -- the redaction check -------------------------------------------------------------------

@pytest.mark.parametrize(("text", "unchanged"), [
    ('{"q":"the highest light through the night"}', True),  # "gh" alone is no token
    ('{"q":"ghp_' + "a" * 30 + '"}', False),
    ('{"q":"gho_' + "a" * 30 + '"}', False),
    ('{"q":"github_pat_' + "a" * 30 + '"}', False),
    ('{"q":"sk-ant-' + "a" * 30 + '"}', False),
    ('{"url":"https://h/p?a=1&key=2"}', False),
    ('{"a":"x&key=1","url":"https://h/p?q=1"}', True),  # no query parameter named key
    ('{"url":"https://h/p?q=1","z":"?sig=3"}', False),
    ('{"url":"https://h/p"}', True),
])
def test_unchanged_json_refined_gates(text: str, unchanged: bool) -> None:
    redactor = Redactor()
    assert redactor.unchanged_json(text) is unchanged
    if unchanged:
        value = json.loads(text)
        assert redactor.redact(value) == value


# -- through the transport, against the loopback server ------------------------------------

def _config(**redact: Any) -> Config:
    return Config(cassette_dir=Path.cwd() / "cassettes", redact=RedactConfig(**redact))


def _recorded_headers(session: agenttape.Session) -> list[dict[str, Any]]:
    return [i.request["headers"] for i in agenttape.read_cassette(session.path).interactions]


def test_a_changed_header_is_never_served_from_the_cache(llm_server: LLMServer) -> None:
    with agenttape.use_cassette("h", mode="record", config=_config()) as session, \
            httpx.Client(transport=agenttape.transport()) as client:
        client.post(f"{llm_server.url}/echo", json={"n": 1}, headers={"x-flavour": "a"})
        client.post(f"{llm_server.url}/echo", json={"n": 22}, headers={"x-flavour": "a"})
        client.post(f"{llm_server.url}/echo", json={"n": 1}, headers={"x-flavour": "b"})
    flavours = [h.get("x-flavour") for h in _recorded_headers(session)]
    assert flavours == ["a", "a", "b"]
    llm_server.stop()
    with agenttape.use_cassette("h", mode="none", config=_config()), \
            httpx.Client(transport=agenttape.transport()) as client:
        # Same header set as a recorded one (cached), a body recorded with another set.
        with pytest.raises(agenttape.UnmatchedInteractionError):
            client.post(f"{llm_server.url}/echo", json={"n": 22}, headers={"x-flavour": "b"})
        assert client.post(f"{llm_server.url}/echo", json={"n": 22},
                           headers={"x-flavour": "a"}).json()["body"] == '{"n":22}'


def test_the_cache_follows_the_sessions_denylist(llm_server: LLMServer) -> None:
    headers = {"x-flavour": "plain-value-71", "accept": "application/json"}
    with agenttape.use_cassette("open", mode="record", config=_config()) as open_session, \
            httpx.Client(transport=agenttape.transport()) as client:
        client.get(f"{llm_server.url}/json?x=1", headers=headers)
    with agenttape.use_cassette("strict", mode="record",
                                config=_config(denylist=["x-flavour"])) as strict, \
            httpx.Client(transport=agenttape.transport()) as client:
        client.get(f"{llm_server.url}/json?x=1", headers=headers)
    assert _recorded_headers(open_session)[0]["x-flavour"] == "plain-value-71"
    assert "x-flavour" not in _recorded_headers(strict)[0]
    assert b"plain-value-71" not in strict.path.read_bytes()


def test_a_mutated_recording_does_not_change_later_requests(llm_server: LLMServer) -> None:
    # Without redaction the recorded request is the canonical one itself, not a copy.
    with agenttape.use_cassette("m", mode="record", config=_config(enabled=False)) as session, \
            httpx.Client(transport=agenttape.transport()) as client:
        client.get(f"{llm_server.url}/json?x=1", headers={"x-flavour": "a"})
        assert session.engine is not None
        # A hook or test editing what was recorded edits its own copy only.
        session.engine.timeline()[0].request["headers"]["x-flavour"] = "edited"
        session.engine.new_interactions()[0].request["headers"]["x-flavour"] = "edited"
        client.get(f"{llm_server.url}/json?x=2", headers={"x-flavour": "a"})
    assert [h["x-flavour"] for h in _recorded_headers(session)][1] == "a"


def test_a_mutated_replayed_response_does_not_change_the_next_replay(
        llm_server: LLMServer) -> None:
    with agenttape.use_cassette("r", mode="record", config=_config()), \
            httpx.Client(transport=agenttape.transport()) as client:
        client.get(f"{llm_server.url}/json?x=1")
    llm_server.stop()
    config = _config()
    config.allow_playback_repeats = True
    with agenttape.use_cassette("r", mode="none", config=config), \
            httpx.Client(transport=agenttape.transport()) as client:
        first = client.get(f"{llm_server.url}/json?x=1")
        first.headers["content-type"] = "text/x-mutated"
        first.headers["x-added"] = "1"
        second = client.get(f"{llm_server.url}/json?x=1")
    assert second.headers["content-type"] == "application/json"
    assert "x-added" not in second.headers
    assert second.content == first.content


def test_identical_requests_replay_in_recorded_order(llm_server: LLMServer) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    def ids() -> list[str]:
        with httpx.Client(transport=agenttape.transport()) as client:
            return [client.post(f"{llm_server.url}/v1/chat/completions", json=body).json()["id"]
                    for _ in range(3)]

    with agenttape.use_cassette("o", mode="record", config=_config()):
        recorded = ids()
    assert len(set(recorded)) == 3
    llm_server.stop()
    with agenttape.use_cassette("o", mode="none", config=_config()):
        assert ids() == recorded


def test_non_ascii_header_sets_match_by_their_text(llm_server: LLMServer) -> None:
    def get(client: httpx.Client, name: str) -> httpx.Response:
        return client.get(f"{llm_server.url}/json?x=1", headers={"x-name": name.encode()})

    with agenttape.use_cassette("u", mode="record", config=_config()) as session, \
            httpx.Client(transport=agenttape.transport()) as client:
        get(client, "Zoë")
    assert _recorded_headers(session)[0]["x-name"] == "Zoë"
    llm_server.stop()
    with agenttape.use_cassette("u", mode="none", config=_config()), \
            httpx.Client(transport=agenttape.transport()) as client:
        with pytest.raises(agenttape.UnmatchedInteractionError):
            get(client, "Zoé")
        assert get(client, "Zoë").status_code == 200


# -- recording: a response redaction provably leaves alone is stored without a copy ------

SHARED: dict[str, Any] = {"items": [1, 2], "note": "plain"}


@agenttape.tool
def shared_result(q: str) -> dict[str, Any]:
    return SHARED


def test_a_recorded_result_is_not_the_object_the_tool_returned() -> None:
    with agenttape.use_cassette("fresh", mode="record") as session:
        result = shared_result("a")
        result["items"].append(3)  # the caller's object, changed before the write
        result["note"] = "changed"
    SHARED.update(items=[1, 2], note="plain")
    stored = agenttape.read_cassette(session.path).interactions[0].response
    assert stored == {"items": [1, 2], "note": "plain"}


@agenttape.tool
def leaky_result(kind: str) -> dict[str, Any]:
    return {
        "email": {"contact": "ops@example.com"},
        "key": {"text": "key sk-test-SECRETabcdefghijklmnopqrstuvw"},
        "url": {"next": "https://bob:pa55word@example.com/x"},
        "query": {"next": "https://api.example.com/x?api_key=abc123"},
        "denylisted": {"password": "hunter2"},
    }[kind]


@pytest.mark.parametrize("kind", ["email", "key", "url", "query", "denylisted"])
def test_a_response_holding_a_secret_is_still_redacted(kind: str) -> None:
    with agenttape.use_cassette("leaky", mode="record") as session:
        leaky_result(kind)
    text = Path(session.path).read_text()
    for secret in ("ops@example.com", "sk-test-SECRET", "pa55word", "abc123", "hunter2"):
        assert secret not in text, (kind, text)
