"""The ``agenttape`` command line (also ``python -m agenttape``).

``main(argv)`` returns the exit code instead of exiting, so tests call it directly. Each
command group lives in its own module and registers its sub-commands here; the heavy
imports (yaml, the engine) happen inside the command functions, so ``--help`` is quick.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from . import _check, _diff, _export, _inspect, _project, _view
from ._common import CliError

__all__ = ["main"]

Command = Callable[[argparse.Namespace], int]

_GROUPS = (_project, _inspect, _diff, _check, _export, _view)


def _version() -> str:
    import agenttape

    return str(agenttape.__version__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agenttape",
        description="Record, replay and inspect agent cassettes.",
        epilog="Bare cassette names resolve against cassette_dir from agenttape.toml, "
        "trying .yaml, .yml and .json.",
    )
    parser.add_argument("--version", action="version", version=f"agenttape {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show tracebacks instead of one-line errors")
    # The same flag after the command name. SUPPRESS keeps the sub-parser from resetting
    # a -v given before the command back to False.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in _GROUPS:
        group.register(sub, common)
    return parser


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    return code if isinstance(code, int) else 2


def _one_line(exc: BaseException) -> str:
    from ..errors import AgentTapeError

    lines = [line for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if not isinstance(exc, (CliError, AgentTapeError, OSError)) or not text:
        # Errors from the user's code (record) need their type to make sense.
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if len(lines) > 1:
        text += " (run with -v for the full message)"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # --help, --version and usage errors
        return _exit_code(exc)
    func: Command | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return func(args)
    except KeyboardInterrupt:
        print("agenttape: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `agenttape export x | head`: the reader left. Point stdout at devnull so the
        # interpreter's final flush does not print a second BrokenPipeError.
        import contextlib
        import os

        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        else:
            print(f"agenttape {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
