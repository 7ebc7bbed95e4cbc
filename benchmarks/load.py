"""Load time and peak memory of big cassettes: agenttape (YAML, YAML cached, JSON) vs VCR.py.

Two workloads, each written once into a temporary folder:

* HTTP: N JSON API calls (alternating GET and POST with a JSON body, JSON answers), as an
  agenttape cassette (YAML and JSON) and as a VCR.py cassette of the same traffic;
* tools: N tool calls (about 400 bytes each, the DESIGN's 20,000-call, 8 MB case).

"YAML write s" is ``write_cassette`` of the YAML file, in this process (CPU time). Writing
also stores the parse-cache entry for the new file, so a load right after recording is a
cached one; the first-load case below empties the cache first.

Every load runs in a fresh subprocess, which reports the load's time and how far its peak
RSS (``VmHWM`` on Linux, else ``resource.getrusage``) rose above its RSS just before the
load. The cases:

* ``read_cassette`` of the YAML file, first load (parse cache empty; the load writes it);
* the same file again, unchanged since that load (served from the parse cache);
* ``read_cassette`` of the JSON file;
* ``yaml.load(..., Loader=yaml.CSafeLoader)`` alone: the parser's own time (the target
  for a first load);
* VCR.py: ``vcr.cassette.Cassette.load(path=..., record_mode="none")``.

    .venv/bin/python benchmarks/load.py [--quick] [--sizes 1000,10000] [--runs 3]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import header, parser, scratch, table, verdict

WORKER = r'''
import json, os, resource, sys, time
clock = time.perf_counter if os.environ.get("BENCH_WALL") else time.process_time
case, path = sys.argv[1], sys.argv[2]
import yaml
from agenttape._storage import read_cassette
if case == "vcr":
    from vcr.cassette import Cassette
    from vcr.record_mode import RecordMode

def status(field):
    # Linux: VmHWM is this program's own peak (ru_maxrss would still count the parent's
    # memory at fork time), VmRSS its resident memory now.
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(field)

def peak():
    try:
        return status("VmHWM")
    except OSError:
        scale = 1 if sys.platform == "darwin" else 1024  # kilobytes on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

def current():
    try:
        return status("VmRSS")
    except OSError:
        return peak()

before = current()
start = clock()
if case in ("yaml", "json"):
    loaded = read_cassette(path)
    count = len(loaded.interactions)
elif case == "pyyaml":
    with open(path, "rb") as f:
        loaded = yaml.load(f.read(), Loader=yaml.CSafeLoader)
    count = len(loaded["interactions"])
else:
    loaded = Cassette.load(path=path, record_mode=RecordMode.NONE)
    count = len(loaded)
seconds = clock() - start
print(json.dumps({"seconds": seconds, "peak_mb": (peak() - before) / 1e6, "count": count}))
'''


def http_traffic(n: int) -> tuple[Any, dict[str, Any]]:
    """The same N calls as an agenttape Cassette and as a VCR.py cassette dict."""
    from agenttape._model import Cassette, Interaction
    from agenttape.matchers import hash_key

    host = "127.0.0.1:8000"
    ours, theirs = [], []
    for i in range(n):
        if i % 2 == 0:
            method, url, body = "GET", f"http://{host}/json?i={i}&name=item-{i}", None
        else:
            method, url = "POST", f"http://{host}/echo?i={i}"
            body = {"i": i, "text": f"message number {i}"}
        answer = {"id": f"item-{i}", "i": i, "tags": ["alpha", "beta"],
                  "text": f"The answer to call {i}, a little longer than a line of prose."}
        request: dict[str, Any] = {"method": method, "url": url, "headers": {"accept": "*/*"}}
        if body is not None:
            request["headers"]["content-type"] = "application/json"
            request["json"] = body
        response = {"status_code": 200,
                    "headers": {"content-type": "application/json", "server": "stand-in"},
                    "json": answer}
        ours.append(Interaction(index=i, kind="http", boundary=host, request=request,
                                response=response, match_key=hash_key(request),
                                latency_ms=1.234))
        headers = {"accept": ["*/*"]}
        if body is not None:
            headers["content-type"] = ["application/json"]
        theirs.append({
            "request": {"body": None if body is None else json.dumps(body), "headers": headers,
                        "method": method, "uri": url},
            "response": {"status": {"code": 200, "message": "OK"},
                         "headers": {"content-type": ["application/json"],
                                     "server": ["stand-in"]},
                         "body": {"string": json.dumps(answer)}},
        })
    return Cassette(created_at="2026-01-01T00:00:00+00:00", run_id="bench",
                    interactions=ours), {"interactions": theirs, "version": 1}


def tool_traffic(n: int) -> Any:
    from agenttape._model import Cassette, Interaction
    from agenttape.matchers import hash_key

    interactions = []
    for i in range(n):
        city, day = f"city-{i}", i % 365
        request = {"name": "forecast", "args": {"city": city, "day": day, "units": "metric"}}
        interactions.append(Interaction(
            index=i, kind="tool", boundary="forecast", request=request,
            response={"city": city, "day": day, "units": "metric", "high": (day * 7) % 35,
                      "summary": f"Forecast for {city}, day {day}: mild, light wind."},
            match_key=hash_key(request), latency_ms=0.012))
    return Cassette(created_at="2026-01-01T00:00:00+00:00", run_id="bench",
                    interactions=interactions)


def load(worker: Path, case: str, path: Path, runs: int, wall: bool,
         no_cache: bool = False) -> dict[str, float]:
    env = dict(os.environ)
    if wall:
        env["BENCH_WALL"] = "1"
    if no_cache:
        env["AGENTTAPE_NO_CACHE"] = "1"
    best: dict[str, float] | None = None
    for _ in range(runs):
        result = subprocess.run([sys.executable, str(worker), case, str(path)],
                                capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{case} {path} failed:\n{result.stderr}")
        out = json.loads(result.stdout.strip().splitlines()[-1])
        if best is None or out["seconds"] < best["seconds"]:
            best = out
    assert best is not None
    return best


def timed_write(write: Any, cassette: Any, path: Path) -> tuple[Path, float]:
    """Write the cassette (YAML text, its assets, the parse-cache entry for the new file) and
    return the CPU seconds it took; the parse cache is emptied again before the loads."""
    start = time.process_time()
    written: Path = write(cassette, path)
    return written, time.process_time() - start


def clear_cache() -> None:
    from agenttape._storage import parse_cache_dir

    folder = parse_cache_dir()
    if folder is not None and folder.is_dir():
        for entry in folder.iterdir():
            entry.unlink()


def agenttape_cases(worker: Path, yaml_path: Path, json_path: Path, runs: int, wall: bool
                    ) -> dict[str, dict[str, float]]:
    results = {}
    # First load: each run starts from an empty cache, so each one writes it again.
    first = None
    for _ in range(runs):
        clear_cache()
        out = load(worker, "yaml", yaml_path, 1, wall)
        first = out if first is None or out["seconds"] < first["seconds"] else first
    assert first is not None
    results["yaml first"] = first
    results["yaml cached"] = load(worker, "yaml", yaml_path, runs, wall)
    results["json"] = load(worker, "json", json_path, runs, wall)
    results["pyyaml"] = load(worker, "pyyaml", yaml_path, runs, wall)
    return results


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--sizes", default=None, help="HTTP interactions (default 1000,10000,100000)")
    p.add_argument("--tools", type=int, default=None, help="tool interactions (default 20000)")
    p.add_argument("--runs", type=int, default=None, help="subprocesses per case (best kept)")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [1000, 10000] if args.quick else [1000, 10000, 100000])
    tools = args.tools or (5000 if args.quick else 20000)
    runs = args.runs or (2 if args.quick else 3)
    clock = "wall-clock" if args.wall else "CPU time of the loading process"
    header(f"cassette load time ({clock}) and peak memory", timing=False)

    from vcr.serializers import yamlserializer

    from agenttape._storage import write_cassette

    rows = []
    checks = []
    with scratch("load") as tmp:
        worker = tmp / "worker.py"
        worker.write_text(WORKER)
        # The first write imports PyYAML and builds its classes; not part of any size's time.
        write_cassette(http_traffic(1)[0], tmp / "warm-up.yaml")
        for n in sizes:
            ours, theirs = http_traffic(n)
            yaml_path, write_s = timed_write(write_cassette, ours, tmp / f"http-{n}.yaml")
            json_path = write_cassette(ours, tmp / f"http-{n}.json")
            vcr_path = tmp / f"vcr-{n}.yaml"
            vcr_path.write_text(yamlserializer.serialize(theirs), encoding="utf-8")
            del ours, theirs
            case_runs = 1 if n >= 100000 else runs
            res = agenttape_cases(worker, yaml_path, json_path, case_runs, args.wall)
            res["write"] = {"seconds": write_s}
            res["vcr"] = load(worker, "vcr", vcr_path, case_runs, args.wall)
            rows.append(_row(f"HTTP {n:,}", yaml_path, res, vcr_path))
            print(f"HTTP {n:,} done", file=sys.stderr)
        cassette = tool_traffic(tools)
        yaml_path, write_s = timed_write(write_cassette, cassette, tmp / f"tools-{tools}.yaml")
        json_path = write_cassette(cassette, tmp / f"tools-{tools}.json")
        del cassette
        res = agenttape_cases(worker, yaml_path, json_path, runs, args.wall)
        res["write"] = {"seconds": write_s}
        rows.append(_row(f"tools {tools:,}", yaml_path, res, None))
        checks.append((tools, yaml_path.stat().st_size, res))
        print(f"tools {tools:,} done", file=sys.stderr)

    print(table(["cassette", "YAML size", "YAML write s", "YAML first load s", "YAML cached s",
                 "JSON s", "PyYAML alone s", "VCR.py s",
                 "peak MB: YAML first / cached / JSON / VCR.py"], rows))
    print()
    for n, size, res in checks:
        cached = res["yaml cached"]["seconds"]
        first, parser_only = res["yaml first"]["seconds"], res["pyyaml"]["seconds"]
        print(f"target {n:,}-interaction YAML cassette ({size / 1e6:.1f} MB) unchanged since its "
              f"last load in <= 0.5 s: {cached:.3f} s {verdict(cached <= 0.5)}")
        print(f"target first load no slower than the parser alone: {first:.2f} s vs "
              f"{parser_only:.2f} s ({first / parser_only:.2f}x) {verdict(first <= parser_only)}")


def _row(label: str, yaml_path: Path, res: dict[str, dict[str, float]],
         vcr_path: Path | None) -> list[Any]:
    vcr = res.get("vcr")
    size = f"{yaml_path.stat().st_size / 1e6:.1f} MB"
    if vcr_path is not None:
        size += f" (VCR.py {vcr_path.stat().st_size / 1e6:.1f} MB)"
    peaks = [res["yaml first"], res["yaml cached"], res["json"]] + ([vcr] if vcr else [])
    return [label, size, res["write"]["seconds"], res["yaml first"]["seconds"],
            res["yaml cached"]["seconds"], res["json"]["seconds"], res["pyyaml"]["seconds"],
            "-" if vcr is None else vcr["seconds"],
            " / ".join(f"{p['peak_mb']:.0f}" for p in peaks)]


if __name__ == "__main__":
    main()
