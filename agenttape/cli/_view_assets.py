"""The CSS and JavaScript inlined into every ``agenttape view`` page.

Kept as Python strings so the page needs no package data lookup and no network. The script
only toggles visibility of server-rendered, already-escaped markup: it never builds HTML
from cassette data.
"""

from __future__ import annotations

__all__ = ["CSS", "JS"]

CSS = """
:root {
  --bg: #fbfbfd; --fg: #1d1d24; --muted: #6b6b78; --line: #e3e3ea; --card: #ffffff;
  --code: #f4f4f8; --add: #e6f6ea; --del: #fdecec; --chg: #fff6dc;
  --llm: #7c4dff; --tool: #1e88e5; --retrieval: #2e9d5b; --memory_read: #e08a00;
  --memory_write: #d35400; --http: #607d8b; --err: #d32f2f;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #15151a; --fg: #e8e8ee; --muted: #9a9aa8; --line: #2c2c36; --card: #1c1c23;
    --code: #24242d; --add: #173322; --del: #3a1c1c; --chg: #3a3318;
  }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header, nav, main, footer { padding: 0 24px; }
header { padding-top: 18px; }
h1 { font-size: 20px; margin: 0 0 2px; }
h1 .brand { color: var(--muted); font-weight: 500; }
.path { color: var(--muted); margin: 0 0 10px; font-family: ui-monospace, monospace;
  font-size: 12px; word-break: break-all; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0 0 12px;
  font-size: 13px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
.stats { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0 14px; }
.chip { border: 1px solid var(--line); background: var(--card); border-radius: 999px;
  padding: 2px 10px; font-size: 12px; }
.chip b { font-weight: 600; }
nav.toolbar { position: sticky; top: 0; z-index: 2; background: var(--bg);
  border-bottom: 1px solid var(--line); display: flex; flex-wrap: wrap; gap: 10px;
  align-items: center; padding-top: 8px; padding-bottom: 8px; }
nav.toolbar label { font-size: 12px; display: inline-flex; gap: 4px; align-items: center; }
nav.toolbar input[type=search] { padding: 3px 8px; border: 1px solid var(--line);
  border-radius: 6px; background: var(--card); color: var(--fg); min-width: 200px; }
nav.toolbar button { padding: 3px 10px; border: 1px solid var(--line); border-radius: 6px;
  background: var(--card); color: var(--fg); cursor: pointer; }
ol.timeline { list-style: none; margin: 12px 0; padding: 0; }
ol.timeline > li { margin: 0 0 6px; }
details.ix { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  border-left: 4px solid var(--kind, var(--line)); }
details.ix.err { border-left-color: var(--err); }
details.ix > summary { list-style: none; cursor: pointer; display: grid;
  grid-template-columns: 3.2em 7.5em minmax(6em, 11em) minmax(0, 1fr) 6.5em 5.5em 22%;
  gap: 10px; align-items: center; padding: 6px 10px; }
details.ix > summary::-webkit-details-marker { display: none; }
details.ix > summary:hover { background: var(--code); }
.idx { color: var(--muted); font-family: ui-monospace, monospace; }
.kind { font-size: 11px; font-weight: 600; color: #fff; background: var(--kind, var(--muted));
  border-radius: 4px; padding: 1px 6px; justify-self: start; }
.boundary { font-family: ui-monospace, monospace; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
.sum { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; color: var(--muted); }
.lat, .tok { text-align: right; font-variant-numeric: tabular-nums; font-size: 12px; }
.track { height: 8px; background: var(--code); border-radius: 4px; overflow: hidden; }
.bar { display: block; height: 100%; min-width: 2px; background: var(--kind, var(--muted));
  border-radius: 4px; }
.k-llm { --kind: var(--llm); } .k-tool { --kind: var(--tool); }
.k-retrieval { --kind: var(--retrieval); } .k-memory_read { --kind: var(--memory_read); }
.k-memory_write { --kind: var(--memory_write); } .k-http { --kind: var(--http); }
.body { border-top: 1px solid var(--line); padding: 8px 12px 12px; }
.body h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); margin: 10px 0 4px; }
pre { background: var(--code); border-radius: 6px; padding: 8px 10px; margin: 0;
  overflow: auto; max-height: 420px; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo,
  monospace; white-space: pre-wrap; word-break: break-word; }
.chat { display: grid; gap: 4px; margin-bottom: 6px; }
.msg { display: grid; grid-template-columns: 6em 1fr; gap: 8px; }
.msg .role { color: var(--muted); font-size: 12px; text-align: right; padding-top: 2px; }
.msg .text { white-space: pre-wrap; word-break: break-word; background: var(--code);
  border-radius: 6px; padding: 4px 8px; }
.answer { white-space: pre-wrap; word-break: break-word; border-left: 3px solid var(--llm);
  padding: 4px 10px; margin-bottom: 6px; }
.error { color: var(--err); font-weight: 600; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0;
  font-size: 12px; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; font-family: ui-monospace, monospace; word-break: break-all; }
.cmp-head, .pair { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }
.cmp-head { font-weight: 600; margin-top: 12px; }
.cmp-head div { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
.pair { margin: 0 0 8px; padding: 6px; border-radius: 10px; }
.pair.st-changed { background: var(--chg); } .pair.st-added { background: var(--add); }
.pair.st-removed { background: var(--del); }
.pair .gap { border: 1px dashed var(--line); border-radius: 8px; color: var(--muted);
  padding: 6px 10px; font-size: 12px; }
.pair details.ix > summary { grid-template-columns: 3.2em 7em minmax(5em, 9em)
  minmax(0, 1fr) 5.5em 18%; }
.pair .tok { display: none; }
.status { grid-column: 1 / -1; font-size: 12px; }
.status .label { font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
.fields { margin: 4px 0 0; padding-left: 18px; }
.fields code { font-family: ui-monospace, monospace; }
.fields del { text-decoration: line-through; color: var(--err); background: var(--del); }
.fields ins { text-decoration: none; background: var(--add); }
.inline-diff { white-space: pre-wrap; word-break: break-word; }
.cmp-head dl.meta { font-weight: 400; }
footer { color: var(--muted); font-size: 12px; padding-bottom: 24px; }
"""

JS = """
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-row]"));
  var kinds = Array.prototype.slice.call(document.querySelectorAll("input[data-kind-filter]"));
  var query = document.getElementById("q");
  var onlyDiff = document.getElementById("only-diff");
  function apply() {
    var shown = {};
    kinds.forEach(function (box) { shown[box.value] = box.checked; });
    var needle = query ? query.value.trim().toLowerCase() : "";
    rows.forEach(function (row) {
      var visible = (row.getAttribute("data-kinds") || "").split(" ").some(function (k) {
        return shown[k] !== false;
      });
      if (visible && needle) {
        visible = row.textContent.toLowerCase().indexOf(needle) !== -1;
      }
      if (visible && onlyDiff && onlyDiff.checked) {
        visible = row.getAttribute("data-status") !== "equal";
      }
      row.hidden = !visible;
    });
  }
  kinds.forEach(function (box) { box.addEventListener("change", apply); });
  if (query) { query.addEventListener("input", apply); }
  if (onlyDiff) { onlyDiff.addEventListener("change", apply); }
  function setAll(open) {
    document.querySelectorAll("details.ix").forEach(function (d) { d.open = open; });
  }
  document.getElementById("expand-all").addEventListener("click", function () {
    setAll(true);
  });
  document.getElementById("collapse-all").addEventListener("click", function () {
    setAll(false);
  });
  apply();
})();
"""
