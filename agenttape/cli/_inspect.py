"""Reading one cassette: ``inspect`` (table and totals) and ``timeline`` (text waterfall)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import display, load
from ._summary import fmt_latency, request_summary, response_summary, token_counts

if TYPE_CHECKING:
    from .._model import Cassette

__all__ = ["register", "render_inspect", "render_timeline", "totals"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("inspect", parents=[common],
                       help="metadata, every interaction in one line, totals")
    p.add_argument("cassette", metavar="CASSETTE")
    p.add_argument("--full", action="store_true",
                   help="also print each interaction's request and response in full")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("timeline", parents=[common],
                       help="text waterfall of latencies in recorded order")
    p.add_argument("cassette", metavar="CASSETTE")
    p.add_argument("--width", type=int, default=40, help="length of the longest bar")
    p.set_defaults(func=cmd_timeline)


def totals(cassette: Cassette) -> dict[str, Any]:
    tin = tout = ttot = 0
    for inter in cassette.interactions:
        i, o, t = token_counts(inter)
        tin += i or 0
        tout += o or 0
        ttot += t or 0
    return {
        "interactions": len(cassette.interactions),
        "by_kind": dict(Counter(i.kind for i in cassette.interactions)),
        "errors": sum(1 for i in cassette.interactions if i.error is not None),
        "latency_ms": round(sum(i.latency_ms or 0.0 for i in cassette.interactions), 3),
        "input_tokens": tin,
        "output_tokens": tout,
        "total_tokens": ttot,
    }


def _meta_lines(path: Path, cassette: Cassette) -> list[str]:
    meta = cassette.meta
    freeze = meta.get("freeze") if isinstance(meta.get("freeze"), dict) else {}
    assert isinstance(freeze, dict)
    lines = [display(path)]
    lines.append(f"  version {cassette.version} | created {cassette.created_at or '-'} "
                 f"| run {cassette.run_id or '-'}")
    features = ", ".join(freeze.get("features") or []) or "nothing"
    tags = ", ".join(str(t) for t in meta.get("tags") or []) or "-"
    lines.append(f"  agenttape {meta.get('agenttape_version', '?')} | mode "
                 f"{meta.get('mode', '?')} | frozen: {features} | tags: {tags}")
    if meta.get("incomplete"):
        lines.append("  INCOMPLETE: the recorded run raised before it finished")
    return lines


def _totals_line(t: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {n}" for k, n in t["by_kind"].items())
    return (f"{t['interactions']} interaction(s) ({kinds or 'none'}) | "
            f"{fmt_latency(t['latency_ms'])} recorded latency | tokens "
            f"{t['input_tokens']} in / {t['output_tokens']} out / {t['total_tokens']} total | "
            f"{t['errors']} error(s)")


def render_inspect(path: Path, cassette: Cassette, *, full: bool = False) -> str:
    lines = _meta_lines(path, cassette)
    lines.append("")
    rows = [("#", "kind", "boundary", "latency", "tokens", "request -> response")]
    for inter in cassette.interactions:
        total = token_counts(inter)[2]
        rows.append((
            str(inter.index), inter.kind, inter.boundary or "-", fmt_latency(inter.latency_ms),
            "-" if total is None else str(total),
            f"{request_summary(inter)} -> {response_summary(inter)}",
        ))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    for n, row in enumerate(rows):
        cells = [row[0].rjust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]),
                 row[3].rjust(widths[3]), row[4].rjust(widths[4]), row[5]]
        lines.append("  " + "  ".join(cells).rstrip())
        if full and n > 0:
            lines.append(_full(cassette.interactions[n - 1].to_dict()))
    lines.append("")
    lines.append(_totals_line(totals(cassette)))
    return "\n".join(lines)


def _full(data: dict[str, Any]) -> str:
    # The cassette writer's own YAML: block scalars for prompts, same key order as the file.
    from .._storage import _dump_yaml

    shown = {k: v for k, v in data.items() if k not in ("index", "kind", "boundary")}
    text = _dump_yaml(shown).decode("utf-8")
    return "\n".join("      " + line for line in text.rstrip().splitlines())


def _inspect_json(path: Path, cassette: Cassette, full: bool) -> str:
    items = []
    for inter in cassette.interactions:
        tin, tout, total = token_counts(inter)
        item: dict[str, Any] = {
            "index": inter.index, "kind": inter.kind, "boundary": inter.boundary,
            "request_summary": request_summary(inter),
            "response_summary": response_summary(inter),
            "latency_ms": inter.latency_ms,
            "tokens": {"input": tin, "output": tout, "total": total},
            "error": inter.error is not None,
        }
        if full:
            item["interaction"] = inter.to_dict()
        items.append(item)
    doc = {
        "path": str(path), "version": cassette.version, "created_at": cassette.created_at,
        "run_id": cassette.run_id, "meta": cassette.meta, "interactions": items,
        "totals": totals(cassette),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str)


def cmd_inspect(args: argparse.Namespace) -> int:
    path, cassette = load(args.cassette)
    if args.json:
        print(_inspect_json(path, cassette, args.full))
    else:
        print(render_inspect(path, cassette, full=args.full))
    return 0


# --- timeline ----------------------------------------------------------------------------------

_EIGHTHS = " ▏▎▍▌▋▊▉"


def _can_draw() -> bool:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "█▏".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _bar(fraction: float, width: int, unicode: bool) -> str:
    if not unicode:
        return "#" * max(round(fraction * width), 1 if fraction > 0 else 0)
    eighths = round(fraction * width * 8)
    if fraction > 0 and eighths == 0:
        eighths = 1  # every crossing that took time stays visible
    full, rest = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[rest] if rest else "")


def render_timeline(path: Path, cassette: Cassette, *, width: int = 40,
                    unicode: bool = True) -> str:
    inters = cassette.interactions
    longest = max((i.latency_ms or 0.0 for i in inters), default=0.0)
    total = sum(i.latency_ms or 0.0 for i in inters)
    lines = [f"{display(path)}: {len(inters)} interaction(s), {fmt_latency(total)} "
             "end to end; bars scaled to the longest"]
    rows = [("#", "start", "kind", "boundary", "latency")]
    start = 0.0
    for inter in inters:
        rows.append((str(inter.index), f"+{start / 1000:.3f}s", inter.kind,
                     inter.boundary or inter.kind, fmt_latency(inter.latency_ms)))
        start += inter.latency_ms or 0.0
    w = [max(len(r[c]) for r in rows) for c in range(5)]
    for n, row in enumerate(rows):
        lat = inters[n - 1].latency_ms if n else None
        bar = _bar((lat or 0.0) / longest, width, unicode) if n and longest and lat else ""
        cells = [row[0].rjust(w[0]), row[1].rjust(w[1]), row[2].ljust(w[2]),
                 row[3].ljust(w[3]), row[4].rjust(w[4]), bar]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return "\n".join(lines)


def cmd_timeline(args: argparse.Namespace) -> int:
    path, cassette = load(args.cassette)
    width = max(int(args.width), 1)
    print(render_timeline(path, cassette, width=width, unicode=_can_draw()))
    return 0
