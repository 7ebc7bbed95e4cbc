"""Project commands: ``init``, ``record``, ``replay`` and ``rm``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import os
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import EXTENSIONS, CliError, display, resolve
from ._summary import fmt_latency, request_summary, response_summary, token_counts

if TYPE_CHECKING:
    from .._model import Interaction

__all__ = ["CONFIG_TEMPLATE", "register"]

CONFIG_TEMPLATE = """\
# agenttape configuration. Every key is optional: the commented values are the defaults.
# Reference: docs/configuration.md. `use_cassette(...)` arguments override this file.

# Folder of cassettes, relative to this file.
cassette_dir = "cassettes"

# Mode when use_cassette() is given none: none | once | new_episodes | all | record.
# `none` replays and never touches the network; AGENTTAPE_MODE overrides it for a run.
# default_mode = "none"

# How a request finds its recording: ignore_volatile | exact | ordered (a fallback chain).
# default_matchers = ["ignore_volatile"]

# Cassette file format: yaml | json.
# format = "yaml"

# What is pinned while recording and replaying: clock, uuid, random.
# freeze = ["clock", "uuid", "random"]

# Request fields never used for matching (setting this replaces the default list).
# ignore_volatile_fields = ["timestamp", "created", "created_at", "request_id",
#     "x-request-id", "x-amzn-requestid", "nonce", "trace_id", "traceparent", "date",
#     "user-agent", "idempotency-key"]

# Environment variables whose values are stored and checked on replay.
# env_snapshot = []

# Binary payloads larger than this go to <name>.assets/ instead of the cassette.
# assets_threshold_bytes = 4096

# Serve the last recording again when an identical request repeats.
# allow_playback_repeats = false

# Extra hosts whose OpenAI/Anthropic-style APIs are recorded as `llm` interactions.
# llm_hosts = []

# Rewrite the model of outgoing LLM requests (a real change, for experiments).
# model_override = "gpt-4o-mini"

[redact]
# Redaction runs before anything is written.
# enabled = true
# Extra keys (headers, JSON fields, query parameters) whose values are always replaced.
# denylist = []
# Extra regular expressions whose every match is replaced.
# regexes = []
# redact_emails = true
# placeholder = "***REDACTED***"
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("init", parents=[common],
                       help="create a commented agenttape.toml and a cassettes/ folder",
                       description="Create a commented agenttape.toml and a cassettes/ "
                       "folder. An existing file is never overwritten.")
    p.add_argument("--dir", default=".", help="project folder (default: the current one)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("record", parents=[common],
                       help="run MODULE:FUNC inside a cassette session",
                       description="Import MODULE (the current folder is on the path), "
                       "call FUNC() inside use_cassette(NAME, mode=MODE) and write the "
                       "cassette. Async functions are run with asyncio.")
    p.add_argument("target", metavar="MODULE:FUNC")
    p.add_argument("name", metavar="NAME", help="cassette name (in cassette_dir) or path")
    p.add_argument("--mode", default="record",
                   choices=("none", "once", "new_episodes", "all", "record"),
                   help="session mode (default: record)")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("replay", parents=[common],
                       help="replay a cassette offline and print its timeline",
                       description="Feed every recorded request back through the replay "
                       "engine (nothing external runs) and print the timeline it serves. "
                       "Exit 1 when a recording would not replay under the current config.")
    p.add_argument("cassette", metavar="NAME")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("rm", parents=[common],
                       help="delete a cassette with its .assets/ and .derived companions")
    p.add_argument("cassette", metavar="CASSETTE")
    p.add_argument("-f", "--force", action="store_true", help="do not ask")
    p.set_defaults(func=cmd_rm)


# --- init --------------------------------------------------------------------------------------


def _has_pyproject_table(folder: Path) -> bool:
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file():
        return False
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return False
    tool = data.get("tool")
    return isinstance(tool, dict) and "agenttape" in tool


def cmd_init(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if not folder.is_dir():
        raise CliError(f"--dir {args.dir}: no such folder")
    config = folder / "agenttape.toml"
    if config.exists():
        print(f"kept {display(config)} (it already exists)")
    elif _has_pyproject_table(folder):
        # agenttape.toml would silently win over the existing [tool.agenttape] table.
        print(f"kept the [tool.agenttape] table in {display(folder / 'pyproject.toml')} "
              "(not writing agenttape.toml)")
    else:
        # "x": never clobber a file created between the check and the write.
        with config.open("x", encoding="utf-8") as fh:
            fh.write(CONFIG_TEMPLATE)
        print(f"wrote {display(config)}")
    cassettes = folder / "cassettes"
    if cassettes.is_dir():
        print(f"kept {display(cassettes)}/")
    else:
        cassettes.mkdir(parents=True)
        print(f"created {display(cassettes)}/")
    return 0


# --- record ------------------------------------------------------------------------------------


def _load_target(target: str) -> Any:
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise CliError(f"expected MODULE:FUNC (like myapp.agent:main), got {target!r}")
    # As `python -m` does: the user's modules in the current folder are importable.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise CliError(f"cannot import {module_name!r}: no module named {exc.name!r}"
                           ) from exc
        raise
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CliError(f"{module_name!r} has no attribute {attr_path!r}") from None
    if not callable(obj):
        raise CliError(f"{target} is not callable")
    return obj


def _run(func: Any) -> Any:
    if inspect.iscoroutinefunction(func):
        return asyncio.run(func())
    result = func()
    if inspect.isawaitable(result):
        async def wait() -> Any:
            return await result

        return asyncio.run(wait())
    return result


def _kinds(interactions: Sequence[Interaction]) -> str:
    counts = Counter(i.kind for i in interactions)
    return ", ".join(f"{kind} {n}" for kind, n in counts.items())


def cmd_record(args: argparse.Namespace) -> int:
    from ..session import use_cassette

    func = _load_target(args.target)
    session = use_cassette(args.name, mode=args.mode)
    try:
        with session:
            try:
                _run(func)
            except SystemExit as exc:
                # A script's `sys.exit(0)` is a normal end, not a failed recording.
                if exc.code not in (None, 0):
                    raise
    except BaseException:
        for path in session.written:
            print(f"the run failed; wrote what it recorded to {display(path)} "
                  "(meta.incomplete)", file=sys.stderr)
        raise
    engine = session.engine
    assert engine is not None
    timeline = engine.timeline()
    kinds = f" ({_kinds(timeline)})" if timeline else ""
    print(f"{len(timeline)} interaction(s){kinds}: {engine.live_count} live, "
          f"{engine.replayed} replayed; mode {session.mode}")
    for path in session.written:
        print(f"wrote {display(path)}")
    if not session.written:
        print(f"nothing written (mode {session.mode}); {display(session.path)} unchanged")
    return 0


# --- replay ------------------------------------------------------------------------------------


def cmd_replay(args: argparse.Namespace) -> int:
    from .._storage import read_cassette
    from ..config import Config
    from ..engine import Engine
    from ..errors import UnmatchedInteractionError
    from ..matchers import resolve_matchers
    from ..redaction import Redactor

    config = Config.load()
    path = resolve(args.cassette, config)
    cassette = read_cassette(path)
    engine = Engine(
        cassette.interactions,
        mode="none",
        matchers=resolve_matchers(config.default_matchers, config.ignore_volatile_fields),
        allow_playback_repeats=False,
        cassette=path,
        redact=Redactor.from_config(config.redact).redact,
        volatile_fields=config.ignore_volatile_fields,
    )
    freeze = cassette.meta.get("freeze") if isinstance(cassette.meta.get("freeze"), dict) else {}
    assert isinstance(freeze, dict)
    print(f"replaying {display(path)} offline (mode none): "
          f"{len(cassette.interactions)} interaction(s)")
    if freeze.get("base_iso"):
        print(f"clock at {freeze['base_iso']}; {len(freeze.get('uuids') or [])} uuid(s); "
              f"random seed {freeze.get('random_seed')}")
    start = 0.0
    failed = 0
    rows: list[tuple[str, ...]] = []
    for inter in cassette.interactions:
        boundary = inter.boundary or inter.kind
        try:
            decision = engine.decide(inter.kind, boundary, inter.request, tags=inter.tags)
        except UnmatchedInteractionError as exc:
            failed += 1
            first = str(exc).splitlines()[0] if str(exc) else "unmatched"
            rows.append((f"#{inter.index}", "", inter.kind, boundary, "", "",
                         f"DOES NOT REPLAY: {first}"))
            continue
        served = decision.interaction
        assert served is not None
        tokens = token_counts(served)[2]
        rows.append((
            f"#{served.index}", f"+{start / 1000:.3f}s", served.kind, boundary,
            fmt_latency(served.latency_ms), "" if tokens is None else f"{tokens} tok",
            f"{request_summary(served, 50)} -> {response_summary(served, 40)}",
        ))
        start += served.latency_ms or 0.0
    if rows:
        w = [max(len(r[c]) for r in rows) for c in range(6)]
        for r in rows:
            cells = [r[0].ljust(w[0]), r[1].rjust(w[1]), r[2].ljust(w[2]), r[3].ljust(w[3]),
                     r[4].rjust(w[4]), r[5].rjust(w[5]), r[6]]
            print("  " + "  ".join(cells))
    total = len(cassette.interactions)
    print(f"replayed {engine.replayed}/{total} offline; {engine.tokens_saved} tokens not "
          "spent; nothing external ran")
    if failed:
        print(f"{failed} recording(s) would not replay under the current configuration "
              "(matchers, redaction); re-record, or run `agenttape redact` if redaction "
              "changed", file=sys.stderr)
        return 1
    return 0


# --- rm ----------------------------------------------------------------------------------------


def _companions(path: Path) -> list[Path]:
    from .._storage import assets_dir

    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    found = [path, assets_dir(path)]
    if not stem.endswith(".derived"):
        for ext in EXTENSIONS:
            derived = path.with_name(f"{stem}.derived{ext}")
            found += [derived, assets_dir(derived)]
    # dict: the derived cassettes of every extension share one assets folder.
    return [p for p in dict.fromkeys(found) if p.exists()]


def cmd_rm(args: argparse.Namespace) -> int:
    path = resolve(args.cassette)
    targets = _companions(path)
    if not args.force:
        print("will delete:")
        for target in targets:
            print(f"  {display(target)}{'/' if target.is_dir() else ''}")
        print("delete? [y/N] ", end="", flush=True)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            print("nothing deleted")
            return 1
    for target in targets:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
        print(f"deleted {display(target)}")
    return 0
