"""The documentation is tested: its runnable examples run, the site builds, every page is in it.

A fenced block runs when the line right before its opening fence is a marker comment (HTML
comments render as nothing in MkDocs, so readers never see them):

    <!-- test: run -->                 run in a fresh folder and namespace (a new chain)
    <!-- test: continue -->            run in the folder and namespace of the previous block
    <!-- test: file agent.py -->       write the block to agent.py in the chain's folder
    <!-- test: pytest -->              write the block to a test file and run pytest on it
    <!-- test: output -->              the previous block printed exactly this (a text block)

``continue`` may prefix ``file`` and ``pytest`` too (``run``, ``file`` and ``pytest`` start a
new chain otherwise), and ``offline`` may end a marker: the loopback stand-in is stopped
before that block and must see no request from it. Each chain runs with the stand-in
started and the real SDKs pointed at it through their own environment variables
(``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL`` and fake keys), in a folder whose
``agenttape.toml`` records the stand-in's API calls as ``llm`` like api.openai.com's.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import io
import os
import re
import shlex
import subprocess
import sys
import time
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

import agenttape
from agenttape._standin import LLMServer

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
SOURCES = [*PAGES, ROOT / "README.md"]
FAKE_KEY = "sk-docs-NOT-A-REAL-KEY-0123456789abcdef"
# What readers see instead of the temporary folder a snippet ran in.
SHOWN_CWD = "/home/you/project"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARKER = re.compile(r"^\s*<!--\s*test:(?P<body>.*?)-->\s*$")


@dataclass
class Block:
    source: Path
    line: int  # 1-based line of the first line of code
    lang: str
    code: str
    action: str = ""  # run | file | pytest | output
    argument: str = ""
    joins: bool = False  # `continue`
    offline: bool = False

    @property
    def where(self) -> str:
        return f"{self.source.relative_to(ROOT)}:{self.line}"


@dataclass
class Chain:
    blocks: list[Block] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.blocks[0].where


class MarkerError(ValueError):
    pass


def _parse_marker(body: str, where: str) -> tuple[str, str, bool, bool]:
    words = shlex.split(body)
    offline = bool(words) and words[-1] == "offline"
    if offline:
        words = words[:-1]
    joins = bool(words) and words[0] == "continue"
    if joins:
        words = words[1:] or ["run"]
    if words in (["run"], ["pytest"], ["output"]):
        return words[0], "", joins, offline
    if len(words) == 2 and words[0] == "file":
        return "file", words[1], joins, offline
    raise MarkerError(f"{where}: unknown doc-test marker <!-- test:{body}-->")


def fenced_blocks(source: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with its marker (if any) parsed."""
    lines = source.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (
            lines[j].strip().startswith(fence[0] * len(fence))
            and lines[j].strip().strip(fence[0]) == ""
        ):
            line = lines[j]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            j += 1
        lang = opening["info"].strip().split(" ")[0].lstrip("{.").rstrip("}")
        block = Block(source, i + 2, lang, "\n".join(body) + "\n")
        marker = _MARKER.match(lines[i - 1]) if i > 0 else None
        if marker is not None:
            where = f"{source.relative_to(ROOT)}:{i}"
            block.action, block.argument, block.joins, block.offline = _parse_marker(
                marker["body"], where)
        blocks.append(block)
        i = j + 1
    return blocks


def chains(sources: list[Path]) -> list[Chain]:
    found: list[Chain] = []
    for source in sources:
        current: Chain | None = None
        for block in fenced_blocks(source):
            if not block.action:
                continue
            if block.action == "output" or block.joins:
                if current is None:
                    raise MarkerError(f"{block.where}: `{block.action}` needs an earlier "
                                      "runnable block on the same page")
                current.blocks.append(block)
            else:
                current = Chain([block])
                found.append(current)
    return found


CHAINS = chains(SOURCES)


# -- running a chain -----------------------------------------------------------------------


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[LLMServer]:
    server = LLMServer().start()
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    Path("agenttape.toml").write_text('llm_hosts = ["127.0.0.1"]\n', encoding="utf-8")
    try:
        yield server
    finally:
        server.stop()
    assert not server.errors, "the stand-in raised:\n" + "\n".join(server.errors)


def _normalise(text: str, folder: Path) -> str:
    text = text.replace(str(folder.resolve()), SHOWN_CWD).replace(str(folder), SHOWN_CWD)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _close_clients(namespace: dict[str, object]) -> None:
    """Snippets create clients the way apps do, at module level, and never close them."""
    for value in list(namespace.values()):
        module = type(value).__module__.split(".", 1)[0]
        close = getattr(value, "close", None)
        if module in ("openai", "anthropic", "httpx", "httpx2", "requests") and callable(close):
            with contextlib.suppress(Exception):
                close()


class _Runner:
    def __init__(self, chain: Chain, server: LLMServer) -> None:
        self.chain = chain
        self.server = server
        self.folder = Path.cwd()
        self.module = types.ModuleType(re.sub(r"\W", "_", f"docs_{chain.id}"))
        self.module.__file__ = str(self.folder / "snippet.py")
        self.stdout = ""
        self.offline_hits: int | None = None

    def run(self) -> None:
        sys.modules[self.module.__name__] = self.module
        sys.path.insert(0, str(self.folder))
        before = set(sys.modules)
        environ = dict(os.environ)  # snippets may set AGENTTAPE_MODE and the like
        try:
            for block in self.chain.blocks:
                if block.offline and self.offline_hits is None:
                    self.server.stop()
                    self.offline_hits = self.server.hits
                getattr(self, f"_{block.action}")(block)
                if self.offline_hits is not None:
                    assert self.server.hits == self.offline_hits, (
                        f"{block.where} reached the network in an offline block")
        finally:
            os.environ.clear()
            os.environ.update(environ)
            sys.path.remove(str(self.folder))
            owned = [self.module]
            for name in set(sys.modules) - before:  # the chain's own modules (agent.py, ...)
                module_file = getattr(sys.modules[name], "__file__", None) or ""
                if module_file.startswith(str(self.folder)):
                    owned.append(sys.modules.pop(name))
            sys.modules.pop(self.module.__name__, None)
            for module in owned:
                _close_clients(vars(module))
                vars(module).clear()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()

    def _run(self, block: Block) -> None:
        # Padding keeps line numbers in tracebacks equal to the Markdown file's.
        code = compile("\n" * (block.line - 1) + block.code, str(block.source), "exec")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(code, vars(self.module))
        self.stdout = out.getvalue()

    def _file(self, block: Block) -> None:
        target = self.folder / block.argument
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code, encoding="utf-8")
        self.stdout = ""

    def _pytest(self, block: Block) -> None:
        name = f"test_snippet_{block.line}.py"
        (self.folder / name).write_text(block.code, encoding="utf-8")
        # Only agenttape's plugin: other installed plugins (langsmith's) cost seconds to load.
        env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-p", "agenttape.pytest_plugin", name],
            cwd=self.folder, env=env, capture_output=True, text=True, timeout=120,
        )
        self.stdout = done.stdout
        assert done.returncode == 0, f"{block.where}: pytest failed\n{done.stdout}{done.stderr}"

    def _output(self, block: Block) -> None:
        assert _normalise(self.stdout, self.folder) == _normalise(block.code, self.folder), (
            f"{block.where}: the documented output is not what the example prints; it "
            f"printed:\n{_normalise(self.stdout, self.folder)}")


@pytest.mark.parametrize("chain", CHAINS, ids=[c.id for c in CHAINS])
def test_documented_example_runs(chain: Chain, standin: LLMServer) -> None:
    _Runner(chain, standin).run()


# -- the pages themselves ----------------------------------------------------------------


def test_the_marker_grammar_accepts_what_the_pages_use() -> None:
    assert _parse_marker(" run ", "x") == ("run", "", False, False)
    assert _parse_marker(" continue ", "x") == ("run", "", True, False)
    assert _parse_marker(" continue pytest offline ", "x") == ("pytest", "", True, True)
    assert _parse_marker(" continue offline ", "x") == ("run", "", True, True)
    assert _parse_marker(" file app/agent.py ", "x") == ("file", "app/agent.py", False, False)
    with pytest.raises(MarkerError, match="unknown doc-test marker"):
        _parse_marker(" runn ", "x")


def test_every_marker_sits_right_before_a_fence() -> None:
    # A misspelt marker, or one separated from its block, would silently stop testing it.
    for source in SOURCES:
        lines = source.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            if re.search(r"<!--\s*tests?\b", line):
                assert _MARKER.match(line), f"{source.name}:{n + 1}: malformed marker {line!r}"
            if _MARKER.match(line):
                following = lines[n + 1] if n + 1 < len(lines) else ""
                assert _FENCE.match(following), f"{source.name}:{n + 1}: marker without a fence"


def test_there_are_runnable_examples_on_the_core_pages() -> None:
    marked = {c.blocks[0].source.name for c in CHAINS}
    for page in ("quickstart.md", "first-recording.md", "modes.md", "replay-engine.md",
                 "partial-replay.md", "determinism.md", "debugging.md", "tools.md",
                 "api.md", "migrating.md"):
        assert page in marked, f"{page} has no runnable example"


def _source_of(block: Block) -> str:
    """The code of a Python block; of an interactive session, only what was typed."""
    lines = block.code.splitlines()
    if block.lang == "pycon" or (lines and lines[0].startswith(">>> ")):
        return "\n".join(line[4:] for line in lines if line.startswith((">>> ", "... ")))
    return block.code


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_python_blocks_are_valid_python(page: Path) -> None:
    for block in fenced_blocks(page):
        if block.lang in ("python", "py", "pycon"):
            try:
                ast.parse(_source_of(block))
            except SyntaxError as exc:
                pytest.fail(f"{block.where}: not valid Python ({exc.msg}, line {exc.lineno})")


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = _nav_pages(config["nav"])
    assert len(listed) == len(set(listed)), "a page is listed twice"
    on_disk = {p.name for p in PAGES}
    assert sorted(on_disk - set(listed)) == [], "pages missing from the nav"
    assert sorted(set(listed) - on_disk) == [], "nav entries without a page"


def test_the_api_page_documents_every_public_name() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("#")]
    missing = [name for name in agenttape.__all__
               if not any(f"`{name}`" in h or f"`agenttape.{name}`" in h or
                          re.search(rf"`[^`]*\b{re.escape(name)}\(", h) for h in headings)]
    assert missing == [], f"docs/api.md has no heading for {missing}"


def test_the_site_builds_strictly_and_offline(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    started = time.perf_counter()
    # No --quiet: it hides warnings from the counter that --strict fails on.
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict",
         "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    # No page may pull anything from the network when it is opened either.
    for html in (tmp_path / "site").rglob("*.html"):
        page = html.read_text(encoding="utf-8")
        assert "fonts.googleapis.com" not in page, html
    assert time.perf_counter() - started < 60
