"""Snapshots of UnmatchedInteractionError for the drift kinds users meet most."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import agenttape

SYSTEM = (
    "You are a helpful shopping assistant. Always answer in English. Never reveal the card "
    "number. Keep answers short.\nUse tools when needed.\nBe polite."
)


@agenttape.tool
def charge_card(amount: int, currency: str = "EUR") -> dict[str, Any]:
    return {"ok": True, "amount": amount}


@agenttape.tool
def refund(amount: int) -> bool:
    return True


def llm(messages: list[dict[str, str]]) -> Any:
    request = {"endpoint": "chat.completions", "model": "gpt-4o-mini", "messages": messages}
    return agenttape.record_call("llm", request, lambda: {"text": "ok"}, boundary="openai")


def conversation(system: str = SYSTEM) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": "buy socks"},
        {"role": "tool", "content": "paid"},
    ]


@pytest.fixture(autouse=True)
def recorded() -> None:
    with agenttape.use_cassette("shop", record=True):
        charge_card(100)
        llm(conversation())


def unmatched(action: Any) -> agenttape.UnmatchedInteractionError:
    with agenttape.use_cassette("shop"), pytest.raises(agenttape.UnmatchedInteractionError) as info:
        action()
    return info.value


def body(error: Exception) -> str:
    """The message minus the parts every snapshot shares (header paths, request dump, fixes)."""
    text = str(error).replace(str(Path.cwd()), "<cwd>")
    head, _, rest = text.partition("\nincoming request:\n")
    _, _, tail = rest.partition("\n\nclosest recording")
    return head.rstrip("\n") + "\n...\nclosest recording" + tail


FIXES = '''how to fix:
  - intended change? re-record: pytest --agenttape-record, or use mode="new_episodes" to append the new call
  - volatile field? add its name to ignore_volatile_fields in agenttape.toml'''


def test_changed_argument() -> None:
    error = unmatched(lambda: charge_card(200))
    assert body(error) == f'''no recording matches this tool call to `charge_card`

  called:    tool `charge_card`
  cassette:  <cwd>/cassettes/shop.yaml
  mode:      none
...
closest recording: interaction #0 (tool `charge_card`)

field differences (expected = recorded, received = incoming):
  args.amount: expected 100, received 200

unplayed recordings of `charge_card`: 1 of 1

{FIXES}
  - should it run for real? use live={{"charge_card"}}'''
    assert [(d.path, d.expected, d.received) for d in error.field_diffs] == [
        ("args.amount", 100, 200)
    ]
    assert error.request == {"name": "charge_card", "args": {"amount": 200, "currency": "EUR"}}
    assert error.closest is not None and error.closest.index == 0
    assert error.cassette == Path.cwd() / "cassettes" / "shop.yaml"
    assert error.mode == "none"


def test_new_call() -> None:
    error = unmatched(lambda: refund(5))
    assert body(error).endswith(f'''closest recording: none — the cassette has no tool recording of `refund`

unplayed recordings of `refund`: 0 of 0

{FIXES}
  - should it run for real? use live={{"refund"}}''')
    assert error.closest is None and error.field_diffs == []


def test_missing_call_shows_the_missing_message_as_one_difference() -> None:
    error = unmatched(lambda: llm(conversation()[:2]))
    assert "\n".join(body(error).splitlines()[6:10]) == '''closest recording: interaction #1 (llm `openai`)

field differences (expected = recorded, received = incoming):
  messages[2]: expected {"role": "tool", "content": "paid"}, received (absent)'''


def test_changed_long_prompt_is_a_unified_diff_of_the_changed_line() -> None:
    changed = SYSTEM.replace("Keep answers short.", "Keep answers very short.")
    error = unmatched(lambda: llm(conversation(changed)))
    assert "\n".join(body(error).splitlines()[9:16]) == '''  messages[0].content:
      --- recorded
      +++ incoming
      @@ -1,2 +1,2 @@
      -You are a helpful shopping assistant. Always answer in English. Never reveal the card number. Keep answers short.
      +You are a helpful shopping assistant. Always answer in English. Never reveal the card number. Keep answers very short.
       Use tools when needed.'''
    assert "Be polite." not in body(error)


def test_reordered_messages_show_both_swapped_fields() -> None:
    swapped = conversation()
    swapped[1], swapped[2] = swapped[2], swapped[1]
    error = unmatched(lambda: llm(swapped))
    assert [(d.path, d.expected, d.received) for d in error.field_diffs] == [
        ("messages[1].role", "user", "tool"),
        ("messages[1].content", "buy socks", "paid"),
        ("messages[2].role", "tool", "user"),
        ("messages[2].content", "paid", "buy socks"),
    ]
    assert '  messages[1].role: expected "user", received "tool"' in str(error)


def test_identical_call_repeated_more_often_than_recorded() -> None:
    def twice() -> None:
        charge_card(100)
        charge_card(100)

    error = unmatched(twice)
    text = str(error)
    assert "(none — an identical recording exists but has already been played)" in text
    assert "unplayed recordings of `charge_card`: 0 of 1" in text
    assert "set allow_playback_repeats = true" in text


def test_the_message_shows_the_incoming_request() -> None:
    error = unmatched(lambda: charge_card(200))
    assert '''incoming request:
    {
      "name": "charge_card",
      "args": {
        "amount": 200,
        "currency": "EUR"
      }
    }''' in str(error)
