"""Stored match keys are trusted only while they hold."""
from __future__ import annotations

import pytest

from agenttape._model import Interaction
from agenttape.engine import Engine
from agenttape.errors import UnmatchedInteractionError
from agenttape.matchers import resolve_matchers
from agenttape.redaction import Redactor


def engine(recordings, fields=("date",), matchers=("ignore_volatile",)):
    r = Redactor()
    return Engine(recordings, mode="none", matchers=resolve_matchers(list(matchers), fields),
                  redact=r.redact, unchanged_by_redaction=r.unchanged_json,
                  volatile_fields=fields)


def recorded(request, fields=("date",), matchers=("ignore_volatile",)):
    key = resolve_matchers(list(matchers), fields)[0].key(request)
    return Interaction(index=0, kind="tool", boundary="t", request=request, response="ok",
                       match_key=key)


REQ = {"name": "t", "args": {"q": {"date": "2024-01-01", "v": 1}}}


def test_fresh_keys_replay():
    e = engine([recorded(REQ)])
    assert e.decide("tool", "t", {"name": "t", "args": {"q": {"date": "2030", "v": 1}}}).interaction
    assert e._trusted


def test_stale_key_after_volatile_fields_changed_is_not_a_false_hit():
    # recorded while `date` was volatile; replayed where it is not, without the field
    e = engine([recorded(REQ)], fields=())
    with pytest.raises(UnmatchedInteractionError):
        e.decide("tool", "t", {"name": "t", "args": {"q": {"v": 1}}})
    e = engine([recorded(REQ)], fields=())
    with pytest.raises(UnmatchedInteractionError):
        e.decide("tool", "t", {"name": "t", "args": {"q": {"date": "2030", "v": 1}}})
    e = engine([recorded(REQ)], fields=())
    assert e.decide("tool", "t", REQ).interaction is not None


def test_hand_edited_request_with_a_stale_key():
    rec = recorded(REQ)
    rec.request = {"name": "t", "args": {"q": {"v": 2}}}  # edited, key left as it was
    assert engine([rec]).decide("tool", "t", {"name": "t", "args": {"q": {"v": 2}}}).interaction
    with pytest.raises(UnmatchedInteractionError):
        engine([rec]).decide("tool", "t", REQ)


def test_stale_key_does_not_let_a_fallback_matcher_win():
    a = recorded({"name": "t", "args": {"v": 1}})
    b = recorded({"name": "t", "args": {"v": 2}})
    a.request = {"name": "t", "args": {"v": 3}}  # edited: now the exact match for v=3
    e = engine([b, a], matchers=("ignore_volatile", "ordered"))
    assert e.decide("tool", "t", {"name": "t", "args": {"v": 3}}).interaction is a


def test_recorded_with_exact_replayed_with_ignore_volatile():
    req = {"name": "t", "args": {"q": {"date": "x", "v": 1}}}
    rec = recorded(req, matchers=("exact",))
    e = engine([rec])
    assert e.decide("tool", "t", {"name": "t", "args": {"q": {"date": "y", "v": 1}}}).interaction
