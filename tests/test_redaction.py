from __future__ import annotations

import copy
import re
import types
import warnings
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agenttape.redaction import (
    DEFAULT_DENYLIST,
    DEFAULT_PLACEHOLDER,
    DENYLISTED_KEY,
    DENYLISTED_QUERY_PARAM,
    URL_PASSWORD,
    Redactor,
)

P = DEFAULT_PLACEHOLDER

OPENAI = "sk-" + "A1b2C3d4E5f6G7h8I9j0" * 2 + "T3BlbkFJ"
OPENAI_PROJ = "sk-proj-" + "Ab_9-xYz" * 8
ANTHROPIC = "sk-ant-api03-" + "Zx9_Yw8-" * 10 + "AA"
SLACK = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"
GITHUB = "ghp_" + "a1B2c3D4e5" * 3 + "F6g7H8"
GITHUB_PAT = "github_pat_11ABCDEFG0" + "abc_DEF_123" * 6
AWS = "AKIAIOSFODNN7EXAMPLE"
GOOGLE = "AIzaSyD-" + "k" * 20 + "_1234567890"  # AIza + 35
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
    "aFDrBz9vFqU4yB2o1U2VJx3bKjTgYcFmY6y3ZPN1Q==\n"
    "-----END RSA PRIVATE KEY-----"
)
EMAIL = "jane.doe+agents@example.co.uk"

assert len(GOOGLE) == 39


@pytest.fixture
def r() -> Redactor:
    return Redactor()


# -- patterns inside strings -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("openai_api_key", OPENAI),
        ("openai_api_key", OPENAI_PROJ),
        ("anthropic_api_key", ANTHROPIC),
        ("slack_token", SLACK),
        ("github_token", GITHUB),
        ("github_token", GITHUB_PAT),
        ("aws_access_key_id", AWS),
        ("google_api_key", GOOGLE),
        ("private_key", PEM),
        ("email", EMAIL),
    ],
)
def test_pattern_inside_longer_string_replaces_only_the_secret(
    r: Redactor, name: str, secret: str
) -> None:
    text = f"config: {secret}, then the rest.\nSecond line stays."
    assert r.redact_text(text) == f"config: {P}, then the rest.\nSecond line stays."
    assert r.find_secrets(text) == [("", name)]
    assert r.find_secrets(r.redact_text(text)) == []


def test_bearer_keeps_the_scheme_word(r: Redactor) -> None:
    text = f"curl -H 'Authorization: Bearer {JWT}' https://api.example.com"
    assert r.redact_text(text) == f"curl -H 'Authorization: Bearer {P}' https://api.example.com"
    assert ("", "bearer_token") in r.find_secrets(text)


def test_bearer_wrapping_a_provider_key_is_removed(r: Redactor) -> None:
    assert r.redact_text(f"Bearer {OPENAI}") == f"Bearer {P}"


def test_unterminated_private_key_is_redacted_to_the_end(r: Redactor) -> None:
    truncated = "log: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    assert r.redact_text(truncated) == f"log: {P}"


def test_several_secrets_in_one_string(r: Redactor) -> None:
    text = f"{AWS} and {GOOGLE} and {EMAIL}"
    assert r.redact_text(text) == f"{P} and {P} and {P}"


@pytest.mark.parametrize(
    "text",
    [
        "the task-force met the risk-assessment team",
        "ask-me-anything-about-the-weather-today",  # sk- glued to a word
        "mask-" + "a" * 30,
        "sk-short",
        "the bearer of responsibilities and obligations",
        "bearer responsibilities",  # 16 letters: long enough, but a word, not a token
        "Bearer bonds are a kind of security",
        "use the xox pattern",
        "ghost_writer and gh_pages",
        "AKIA is not a key without sixteen more",
        "AKIAIOSFODNN7EXAMPLEX",  # 21 characters: not an access key id
        "max_tokens=512 total_tokens",
        "email me at jane at example dot com",
        "decorators like @pytest.mark.parametrize and npm pkg@1.2.3",
    ],
)
def test_ordinary_text_survives(r: Redactor, text: str) -> None:
    assert r.redact_text(text) == text
    assert r.find_secrets(text) == []


def test_custom_placeholder(r: Redactor) -> None:
    custom = Redactor(placeholder="<secret>")
    assert custom.redact_text(f"key={OPENAI}") == "key=<secret>"
    assert custom.redact({"api_key": "x"}) == {"api_key": "<secret>"}
    assert custom.find_secrets({"api_key": "<secret>"}) == []
    # The default placeholder is just text to a redactor using another one.
    assert custom.find_secrets({"api_key": P}) == [("api_key", DENYLISTED_KEY)]


def test_empty_placeholder_is_rejected() -> None:
    with pytest.raises(ValueError, match="placeholder must be a non-empty string"):
        Redactor(placeholder="")


def test_emails_on_and_off() -> None:
    text = f"contact {EMAIL} please"
    assert Redactor().redact_text(text) == f"contact {P} please"
    off = Redactor(redact_emails=False)
    assert off.redact_text(text) == text
    assert off.find_secrets(text) == []
    # Turning e-mails off leaves the other patterns on.
    assert off.redact_text(f"{EMAIL} {AWS}") == f"{EMAIL} {P}"


# -- keys ------------------------------------------------------------------------------


def test_denylisted_keys_at_any_depth_in_dicts_and_lists(r: Redactor) -> None:
    data = {
        "request": {
            "headers": {"Authorization": "Bearer abc", "accept": "application/json"},
            "json": {
                "items": [
                    {"name": "a", "password": "hunter2"},
                    [{"client_secret": {"nested": "dict", "n": 1}}],
                ],
                "token": ["a", "list"],
            },
        }
    }
    assert r.redact(data) == {
        "request": {
            "headers": {"Authorization": P, "accept": "application/json"},
            "json": {
                "items": [{"name": "a", "password": P}, [{"client_secret": P}]],
                "token": P,
            },
        }
    }


@pytest.mark.parametrize(
    "key",
    [
        "AUTHORIZATION",
        "X-API-KEY",
        "x_api_key",
        "X_Goog_Api_Key",
        "Set-Cookie",
        "API_KEY",
        "ApiKey",
        "Proxy-Authorization",
        "Access-Token",
        "REFRESH_TOKEN",
    ],
)
def test_key_matching_ignores_case_and_dash_underscore(r: Redactor, key: str) -> None:
    assert r.redact({key: "v"}) == {key: P}
    assert r.is_denylisted(key)


def test_every_default_key_is_denylisted(r: Redactor) -> None:
    redacted = r.redact({k: "value" for k in DEFAULT_DENYLIST})
    assert set(redacted.values()) == {P}


def test_usage_counts_and_similar_keys_are_untouched(r: Redactor) -> None:
    data = {
        "max_tokens": 512,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "total_tokens": 15,
            "prompt_tokens": 10,
            "completion_tokens": 5,
        },
        "tokens": 3,
        "token_count": 7,
        "secret_santa": "yes",
        "passwords_checked": 2,
        "key": "color",
    }
    assert r.redact(data) == data


def test_user_denylist_is_added_to_the_defaults() -> None:
    red = Redactor(denylist=["X-Internal-Auth", "session_id"])
    assert red.redact(
        {"x_internal_auth": "a", "SESSION-ID": "b", "authorization": "c", "other": "d"}
    ) == {"x_internal_auth": P, "SESSION-ID": P, "authorization": P, "other": "d"}


def test_secret_used_as_a_key_is_redacted_without_losing_entries(r: Redactor) -> None:
    data = {"alice@example.com": 1, "bob@example.com": 2, "carol": 3}
    assert r.redact(data) == {P: 1, f"{P}#2": 2, "carol": 3}
    assert r.redact(r.redact(data)) == r.redact(data)


def test_non_string_scalars_untouched_and_tuples_become_lists(r: Redactor) -> None:
    data = {"a": 1, "b": 2.5, "c": True, "d": None, "e": (1, "x"), 3: "int key"}
    assert r.redact(data) == {"a": 1, "b": 2.5, "c": True, "d": None, "e": [1, "x"], 3: "int key"}


def test_redact_never_mutates_and_shares_no_container(r: Redactor) -> None:
    data: dict[str, Any] = {
        "headers": {"authorization": "Bearer x"},
        "messages": [{"content": f"my key is {OPENAI}"}],
        "clean": {"list": [1, 2]},
    }
    before = copy.deepcopy(data)
    out = r.redact(data)
    assert data == before
    assert out["clean"] == data["clean"]
    assert out["clean"] is not data["clean"]
    assert out["clean"]["list"] is not data["clean"]["list"]
    out["clean"]["list"].append(3)
    assert data == before


def test_redact_headers(r: Redactor) -> None:
    headers = {
        "Authorization": f"Bearer {OPENAI}",
        "x-api-key": ANTHROPIC,
        "X-Trace": f"from {EMAIL}",
        "content-type": "application/json",
    }
    assert r.redact_headers(headers) == {
        "Authorization": P,
        "x-api-key": P,
        "X-Trace": f"from {P}",
        "content-type": "application/json",
    }


# -- URLs ------------------------------------------------------------------------------


def test_google_key_query_param_keeps_order_and_stays_parseable(r: Redactor) -> None:
    url = f"https://generativelanguage.googleapis.com/v1/models:gen?key={GOOGLE}&q=x&alt=sse"
    out = r.redact_url(url)
    assert out == f"https://generativelanguage.googleapis.com/v1/models:gen?key={P}&q=x&alt=sse"
    assert parse_qsl(urlsplit(out).query) == [("key", P), ("q", "x"), ("alt", "sse")]


def test_url_userinfo_password(r: Redactor) -> None:
    assert r.redact_url("https://user:pa55w0rd@db.example.com:5432/x") == (
        f"https://user:{P}@db.example.com:5432/x"
    )
    assert r.find_secrets("https://user:pa55w0rd@db.example.com/") == [("", URL_PASSWORD)]
    # An empty password has nothing to hide and is kept as written.
    assert r.redact_url("https://user:@db.example.com/") == "https://user:@db.example.com/"
    # Without a password the host is not mistaken for an e-mail domain.
    assert r.redact_url("https://user@db.example.com/x") == "https://user@db.example.com/x"


def test_url_denylisted_params_case_insensitive_and_encoded_placeholder() -> None:
    red = Redactor(placeholder="[gone & away]")
    out = red.redact_url("https://h.example/p?Access_Token=abc&page=2&SIG=zz#frag")
    assert parse_qsl(urlsplit(out).query) == [
        ("Access_Token", "[gone & away]"),
        ("page", "2"),
        ("SIG", "[gone & away]"),
    ]
    assert out.endswith("#frag")
    assert red.redact_url(out) == out


def test_url_patterns_in_path_and_values(r: Redactor) -> None:
    url = f"https://hooks.example.com/services/{SLACK}/x?email=a.b%40example.com&n=1"
    assert r.redact_url(url) == f"https://hooks.example.com/services/{P}/x?email={P}&n=1"


def test_clean_url_is_returned_exactly(r: Redactor) -> None:
    for url in [
        "https://api.openai.com/v1/chat/completions",
        "http://h/?b=%2F&a=1+2&flag",
        "https://h/path?",
        "https://[::1",
    ]:
        assert r.redact_url(url) == url


def test_url_strings_inside_structures(r: Redactor) -> None:
    data = {"url": "https://h.example/v1?token=abc&q=x"}
    assert r.redact(data) == {"url": f"https://h.example/v1?token={P}&q=x"}
    assert r.find_secrets(data) == [("url", DENYLISTED_QUERY_PARAM)]
    assert r.find_secrets(r.redact(data)) == []


# -- user regexes ----------------------------------------------------------------------


def test_user_regexes_replace_matches() -> None:
    red = Redactor(regexes=[r"acct-\d{6}", r"(?i)internal-[a-z]+"])
    assert red.redact_text("ids acct-123456 and INTERNAL-Thing ok") == f"ids {P} and {P} ok"
    assert red.find_secrets("acct-123456") == [("", r"regex:acct-\d{6}")]


def test_invalid_user_regex_warns_once_and_is_ignored() -> None:
    with pytest.warns(UserWarning) as record:
        red = Redactor(regexes=["valid-\\d+", "bad[regex"])
    assert len(record) == 1
    message = str(record[0].message)
    assert "'bad[regex'" in message
    assert "unterminated character set" in message
    assert red.regexes == ("valid-\\d+",)
    assert red.redact_text("valid-42 bad[regex") == f"{P} bad[regex"


def test_user_regex_cannot_eat_the_placeholder_or_loop() -> None:
    # Both would break idempotence: "[A-Z]+" matches inside "***REDACTED***" and "x*"
    # matches the empty string everywhere.
    red = Redactor(regexes=["[A-Z]{3,}", "x*"])
    once = red.redact_text(f"ABC then {OPENAI} xx")
    assert once == f"{P} then {P} {P}"
    assert red.redact_text(once) == once


# -- find_secrets ----------------------------------------------------------------------


def test_find_secrets_paths() -> None:
    r = Redactor()
    cassette = {
        "interactions": [
            {"request": {}},
            {"request": {}},
            {"request": {}},
            {
                "request": {
                    "headers": {"authorization": "Bearer live", "x-api-key": P},
                    "messages": [{"content": f"use {OPENAI}"}, {"content": "hi"}],
                    "url": f"https://h/?key={GOOGLE}",
                    "cookie": None,
                },
                "response": {"json": {"text": f"mail {EMAIL}", "password": ""}},
            },
        ]
    }
    assert r.find_secrets(cassette) == [
        ("interactions[3].request.headers.authorization", DENYLISTED_KEY),
        ("interactions[3].request.messages[0].content", "openai_api_key"),
        ("interactions[3].request.url", DENYLISTED_QUERY_PARAM),
        ("interactions[3].response.json.text", "email"),
    ]
    assert r.find_secrets(r.redact(cassette)) == []


def test_find_secrets_never_prints_a_secret_key(r: Redactor) -> None:
    found = r.find_secrets({"contacts": {EMAIL: "x"}})
    assert found == [(f"contacts.{P}", "email")]


def test_find_secrets_flags_structures_under_denylisted_keys(r: Redactor) -> None:
    assert r.find_secrets({"secret": {"a": 1}}) == [("secret", DENYLISTED_KEY)]
    assert r.find_secrets({"secret": False, "token": P}) == []


def test_disabled_is_identity_but_validation_still_works() -> None:
    off = Redactor(enabled=False)
    data = {"authorization": "Bearer x", "text": OPENAI}
    assert off.redact(data) is data
    assert off.redact_text(OPENAI) == OPENAI
    assert off.redact_url(f"https://h/?key={GOOGLE}") == f"https://h/?key={GOOGLE}"
    assert off.redact_headers({"Authorization": "x"}) == {"Authorization": "x"}
    assert off.find_secrets(data) == [("authorization", DENYLISTED_KEY), ("text", "openai_api_key")]


# -- construction ----------------------------------------------------------------------


def test_from_config_reads_attributes() -> None:
    cfg = types.SimpleNamespace(
        enabled=True,
        denylist=["x-mine"],
        regexes=["zz\\d+"],
        redact_emails=False,
        placeholder="[R]",
    )
    red = Redactor.from_config(cfg)
    assert red.redact({"X-Mine": "v", "t": f"zz12 {EMAIL}"}) == {
        "X-Mine": "[R]",
        "t": f"[R] {EMAIL}",
    }
    assert not Redactor.from_config(
        types.SimpleNamespace(
            enabled=False, denylist=[], regexes=[], redact_emails=True, placeholder=P
        )
    ).enabled
    assert Redactor.from_config(None).redact({"token": "t"}) == {"token": P}


def test_from_config_warns_on_invalid_regex() -> None:
    cfg = types.SimpleNamespace(
        enabled=True, denylist=[], regexes=["(unclosed"], redact_emails=True, placeholder=P
    )
    with pytest.warns(UserWarning, match=r"'\(unclosed'.*missing \), unterminated subpattern"):
        Redactor.from_config(cfg)


def test_valid_config_emits_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Redactor(regexes=["ok", r"\d+"], denylist=["a"])


# -- properties ------------------------------------------------------------------------

_KEYCHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _chars(alphabet: str, lo: int, hi: int | None = None) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=lo, max_size=hi if hi is not None else lo + 30)


_secrets: st.SearchStrategy[tuple[str, str]] = st.one_of(
    _chars(_KEYCHARS + "_-", 20).map(lambda s: ("openai_api_key", "sk-" + s)),
    _chars(_KEYCHARS + "_-", 20).map(lambda s: ("openai_api_key", "sk-proj-" + s)),
    _chars(_KEYCHARS + "_-", 20).map(lambda s: ("anthropic_api_key", "sk-ant-api03-" + s)),
    st.tuples(st.sampled_from("abposr"), _chars(_KEYCHARS + "-", 10)).map(
        lambda t: ("slack_token", f"xox{t[0]}-{t[1]}")
    ),
    st.tuples(st.sampled_from("pousr"), _chars(_KEYCHARS, 36, 36)).map(
        lambda t: ("github_token", f"gh{t[0]}_{t[1]}")
    ),
    _chars(_KEYCHARS + "_", 22).map(lambda s: ("github_token", "github_pat_" + s)),
    _chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 16, 16).map(
        lambda s: ("aws_access_key_id", "AKIA" + s)
    ),
    _chars(_KEYCHARS + "_-", 35, 35).map(lambda s: ("google_api_key", "AIza" + s)),
    st.tuples(_chars(_KEYCHARS, 16), st.integers(0, 9)).map(
        lambda t: ("bearer_token", f"Bearer {t[0]}{t[1]}")
    ),
    _chars(_KEYCHARS + "+/\n", 1, 80).map(
        lambda s: ("private_key", f"-----BEGIN PRIVATE KEY-----\n{s}\n-----END PRIVATE KEY-----")
    ),
    st.tuples(_chars(_KEYCHARS + "._+", 1, 12), _chars("abcdefgh", 1, 8)).map(
        lambda t: ("email", f"{t[0]}x@{t[1]}.com")
    ),
)

# Separators that end every token class, so an embedded secret stays a whole secret.
_SEP = st.sampled_from([" ", "\n", ", ", "; ", '"', "'", "(", ")", "<", ">", " | "])


@st.composite
def _texts_with_secrets(draw: st.DrawFn) -> tuple[str, list[str]]:
    parts: list[str] = []
    secrets: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        parts.append(draw(st.text(max_size=20)))
        parts.append(draw(_SEP))
        _name, secret = draw(_secrets)
        secrets.append(secret)
        parts.append(secret)
        parts.append(draw(_SEP))
    parts.append(draw(st.text(max_size=20)))
    return "".join(parts), secrets


@settings(max_examples=300, deadline=None)
@given(_texts_with_secrets())
def test_property_embedded_secrets_are_removed_and_redaction_is_idempotent(
    case: tuple[str, list[str]],
) -> None:
    text, secrets = case
    r = Redactor()
    once = r.redact_text(text)
    assert r.redact_text(once) == once
    assert r.find_secrets(once) == []
    for secret in secrets:
        # Whole secrets must go (for `Bearer x` the scheme word stays, the token goes). The
        # token alone is not checked: the random filler text may repeat it unprefixed, and
        # an unprefixed run of digits is not a secret.
        assert secret not in once


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.sampled_from([P, "REDACTED", "x", "<r>"]))
def test_property_idempotent_on_arbitrary_text(text: str, placeholder: str) -> None:
    r = Redactor(placeholder=placeholder, regexes=["[A-Z]{3,}", r"\d+"])
    once = r.redact_text(text)
    assert r.redact_text(once) == once
    assert r.find_secrets(once) == []


_json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    _secrets.map(lambda t: t[1]),
    st.sampled_from(["https://h.example/a?key=k1&x=1", f"https://u:p@h.example/{AWS}"]),
)
_json_keys = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        ["authorization", "Token", "api_key", "max_tokens", "messages", "X-Api-Key", EMAIL]
    ),
)
_json = st.recursive(
    _json_leaves,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_json_keys, kids, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_json)
def test_property_structures_idempotent_and_clean(value: Any) -> None:
    r = Redactor()
    before = copy.deepcopy(value)
    once = r.redact(value)
    assert value == before
    assert r.redact(once) == once
    assert r.find_secrets(once) == []


def test_no_regex_state_leaks_between_instances() -> None:
    # Pattern names come from the instance's own table; a second redactor with different
    # options must not change the first one's behaviour.
    a = Redactor()
    Redactor(redact_emails=False, regexes=["foo"])
    assert a.redact_text("foo a@b.io") == f"foo {P}"
    assert re.fullmatch(r"\*\*\*REDACTED\*\*\*", a.placeholder)


def test_redaction_repeats_until_stable() -> None:
    # "foo" is replaced after the built-ins ran; only then does "sk-…" stand alone (the
    # "o" before it had blocked the match), so a single pass would not be idempotent.
    red = Redactor(regexes=["foo"])
    once = red.redact_text("foo" + OPENAI)
    assert once == P + P
    assert red.redact_text(once) == once


@pytest.mark.parametrize("text", ["xoxb-1234567890", "a@b.co"])
def test_shortest_secrets_are_not_skipped_by_the_length_shortcut(r: Redactor, text: str) -> None:
    assert r.redact_text(text) == P
