"""`agenttape view`: the self-contained HTML page, opened in a real headless Chromium.

The browser tests need Debian's chromium at /usr/bin/chromium (CI installs it with
`apt-get install -y chromium`); Playwright's Python package drives it over CDP.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agenttape
from agenttape.cli import main

CHROMIUM = Path("/usr/bin/chromium")
# CI installs chromium (.ci/run), so there a missing browser is a failure, not a skip.
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
LAUNCH_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-sync"]

SCRIPT_PAYLOAD = "<script>window.__pwned=1</script>"
IMG_PAYLOAD = '<img src=x onerror="window.__pwned=2">'
ATTR_PAYLOAD = '"><svg onload="window.__pwned=3">'

state: dict[str, Any] = {}


@agenttape.retrieval(name="kb_search")
def search(query: str) -> list[str]:
    return [f"doc about {query}"]


@agenttape.tool
def get_order(order_id: str) -> dict[str, Any]:
    return {"order_id": order_id, "status": state.get("status", "delivered")}


@agenttape.tool
def charge_card(amount: int) -> str:
    raise ValueError("card declined")


@agenttape.memory_write
def save_note(key: str, value: str) -> None:
    return None


def llm(content: str) -> Any:
    return agenttape.record_call(
        "llm",
        {"endpoint": "chat.completions", "model": "gpt-4o-mini",
         "messages": [{"role": "system", "content": "Be brief."},
                      {"role": "user", "content": content}]},
        lambda: {"choices": [{"message": {"role": "assistant", "content": "Answer: " + content}}]},
        boundary="openai", usage={"input_tokens": 12, "output_tokens": 5, "total_tokens": 17},
    )


def agent(question: str = "Where is order A-17?") -> None:
    search("orders")
    order = get_order("A-17")
    save_note("status", order["status"])
    with pytest.raises(ValueError):
        charge_card(5)
    llm(question)


@pytest.fixture(autouse=True)
def _reset_state() -> None:
    state.clear()


@pytest.fixture
def recorded() -> Path:
    with agenttape.use_cassette("run", record=True) as session:
        agent()
    return session.path


@pytest.fixture
def hostile() -> Path:
    """A cassette whose prompt, tool output and boundary name carry markup."""
    with agenttape.use_cassette("hostile", record=True) as session:
        llm(f"hello {SCRIPT_PAYLOAD} and {IMG_PAYLOAD}")
        agenttape.record_call("tool", {"name": "x", "args": {"q": IMG_PAYLOAD}},
                              lambda: SCRIPT_PAYLOAD, boundary=ATTR_PAYLOAD)
    return session.path


def view(*argv: str) -> Path:
    code = main(["view", *argv])
    assert code == 0
    return Path(argv[argv.index("-o") + 1]) if "-o" in argv else Path()


# --- the file, without a browser --------------------------------------------------------------


def test_view_writes_beside_the_cassette_unless_o(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["view", "run"]) == 0
    assert capsys.readouterr().out == "wrote cassettes/run.html\n"
    assert Path("cassettes/run.html").is_file()
    assert main(["view", "run", "-o", "elsewhere.html"]) == 0
    assert Path("elsewhere.html").read_text() == Path("cassettes/run.html").read_text()
    with agenttape.use_cassette("run", mode="none", live={"get_order", "save_note"}):
        state["status"] = "lost"
        agent()
    assert main(["view", "run", "run.derived"]) == 0
    assert capsys.readouterr().out.endswith("wrote cassettes/run-vs-run.derived.html\n")


def test_the_page_is_self_contained(recorded: Path) -> None:
    view("run", "-o", "page.html")
    page = Path("page.html").read_text()
    # No resource from anywhere but the page itself: no src/href except data: and anchors.
    refs = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"' >]*)""", page)
    assert refs and all(ref.startswith("data:") or ref.startswith("#") for ref in refs), refs
    assert "<link rel=\"stylesheet\"" not in page
    assert page.count("<script") == 1 and "<script src" not in page
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None and "default-src &#x27;none&#x27;" in csp.group(1)


def test_every_cassette_string_is_escaped(hostile: Path) -> None:
    view("hostile", "-o", "page.html")
    page = Path("page.html").read_text()
    body = page[page.index("<body>"): page.rindex("<script>")]
    for payload in (SCRIPT_PAYLOAD, IMG_PAYLOAD, ATTR_PAYLOAD, "<svg", "<img"):
        assert payload not in body
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in body
    assert "&quot;&gt;&lt;svg onload=&quot;window.__pwned=3&quot;&gt;" in body


# --- in Chromium ----------------------------------------------------------------------------------


class Browser:
    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.errors: list[str] = []

    def open(self, path: Path) -> Any:
        page = self.browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("request", lambda req: req.url.startswith(("http:", "https:")) and
                self.errors.append(f"network request: {req.url}"))
        page.goto(path.resolve().as_uri())
        return page


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser(chromium: Any) -> Iterator[Browser]:
    wrapper = Browser(chromium)
    yield wrapper
    assert wrapper.errors == [], "the page logged errors"


@needs_chromium
def test_timeline_shows_every_interaction(recorded: Path, browser: Browser) -> None:
    cassette = agenttape.read_cassette(recorded)
    page = browser.open(view("run", "-o", "page.html"))
    rows = page.locator("details.ix")
    assert rows.count() == len(cassette.interactions) == 5
    for n, inter in enumerate(cassette.interactions):
        row = rows.nth(n)
        assert row.locator(".boundary").inner_text() == inter.boundary
        assert row.locator(".kind").inner_text() == inter.kind
        assert row.locator(".idx").inner_text() == f"#{inter.index}"
        # latency bar drawn in the row
        assert row.locator(".bar").bounding_box()["width"] >= 1
    llm_row = rows.nth(4)
    assert llm_row.locator(".tok").inner_text() == "17 tok"
    assert "err" in (rows.nth(3).get_attribute("class") or "")
    assert "5 interactions" in page.locator(".stats").inner_text()


@needs_chromium
def test_expanding_a_row_shows_its_request_and_response(recorded: Path,
                                                        browser: Browser) -> None:
    cassette = agenttape.read_cassette(recorded)
    page = browser.open(view("run", "-o", "page.html"))
    row = page.locator("details.ix").nth(1)
    request = row.locator("pre.request")
    assert not request.is_visible()
    row.locator("summary").click()
    assert request.is_visible()
    assert json.loads(request.inner_text()) == cassette.interactions[1].request
    assert json.loads(row.locator("pre.response").inner_text()) == {
        "order_id": "A-17", "status": "delivered"}
    failed = page.locator("details.ix").nth(3)
    failed.locator("summary").click()
    assert failed.locator("p.error").inner_text() == "ValueError: card declined"
    chat = page.locator("details.ix").nth(4)
    chat.locator("summary").click()
    assert chat.locator(".msg .role").all_inner_texts() == ["system", "user"]
    assert chat.locator(".answer").inner_text() == "Answer: Where is order A-17?"
    page.locator("#collapse-all").click()
    assert not request.is_visible()
    page.locator("#expand-all").click()
    assert page.locator("pre.request:visible").count() == 5


@needs_chromium
def test_kind_filter_and_text_search(recorded: Path, browser: Browser) -> None:
    page = browser.open(view("run", "-o", "page.html"))
    rows = page.locator("li[data-row]")
    page.locator("input[data-kind-filter][value=tool]").uncheck()
    assert [rows.nth(n).is_visible() for n in range(5)] == [True, False, True, False, True]
    page.locator("input[data-kind-filter][value=tool]").check()
    page.locator("#q").fill("kb_search")
    assert [rows.nth(n).is_visible() for n in range(5)] == [True, False, False, False, False]


@needs_chromium
def test_markup_in_a_cassette_never_runs(hostile: Path, browser: Browser) -> None:
    page = browser.open(view("hostile", "-o", "page.html"))
    for row in page.locator("details.ix summary").all():
        row.click()
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img").count() == 0
    assert page.locator("svg").count() == 0
    assert page.locator("script").count() == 1
    text = page.locator(".msg .text").nth(1).inner_text()
    assert text == f"hello {SCRIPT_PAYLOAD} and {IMG_PAYLOAD}"
    assert page.locator(".boundary").nth(1).inner_text() == ATTR_PAYLOAD


@needs_chromium
def test_escaping_holds_without_the_content_security_policy(hostile: Path,
                                                            browser: Browser) -> None:
    # The CSP would block an injected script by itself; take it away to prove the
    # escaping alone keeps the payload inert.
    view("hostile", "-o", "page.html")
    html = Path("page.html").read_text()
    stripped = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html)
    assert stripped != html
    Path("bare.html").write_text(stripped)
    page = browser.open(Path("bare.html"))
    for row in page.locator("details.ix summary").all():
        row.click()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img").count() == 0


@needs_chromium
def test_side_by_side_diff(recorded: Path, browser: Browser) -> None:
    state["status"] = "lost"
    with agenttape.use_cassette("run", mode="none", live={"get_order", "save_note"}):
        agent()
    page = browser.open(view("run", "run.derived", "-o", "diff.html"))
    pairs = page.locator(".pair")
    assert pairs.count() == 5
    statuses = [pairs.nth(n).get_attribute("data-status") for n in range(5)]
    assert statuses == ["equal", "changed", "changed", "equal", "equal"]
    changed = pairs.nth(1)
    assert "response.status" in changed.locator(".fields").inner_text()
    assert changed.locator(".fields del").inner_text() == '"delivered"'
    assert changed.locator(".fields ins").inner_text() == '"lost"'
    # Both sides are there, each expandable to its own response.
    right = changed.locator(".side.b details.ix")
    right.locator("summary").click()
    assert json.loads(right.locator("pre.response").inner_text())["status"] == "lost"
    left = changed.locator(".side.a details.ix")
    left.locator("summary").click()
    assert json.loads(left.locator("pre.response").inner_text())["status"] == "delivered"
    page.locator("#only-diff").check()
    assert [pairs.nth(n).is_visible() for n in range(5)] == [False, True, True, False, False]


@needs_chromium
def test_diff_view_of_added_and_removed_interactions(recorded: Path, browser: Browser) -> None:
    with agenttape.use_cassette("short", record=True):
        search("orders")
    page = browser.open(view("run", "short", "-o", "diff.html"))
    pairs = page.locator(".pair")
    assert [pairs.nth(n).get_attribute("data-status") for n in range(pairs.count())] == [
        "equal", "removed", "removed", "removed", "removed"]
    assert pairs.nth(1).locator(".side.b .gap").inner_text() == "not in B"
    assert pairs.nth(1).locator(".side.a .boundary").inner_text() == "get_order"
