"""The pytest plugin: the ``agenttape`` marker, its fixtures, two flags and a summary line.

Loaded by every pytest run through the ``pytest11`` entry point, so it imports nothing of
agenttape's heavy parts (httpx, requests, yaml, cattrs) until a marked test runs.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._handle import CassetteHandle

if TYPE_CHECKING:
    from .session import Session

__all__ = ["CassetteHandle"]

MARKER = "agenttape"
OPTIONS = ("mode", "live", "frozen", "matchers", "freeze", "format")
COUNTERS = ("sessions", "replayed", "live", "recorded", "written", "tokens")

_mode_key = pytest.StashKey[str | None]()
_totals_key = pytest.StashKey[dict[str, int]]()
_call_error_key = pytest.StashKey[BaseException | None]()
_session_key = pytest.StashKey["Session"]()


# -- options, marker, configuration --------------------------------------------------------
def _mode_arg(value: str) -> str:
    from .config import MODES, check_mode
    from .errors import ConfigError

    try:
        return check_mode(value)
    except ConfigError as exc:
        hint = f" (did you mean {exc.suggestion!r}?)" if exc.suggestion else ""
        raise argparse.ArgumentTypeError(
            f"unknown mode {value!r}{hint}; choose from {', '.join(MODES)}") from None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agenttape", "agenttape: record and replay agent boundaries")
    group.addoption("--agenttape-record", action="store_true", default=False,
                    help='record marked tests afresh (mode "all"); beats AGENTTAPE_MODE')
    group.addoption("--agenttape-mode", metavar="MODE", type=_mode_arg, default=None,
                    help="cassette mode for every marked test: none, once, new_episodes, "
                         "all, record; beats AGENTTAPE_MODE and the marker")
    parser.addini("agenttape_cassette_dir", type="string", default="",
                  help="cassette folder for marked tests, relative to the ini file "
                       "(default: cassette_dir of agenttape.toml)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "agenttape(cassette=None, *, mode, live, frozen, matchers, freeze, format): run the "
        "test inside an agenttape session (cassette name defaults to <module>/<test>)",
    )
    record, mode = config.getoption("agenttape_record"), config.getoption("agenttape_mode")
    if record and mode not in (None, "all", "record"):
        raise pytest.UsageError(
            f"--agenttape-record means mode 'all'; it conflicts with --agenttape-mode {mode}")
    config.stash[_mode_key] = "all" if record else mode
    config.stash[_totals_key] = dict.fromkeys(COUNTERS, 0)
    config.pluginmanager.register(_async_client_fixture(config), "agenttape-async-client")


def marker_options(node: pytest.Item) -> dict[str, Any]:
    """The merged ``agenttape`` markers of ``node`` (the closest wins per option), checked.

    Raises ``TypeError``/``ValueError`` naming the offending option.
    """
    merged: dict[str, Any] = {}
    for mark in reversed(list(node.iter_markers(MARKER))):
        if len(mark.args) > 1:
            raise TypeError(f"@pytest.mark.{MARKER} takes one positional argument (the cassette"
                            f" name); got {len(mark.args)}: {mark.args!r}")
        for key in mark.kwargs:
            if key != "cassette" and key not in OPTIONS:
                import difflib

                close = difflib.get_close_matches(key, ("cassette", *OPTIONS), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise TypeError(f"@pytest.mark.{MARKER} got an unknown option {key!r}{hint};"
                                f" valid options: cassette, {', '.join(OPTIONS)}")
        merged.update(mark.kwargs)
        if mark.args:
            merged["cassette"] = mark.args[0]
    _check(merged)
    return merged


def _check(opts: dict[str, Any]) -> None:
    from .config import check_format, check_freeze, check_mode
    from .errors import ConfigError
    from .matchers import resolve_matchers

    cassette = opts.get("cassette")
    if cassette is not None and not isinstance(cassette, (str, Path)):
        raise TypeError(f"cassette must be a name or a path; got {cassette!r}")
    if opts.get("mode") is not None:
        check_mode(opts["mode"])
    if opts.get("format") is not None:
        check_format(opts["format"])
    if opts.get("freeze") is not None:
        check_freeze(opts["freeze"])
    if opts.get("matchers") is not None:
        resolve_matchers(list(opts["matchers"]), ())
    if opts.get("live") and opts.get("frozen"):
        raise ConfigError("`live` and `frozen` are mutually exclusive; set only one", key="live")


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    # A bad marker option fails collection of its test, like a syntax error would, instead
    # of surfacing later as a fixture error on every run of it.
    report = yield
    if report.passed and isinstance(report.result, list):
        problems = []
        for item in report.result:
            if isinstance(item, pytest.Item) and item.get_closest_marker(MARKER) is not None:
                try:
                    marker_options(item)
                except (TypeError, ValueError) as exc:
                    problems.append(f"{item.nodeid}: {exc}")
        if problems:
            report.outcome = "failed"
            report.longrepr = "agenttape marker error:\n" + "\n".join(problems)
            report.result = []
    return report


_UNSAFE = re.compile(r"[^\w.,=+@\[\]-]", re.ASCII)
_MAX_NAME = 120


def default_cassette_name(item: pytest.Item) -> str:
    """``<module stem>/<test name>``, with the class as a prefix (``TestX.test_y``)."""
    classes = [node.name for node in item.listchain() if isinstance(node, pytest.Class)]
    name = _UNSAFE.sub("_", ".".join([*classes, item.name]))
    if len(name) > _MAX_NAME:
        # Long parametrisation ids would exceed file-name limits; the hash keeps them apart.
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
        name = f"{name[:_MAX_NAME - 11]}-{digest}"
    return f"{_UNSAFE.sub('_', item.path.stem)}/{name.lstrip('.') or '_'}"


def _cassette_dir(config: pytest.Config) -> Path | None:
    raw = str(config.getini("agenttape_cassette_dir") or "").strip()
    if not raw:
        return None
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    return base / Path(raw).expanduser()


# -- the session around a marked test ----------------------------------------------------
def _open_session(request: pytest.FixtureRequest) -> Session:
    from .config import Config
    from .session import Session

    item = request.node
    opts = marker_options(item)
    name = opts.pop("cassette", None) or default_cassette_name(item)
    # Found from the test file, not the cwd: where cassettes live must not depend on where
    # pytest was started (no agenttape.toml: `cassettes/` beside the test module, as
    # pytest-recording does).
    config = Config.load(start=item.path.parent)
    return Session(name, mode_override=request.config.stash[_mode_key], config=config,
                   cassette_dir=_cassette_dir(request.config), **opts)


@pytest.fixture(autouse=True)
def _agenttape_session(request: pytest.FixtureRequest) -> Iterator[Session | None]:
    """Runs every marked test (sync or async) inside its session; unmarked tests: None.

    The session is entered here, in pytest's own context, so the event loop task of an
    async test inherits it (tasks copy the context they are created in), and so do threads
    through ``active_session()``'s process-wide fallback.
    """
    if request.node.get_closest_marker(MARKER) is None:
        yield None
        return
    from .errors import UnmatchedInteractionError

    session = _open_session(request)
    session.__enter__()
    request.node.stash[_session_key] = session
    try:
        yield session
    finally:
        # The test's own failure, so a recording cut short is marked incomplete.
        error = request.node.stash.get(_call_error_key, None)
        try:
            session.__exit__(type(error) if error else None, error,
                             error.__traceback__ if error else None)
        except UnmatchedInteractionError as exc:
            # The session re-raises a swallowed mismatch behind the test's error; the test's
            # report already shows it (see pytest_runtest_makereport), not again at teardown.
            if error is None or exc.__cause__ is not error:
                raise
        finally:
            del request.node.stash[_session_key]  # items live all run; sessions need not
            _count(request.config, session)


def _count(config: pytest.Config, session: Session) -> None:
    engine = session.engine
    if engine is None:
        return
    totals = config.stash[_totals_key]
    totals["sessions"] += 1
    totals["replayed"] += engine.replayed
    totals["live"] += engine.live_count
    totals["recorded"] += len(engine.new_positions) if session.written else 0
    totals["written"] += len(session.written)
    totals["tokens"] += engine.tokens_saved
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller adds these up
        workeroutput["agenttape"] = dict(totals)


def _require(session: Session | None, fixture: str) -> Session:
    if session is None:
        pytest.fail(f"the {fixture} fixture needs the test to be marked "
                    f"@pytest.mark.{MARKER}(...)", pytrace=False)
    return session


@pytest.fixture
def agenttape_cassette(request: pytest.FixtureRequest,
                       _agenttape_session: Session | None) -> CassetteHandle:
    """The :class:`CassetteHandle` of this marked test's cassette."""
    session = _require(_agenttape_session, "agenttape_cassette")
    return CassetteHandle(session, nodeid=request.node.nodeid)


@pytest.fixture
def agenttape_transport(_agenttape_session: Session | None) -> Iterator[Any]:
    """An httpx/httpx2 transport bound to this test's session (``Client(transport=...)``)."""
    from .transports.httpx import transport

    tape = transport(session=_require(_agenttape_session, "agenttape_transport"))
    yield tape
    tape.close()  # the sync connection pool it opened, if any; async clients close their own


@pytest.fixture
def agenttape_http_client(_agenttape_session: Session | None) -> Iterator[Any]:
    """A sync client for ``OpenAI(http_client=...)`` / ``Anthropic(http_client=...)``."""
    from .transports.clients import http_client

    session = _require(_agenttape_session, "agenttape_http_client")
    with http_client(session=session) as client:
        yield client


@pytest.fixture
def agenttape_requests_session(_agenttape_session: Session | None) -> Iterator[Any]:
    """A ``requests.Session`` recording through this test's session."""
    from .transports.requests import requests_session

    session = _require(_agenttape_session, "agenttape_requests_session")
    with requests_session(session=session) as http:
        yield http


def _async_client_fixture(config: pytest.Config) -> object:
    """``agenttape_async_http_client``, closed on the test's event loop when pytest-asyncio
    runs it (an async client's connections belong to the loop that opened them)."""
    if config.pluginmanager.hasplugin("asyncio"):
        import pytest_asyncio

        class _Closing:
            @pytest_asyncio.fixture
            async def agenttape_async_http_client(
                self, _agenttape_session: Session | None,
            ) -> AsyncIterator[Any]:
                """An async client for ``AsyncOpenAI(http_client=...)`` / ``AsyncAnthropic``."""
                from .transports.clients import async_http_client

                session = _require(_agenttape_session, "agenttape_async_http_client")
                async with async_http_client(session=session) as client:
                    yield client

        return _Closing()

    class _Plain:
        @pytest.fixture
        def agenttape_async_http_client(self, _agenttape_session: Session | None) -> Any:
            """An async client for ``AsyncOpenAI(http_client=...)``; close it in the test."""
            from .transports.clients import async_http_client

            return async_http_client(
                session=_require(_agenttape_session, "agenttape_async_http_client"))

    return _Plain()


# -- reporting ----------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    if call.when == "call" and report.failed and call.excinfo is not None:
        item.stash[_call_error_key] = call.excinfo.value
    if call.excinfo is not None and report.failed:
        # Agent loops and some SDKs catch a mismatch and raise their own error ("agent step
        # failed", "Connection error."), or carry on without the answer: either way the
        # diagnosis is buried or gone, so the report shows it whole in its own section.
        unmatched = _unmatched_in_chain(call.excinfo.value)
        session = item.stash.get(_session_key, None)
        if unmatched is None and session is not None and session.engine is not None:
            unmatched = next(iter(session.engine.unmatched), None)
        if unmatched is not None and unmatched is not call.excinfo.value:
            report.sections.append(("agenttape: unmatched interaction", str(unmatched)))
    return report


def _unmatched_in_chain(exc: BaseException) -> BaseException | None:
    from .errors import UnmatchedInteractionError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, UnmatchedInteractionError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: add up a finished worker's counters."""
    counts = getattr(node, "workeroutput", {}).get("agenttape")
    if counts:
        totals = node.config.stash[_totals_key]
        for key in COUNTERS:
            totals[key] += int(counts.get(key, 0))


def summary_line(totals: dict[str, int]) -> str:
    return (f"agenttape: {totals['replayed']} replayed, {totals['live']} live, "
            f"{totals['recorded']} recorded, {totals['written']} cassettes written, "
            f"{totals['tokens']} tokens not spent")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    totals = config.stash.get(_totals_key, None)
    if totals and totals["sessions"]:
        terminalreporter.write_line(summary_line(totals))
