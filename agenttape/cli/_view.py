"""``view``: one self-contained HTML page for a cassette, or a side-by-side diff of two.

Everything is rendered on this side, and every string that comes from a cassette goes
through :func:`html.escape` (quotes included) before it reaches the page: prompts and tool
outputs are untrusted text. No cassette data is embedded as JavaScript. As a second line
of defence the page carries a Content-Security-Policy that allows only its own inline
script (by hash), no network and no inline event handlers.
"""

from __future__ import annotations

import argparse
import base64
import difflib
import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import display, load
from ._summary import (
    fmt_latency,
    message_lines,
    request_summary,
    response_summary,
    response_text,
    token_counts,
)
from ._view_assets import CSS, JS

if TYPE_CHECKING:
    from .._model import Cassette, Interaction
    from ._diff import Entry

__all__ = ["register", "render_compare", "render_single"]

_KINDS = ("llm", "tool", "retrieval", "memory_read", "memory_write", "http")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("view", parents=[common],
                       help="write a self-contained HTML view (two cassettes: a diff)",
                       description="Write one offline HTML file: the timeline of "
                       "interactions with latency bars and tokens, each expandable to its "
                       "request and response. With SECOND, a side-by-side diff. Written "
                       "beside the cassette (<name>.html, <a>-vs-<b>.html) unless -o.")
    p.add_argument("cassette", metavar="CASSETTE")
    p.add_argument("second", metavar="SECOND", nargs="?")
    p.add_argument("-o", "--output", metavar="OUT", help="where to write the HTML file")
    p.set_defaults(func=cmd_view)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _kind_class(kind: str) -> str:
    # Kinds are validated on load; the fallback keeps a class name safe regardless.
    return f"k-{kind}" if kind in _KINDS else "k-other"


# --- pieces ------------------------------------------------------------------------------------


def _chat(request: dict[str, Any]) -> str:
    lines = message_lines(request)
    if not lines:
        return ""
    items = "".join(
        f'<div class="msg"><span class="role">{_e(role)}</span>'
        f'<div class="text">{_e(text)}</div></div>'
        for role, text in lines
    )
    return f'<div class="chat">{items}</div>'


def _kv(pairs: Sequence[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs if v not in (None, ""))
    return f'<dl class="kv">{items}</dl>' if items else ""


def _body(inter: Interaction) -> str:
    parts = ['<div class="body">', "<h3>Request</h3>"]
    if inter.kind == "llm":
        parts.append(_chat(inter.request))
    parts.append(f'<pre class="request">{_e(_pretty(inter.request))}</pre>')
    if inter.error is not None:
        err = inter.error
        parts.append("<h3>Error</h3>")
        parts.append(f'<p class="error">{_e(err.get("type", "error"))}: '
                     f'{_e(err.get("message", ""))}</p>')
        parts.append(f'<pre class="error-detail">{_e(_pretty(err))}</pre>')
    else:
        parts.append("<h3>Response</h3>")
        answer = response_text(inter.response) if inter.kind == "llm" else None
        if answer:
            parts.append(f'<div class="answer">{_e(answer)}</div>')
        parts.append(f'<pre class="response">{_e(_pretty(inter.response))}</pre>')
    tin, tout, total = token_counts(inter)
    details = [
        ("latency", fmt_latency(inter.latency_ms)),
        ("input tokens", tin), ("output tokens", tout), ("total tokens", total),
        ("match key", inter.match_key), ("tags", ", ".join(inter.tags)),
    ]
    parts.append("<h3>Details</h3>" + _kv(details))
    if inter.usage and set(inter.usage) - {"input_tokens", "output_tokens", "total_tokens"}:
        parts.append(f'<pre class="usage">{_e(_pretty(inter.usage))}</pre>')
    if inter.metadata:
        parts.append("<h3>Metadata</h3>")
        parts.append(f'<pre class="metadata">{_e(_pretty(inter.metadata))}</pre>')
    parts.append("</div>")
    return "".join(parts)


def _card(inter: Interaction, start: float, scale: float, *, side: str = "") -> str:
    lat = inter.latency_ms or 0.0
    left = 100.0 * start / scale if scale else 0.0
    width = 100.0 * lat / scale if scale else 0.0
    total = token_counts(inter)[2]
    err = " err" if inter.error is not None else ""
    summary = f"{request_summary(inter, 90)} \u2192 {response_summary(inter, 70)}"
    anchor = f"{side}i-{inter.index}"
    return (
        f'<details class="ix {_kind_class(inter.kind)}{err}" id="{_e(anchor)}" '
        f'data-index="{inter.index}" data-boundary="{_e(inter.boundary or inter.kind)}">'
        f'<summary><span class="idx">#{inter.index}</span>'
        f'<span class="kind">{_e(inter.kind)}</span>'
        f'<span class="boundary" title="{_e(inter.boundary or inter.kind)}">'
        f"{_e(inter.boundary or inter.kind)}</span>"
        f'<span class="sum" title="{_e(summary)}">{_e(summary)}</span>'
        f'<span class="lat">{_e(fmt_latency(inter.latency_ms))}</span>'
        f'<span class="tok">{"" if total is None else _e(f"{total} tok")}</span>'
        f'<span class="track"><span class="bar" style="margin-left:{left:.3f}%;'
        f'width:{width:.3f}%"></span></span></summary>'
        f"{_body(inter)}</details>"
    )


def _starts(interactions: Sequence[Interaction]) -> dict[int, float]:
    out, clock = {}, 0.0
    for inter in interactions:
        out[id(inter)] = clock
        clock += inter.latency_ms or 0.0
    return out


def _stats(cassette: Cassette) -> str:
    from ._inspect import totals

    t = totals(cassette)
    chips = [f"<b>{t['interactions']}</b> interactions"]
    chips += [f'<span class="kind {_kind_class(k)}">{_e(k)}</span> {n}'
              for k, n in t["by_kind"].items()]
    chips.append(f"<b>{_e(fmt_latency(t['latency_ms']))}</b> recorded latency")
    chips.append(f"tokens <b>{t['input_tokens']}</b> in / <b>{t['output_tokens']}</b> out / "
                 f"<b>{t['total_tokens']}</b> total")
    if t["errors"]:
        chips.append(f'<span class="error">{t["errors"]} error(s)</span>')
    return '<div class="stats">' + "".join(f'<span class="chip">{c}</span>' for c in chips) + (
        "</div>")


def _meta(cassette: Cassette) -> str:
    meta = cassette.meta
    freeze = meta.get("freeze") if isinstance(meta.get("freeze"), dict) else {}
    assert isinstance(freeze, dict)
    return _kv([
        ("created", cassette.created_at), ("run id", cassette.run_id),
        ("mode", meta.get("mode")), ("recorded with", meta.get("agenttape_version")),
        ("frozen", ", ".join(str(f) for f in freeze.get("features") or []) or "nothing"),
        ("clock", freeze.get("base_iso")),
        ("tags", ", ".join(str(t) for t in meta.get("tags") or [])),
        ("incomplete", "yes: the recorded run raised" if meta.get("incomplete") else None),
    ]).replace('class="kv"', 'class="meta"', 1)


def _toolbar(kinds: Sequence[str], *, compare: bool) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" data-kind-filter value="{_e(k)}" checked>'
        f'<span class="kind {_kind_class(k)}">{_e(k)}</span></label>'
        for k in kinds
    )
    extra = ('<label><input type="checkbox" id="only-diff"> only differences</label>'
             if compare else "")
    return (
        f'<nav class="toolbar">{boxes}{extra}'
        '<input type="search" id="q" placeholder="filter by text" aria-label="filter">'
        '<button type="button" id="expand-all">Expand all</button>'
        '<button type="button" id="collapse-all">Collapse all</button></nav>'
    )


def _page(title: str, body: str) -> str:
    from .._version import __version__

    digest = base64.b64encode(hashlib.sha256(JS.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="agenttape">'
        '<link rel="icon" href="data:,">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n"
        f"<footer>Generated by agenttape {_e(__version__)}. This page is self-contained and "
        f"makes no network requests.</footer>\n<script>{JS}</script>\n</body></html>\n"
    )


# --- pages -------------------------------------------------------------------------------------


def render_single(path: Path, cassette: Cassette) -> str:
    scale = sum(i.latency_ms or 0.0 for i in cassette.interactions)
    starts = _starts(cassette.interactions)
    rows = "".join(
        f'<li data-row data-kinds="{_e(i.kind)}">{_card(i, starts[id(i)], scale)}</li>'
        for i in cassette.interactions
    )
    kinds = list(dict.fromkeys(i.kind for i in cassette.interactions))
    body = (
        f'<header><h1><span class="brand">agenttape</span> {_e(path.name)}</h1>'
        f'<p class="path">{_e(display(path))}</p>{_meta(cassette)}{_stats(cassette)}</header>'
        f"{_toolbar(kinds, compare=False)}"
        f'<main><ol class="timeline">{rows}</ol></main>'
    )
    return _page(f"agenttape: {path.name}", body)


def _inline_diff(old: str, new: str) -> str:
    """Word-level changes of a long string, as escaped text with <del>/<ins> marks."""
    a, b = re.split(r"(\s+)", old), re.split(r"(\s+)", new)
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(_e("".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(f"<del>{_e(''.join(a[i1:i2]))}</del>")
        if j2 > j1:
            out.append(f"<ins>{_e(''.join(b[j1:j2]))}</ins>")
    return f'<span class="inline-diff">{"".join(out)}</span>'


def _field_list(entry: Entry) -> str:
    items = []
    for diff in entry.diffs:
        a, b = diff.expected, diff.received
        if isinstance(a, str) and isinstance(b, str) and max(len(a), len(b)) > 60:
            change = _inline_diff(a, b)
        else:
            old = json.dumps(a, ensure_ascii=False, default=str)
            new = json.dumps(b, ensure_ascii=False, default=str)
            change = (f'<del>{_e(old)}</del> \u2192 <ins>{_e(new)}</ins>')
        items.append(f"<li><code>{_e(diff.path)}</code>: {change}</li>")
    return f'<ul class="fields">{"".join(items)}</ul>'


def render_compare(a_path: Path, a: Cassette, b_path: Path, b: Cassette) -> str:
    from ._diff import align

    entries = align(a.interactions, b.interactions)
    scale = max(sum(i.latency_ms or 0.0 for i in c.interactions) for c in (a, b))
    starts = {**_starts(a.interactions), **_starts(b.interactions)}
    counts = Counter(e.status for e in entries)
    rows = []
    for entry in entries:
        left = (_card(entry.a, starts[id(entry.a)], scale, side="a")
                if entry.a is not None else '<div class="gap">not in A</div>')
        right = (_card(entry.b, starts[id(entry.b)], scale, side="b")
                 if entry.b is not None else '<div class="gap">not in B</div>')
        kinds = " ".join(sorted({x.kind for x in (entry.a, entry.b) if x is not None}))
        status = ""
        if entry.status != "equal":
            fields = _field_list(entry) if entry.diffs else ""
            status = (f'<div class="status"><span class="label">{_e(entry.status)}</span>'
                      f"{fields}</div>")
        rows.append(
            f'<div class="pair st-{_e(entry.status)}" data-row data-kinds="{_e(kinds)}" '
            f'data-status="{_e(entry.status)}"><div class="side a">{left}</div>'
            f'<div class="side b">{right}</div>{status}</div>'
        )
    summary = "".join(
        f'<span class="chip"><b>{counts.get(s, 0)}</b> {s}</span>'
        for s in ("changed", "added", "removed", "equal")
    )
    kinds_seen = list(dict.fromkeys(i.kind for c in (a, b) for i in c.interactions))
    body = (
        f'<header><h1><span class="brand">agenttape diff</span> {_e(a_path.name)} '
        f"\u2194 {_e(b_path.name)}</h1>"
        f'<div class="stats">{summary}</div>'
        f'<div class="cmp-head"><div>A: {_e(display(a_path))}{_meta(a)}{_stats(a)}</div>'
        f'<div>B: {_e(display(b_path))}{_meta(b)}{_stats(b)}</div></div></header>'
        f"{_toolbar(kinds_seen, compare=True)}"
        f'<main class="compare">{"".join(rows)}</main>'
    )
    return _page(f"agenttape diff: {a_path.name} vs {b_path.name}", body)


def _default_output(a_path: Path, b_path: Path | None) -> Path:
    stem_a = a_path.name[: -len(a_path.suffix)] if a_path.suffix else a_path.name
    if b_path is None:
        return a_path.with_name(f"{stem_a}.html")
    stem_b = b_path.name[: -len(b_path.suffix)] if b_path.suffix else b_path.name
    return a_path.with_name(f"{stem_a}-vs-{stem_b}.html")


def cmd_view(args: argparse.Namespace) -> int:
    a_path, a = load(args.cassette)
    if args.second is None:
        page, b_path = render_single(a_path, a), None
    else:
        b_path, b = load(args.second)
        page = render_compare(a_path, a, b_path, b)
    out = Path(args.output) if args.output else _default_output(a_path, b_path)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {display(out)}")
    return 0
