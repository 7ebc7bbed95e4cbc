"""Helpers shared by the benchmark scripts (not a benchmark itself).

Every script writes only under a temporary folder, points agenttape's parse cache there,
and ignores the repository's ``agenttape.toml`` by passing an explicit ``Config``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def machine() -> str:
    """One line naming the machine, so a table is never read without its context."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ""
    with contextlib.suppress(OSError, AttributeError):
        load = " load avg {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()} "
            f"({sys.implementation.name}), {platform.system()}{load}")


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary folder that also holds agenttape's parse cache; removed at the end."""
    saved = {k: os.environ.get(k) for k in ("AGENTTAPE_CACHE_DIR", "AGENTTAPE_NO_CACHE",
                                            "AGENTTAPE_MODE")}
    with tempfile.TemporaryDirectory(prefix=f"agenttape-bench-{prefix}-") as name:
        folder = Path(name)
        os.environ["AGENTTAPE_CACHE_DIR"] = str(folder / "parse-cache")
        os.environ.pop("AGENTTAPE_NO_CACHE", None)
        # A mode forced from the environment would turn a replay into a recording.
        os.environ.pop("AGENTTAPE_MODE", None)
        try:
            yield folder
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def config(cassette_dir: Path) -> Any:
    """Default settings, cassettes under ``cassette_dir`` (the repo's toml is not read)."""
    from agenttape.config import Config

    return Config(cassette_dir=cassette_dir)


# CPU seconds of this process by default: the benchmark machine may be shared, and a
# neighbour's load then adds waiting time to wall-clock figures but not CPU time. Only
# in-process work is measured with it (no server thread runs while it is in use).
clock: Callable[[], float] = time.process_time
CLOCK_NAME = "CPU time of the process (time.process_time)"


def use_wall_clock(wall: bool) -> None:
    global clock, CLOCK_NAME
    if wall:
        clock, CLOCK_NAME = time.perf_counter, "wall-clock time (time.perf_counter)"


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of ``fn`` takes, with the cyclic GC collected before, not during."""
    gc.collect()
    start = clock()
    fn()
    return clock() - start


def best(samples: Sequence[float]) -> float:
    return min(samples)


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer runs")
    p.add_argument("--wall", action="store_true",
                   help="measure wall-clock time instead of the process's CPU time")
    return p


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (pastes straight into docs/performance.md)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
             for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def header(title: str, timing: bool = True) -> None:
    print(f"# {title}")
    print(f"machine: {machine()}")
    if timing:
        print(f"clock: {CLOCK_NAME}")
    print()
