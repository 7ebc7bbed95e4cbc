"""Cost of one ``Engine.decide`` lookup of a tool request, at 100 and 100,000 recordings.

Builds an engine in mode ``none`` over N recorded tool interactions (default matcher chain,
default redaction), then times lookups of distinct recorded requests picked at random
(up to ``--lookups`` per engine, fresh engines until as many were timed): the cost per
lookup must not depend on N. The first lookup builds the index and is timed apart.

    .venv/bin/python benchmarks/lookup.py [--quick] [--sizes 100,100000] [--lookups 2000]
"""

from __future__ import annotations

import gc
import random
from typing import Any

from _common import best, header, parser, table, timed, use_wall_clock

from agenttape._model import Interaction
from agenttape.config import DEFAULT_VOLATILE_FIELDS
from agenttape.engine import Engine
from agenttape.matchers import resolve_matchers
from agenttape.redaction import Redactor


def request(i: int) -> dict[str, Any]:
    return {"name": "search", "args": {"query": f"query number {i}", "limit": 5,
                                       "filters": {"lang": "en", "page": i % 7}}}


def recordings(n: int) -> list[Interaction]:
    matcher = resolve_matchers(None, DEFAULT_VOLATILE_FIELDS)[0]
    return [Interaction(index=i, kind="tool", boundary="search", request=request(i),
                        response={"hits": [f"doc-{i}-{k}" for k in range(3)]},
                        match_key=matcher.key(request(i))) for i in range(n)]


def engine(recorded: list[Interaction]) -> Engine:
    redactor = Redactor()
    return Engine(recorded, mode="none",
                  matchers=resolve_matchers(None, DEFAULT_VOLATILE_FIELDS),
                  redact=redactor.redact, unchanged_by_redaction=redactor.unchanged_json,
                  volatile_fields=DEFAULT_VOLATILE_FIELDS)


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--sizes", default=None, help="comma-separated N (default 100,100000)")
    p.add_argument("--lookups", type=int, default=None, help="lookups timed per run")
    p.add_argument("--runs", type=int, default=None)
    args = p.parse_args()
    use_wall_clock(args.wall)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [100, 10000] if args.quick else [100, 100000])
    lookups = args.lookups or 2000
    runs = args.runs or (3 if args.quick else 7)
    header("Engine.decide on tool requests")

    rng = random.Random(8)
    recorded = {n: recordings(n) for n in sizes}
    # Long-lived test data: keep the collector from re-walking it before every timing.
    gc.collect()
    gc.freeze()
    # (label, recordings, how many of them the lookups pick from)
    cases = [(f"{n:,}", n, n) for n in sizes]
    big, small = max(sizes), min(sizes)
    if big > small:
        # Same index size, but the looked-up recordings stay in the CPU caches: what is
        # left of the difference between the sizes is memory locality, not the algorithm.
        cases.append((f"{big:,}, lookups among {small:,} of them", big, small))
    firsts: dict[str, list[float]] = {c[0]: [] for c in cases}
    each: dict[str, list[float]] = {c[0]: [] for c in cases}
    # Cases alternate within each run, so a busy moment of the machine hits all of them.
    for _ in range(runs):
        for label, n, pool in cases:
            k = min(pool - 1, lookups)
            for _ in range(max(1, lookups // k)):
                e = engine(recorded[n])
                firsts[label].append(timed(lambda e=e: e.decide("tool", "search", request(0))))
                # Distinct recordings, each looked up once (a played one is not served again).
                incoming = [request(i) for i in rng.sample(range(1, pool), k)]
                each[label].append(timed(lambda e=e, incoming=incoming: [
                    e.decide("tool", "search", r) for r in incoming]) / k)
    per = {label: best(each[label]) for label in each}
    rows = [[label, best(firsts[label]) * 1e3, per[label] * 1e6] for label in each]
    print(table(["recordings", "first lookup (builds the index) ms", "µs per lookup"], rows))
    print()
    lo, hi = f"{small:,}", f"{big:,}"
    print(f"per-lookup cost at {hi} / at {lo} recordings: {per[hi] / per[lo]:.2f} "
          "(flat is about 1)")
    if big > small:
        hot = per[f"{big:,}, lookups among {small:,} of them"]
        print(f"  with the looked-up recordings in cache: {hot / per[lo]:.2f}")


if __name__ == "__main__":
    main()
