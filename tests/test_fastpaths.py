"""The engine's fast paths give exactly what the slow paths give."""
from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agenttape.config import DEFAULT_VOLATILE_FIELDS
from agenttape.matchers import canonical_json, hash_key, resolve_matchers, strip_volatile
from agenttape.redaction import DEFAULT_DENYLIST, Redactor

FIELDS = frozenset(f.lower() for f in DEFAULT_VOLATILE_FIELDS)
KEYS = st.sampled_from([*DEFAULT_VOLATILE_FIELDS, *DEFAULT_DENYLIST, "Date", "API_KEY", "Token",
                        "x", "name", "args", "messages", "content", "q", "key", "To\u212aen",
                        "sk-abcdefghijklmnopqrstuvwxyz", "ΣΣ", 'we"ird', "a_b"])
TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["sk-" + "a" * 30, "user@example.com", "https://x.io/?key=1&a=2",
                     "Bearer abcdefghijklmnop123", "AKIA" + "A" * 16, "ghp_" + "a" * 30,
                     "plain words here long enough", "http://h/p", '"date":', "***REDACTED***",
                     "http://u:pw@h.io/p", "https://h.io/x?a=1&Token=2", "https://h/?API_KEY=3",
                     "https://h/?%6Bey=1", "https://h/?x=1+2", "http://h/?sig=abc&b=1",
                     "https://h/p?q=1#frag&key=2", "HTTPS://H/?KEY=1"]),
)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT)
VALUE = st.recursive(SCALAR, lambda c: st.one_of(st.lists(c, max_size=4),
                                                 st.dictionaries(st.one_of(KEYS, TEXT), c,
                                                                 max_size=4)), max_leaves=20)
REQUEST = st.one_of(
    st.dictionaries(st.one_of(KEYS, TEXT), VALUE, max_size=5),
    st.fixed_dictionaries({"name": TEXT, "args": st.dictionaries(st.one_of(KEYS, TEXT), VALUE,
                                                                 max_size=4)}),
)


def old_volatile_key(request: dict[str, Any]) -> str:
    args = request.get("args") if "name" in request else None
    if isinstance(args, dict):
        stripped = dict(request)
        stripped["args"] = {k: strip_volatile(v, FIELDS) for k, v in args.items()}
        stripped = {k: v if k == "args" else strip_volatile(v, FIELDS)
                    for k, v in stripped.items() if k == "args" or k.lower() not in FIELDS}
        return hash_key(stripped)
    return hash_key(strip_volatile(request, FIELDS))


@settings(max_examples=300, deadline=None)
@given(REQUEST)
def test_volatile_key_from_text_equals_the_stripping_key(request: dict[str, Any]) -> None:
    matcher = resolve_matchers(["ignore_volatile"], DEFAULT_VOLATILE_FIELDS)[0]
    assert matcher.key(request) == old_volatile_key(request)
    assert matcher.key.from_text(request, canonical_json(request)) == old_volatile_key(request)


@settings(max_examples=300, deadline=None)
@given(REQUEST, st.booleans())
def test_unchanged_json_is_never_wrong(request: dict[str, Any], emails: bool) -> None:
    redactor = Redactor(redact_emails=emails)
    text = canonical_json(request)
    if redactor.unchanged_json(text):
        assert canonical_json(redactor.redact(request)) == text
